"""The dispatcher: one object's callbacks, in order, one at a time, on any runtime.

Rules of this module:

* events are pushed in the order the core returned them; the one who pushes
  onto an idle dispatcher becomes its *drainer* and runs every call until the
  queue is empty, events pushed meanwhile (by other threads or tasks, or by
  the callbacks themselves) included;
* so callbacks of one object never overlap and never reorder, and no lock is
  held while a callback runs: a callback may call anything, on any object;
* each event's callback is looked up when it is about to run, so ``bind``
  takes effect for events not yet dispatched (events pushed onto an idle
  dispatcher with no callback at all are done at once: nothing could run first);
* an ``async def`` callback's awaitable is handed to the binding to await
  (:meth:`Dispatcher.steps`) before the next call; a drain interrupted
  (cancelled) with events left asks the binding to resume it elsewhere
  (:meth:`Host.resume`), so no event, DISCONNECT included, is lost;
* while a thread or task drains, it is *inside* (:func:`inside`): it must not
  wait for events, which may be queued behind the callback it is running, and
  an object stopped from there queues its last event behind that callback's
  (:func:`innermost`);
* every event pushed also goes to the object's *sinks* (``async for``
  streams) and its parent's (a server sees its clients' events); the
  object's last event (DISCONNECT, STOPED) ends its own streams;
* the common case builds nothing nobody looks at: :meth:`Dispatcher.received`
  queues a RECEIVED as the callback's arguments, with no event object, when no
  stream is open; :meth:`Dispatcher.quiet` tells the core that nobody would
  see an event at all (no callback, no stream), so it need not make one;
* ``pushed``/``done`` count events, so a caller can wait until the events it
  pushed have been dispatched (an async ``send`` returns after its SENDED).

What only a binding can do, it does through a small :class:`Host`: wake its
waiters, resume an interrupted drain; a threaded binding also hands in its
lock as the *guard* of pushes and of the drainer's last look at the queue.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from types import CoroutineType
from typing import Final, Protocol

from .callbacks import (
    EVENT_SLOT,
    RECEIVED_SLOT,
    About,
    Callback,
    CallbackRegistry,
    callback_args,
    log_call_error,
    log_callback_error,
)
from .events import Event, EventTypes, Received, StreamEvent

__all__ = [
    "Call",
    "Dispatcher",
    "Host",
    "Pending",
    "Sink",
    "begin_drain",
    "end_drain",
    "innermost",
    "inside",
    "mark_inside",
]

#: A callback that ran: ``(callback, positional args, what it is about)``.
Call = tuple[Callback, tuple[object, ...], About]
#: An ``async def`` callback in progress: its awaitable, and its call (for the log).
Pending = tuple[Awaitable[object], Call]
#: A queued event: its slot, its arguments if already known, what it is
#: about, and the registry its callback is looked up in.
_Entry = tuple[int, "tuple[object, ...] | None", About, CallbackRegistry]

_RECEIVED: Final[EventTypes] = EventTypes.RECEIVED
_NO_AWAIT: Final = "an async def callback needs an async binding (trio or asyncio)"

#: The dispatchers each thread or task is draining, innermost last, by the
#: key its binding names it with.
_DRAINING: Final[dict[object, list[Dispatcher]]] = {}
#: How many threads' (empty) stacks run_all() keeps between drains.
_THREADS_KEPT: Final = 256
#: Set in a task a binding starts for a callback (a broadcast's sends, a
#: cleanup): it counts as inside too.
_HELPER: Final[ContextVar[bool]] = ContextVar("jfsocket_inside_callback", default=False)


def inside(key: object) -> bool:
    """The thread or task *key* is running a callback, or works for one."""
    return bool(_DRAINING.get(key)) or _HELPER.get()


def innermost(key: object) -> Dispatcher | None:
    """The dispatcher *key* is draining, innermost first; ``None`` if none."""
    stack = _DRAINING.get(key)
    return stack[-1] if stack else None


def mark_inside() -> None:
    """The current task works for a callback (call it first thing in that task)."""
    _HELPER.set(True)


def begin_drain(key: object, dispatcher: Dispatcher) -> None:
    """*key* drains *dispatcher* from now on (a task going on with an async callback)."""
    if key is not None:
        stack = _DRAINING.get(key)
        if stack is None:
            _DRAINING[key] = [dispatcher]
        else:
            stack.append(dispatcher)


def end_drain(key: object) -> None:
    """*key* is done with the dispatcher it drained last."""
    if key is not None:
        stack = _DRAINING[key]
        stack.pop()
        if not stack:
            del _DRAINING[key]


class Sink(Protocol):
    """Where an ``async for`` stream gets its events (each binding's own kind)."""

    def send_nowait(self, event: StreamEvent) -> None:
        """One more event (the name of trio's memory channels)."""

    def close(self) -> None:
        """No more events: the stream ends after those already put."""


class Host(Protocol):
    """What only the binding can do for a dispatcher."""

    def wake(self) -> None:
        """Let waiters look at ``done``/``busy`` again (called while ``waiting``)."""

    def resume(self) -> None:
        """A drain was interrupted with events left: have someone :meth:`claim` them."""


class _NoHost:
    def wake(self) -> None:
        """Nobody waits without a host."""

    def resume(self) -> None:
        """The next push drains."""


_NO_HOST: Final = _NoHost()


class Dispatcher:
    """Events waiting for their callbacks, and the one loop that runs them."""

    __slots__ = (
        "_guard",
        "_last",
        "_parent",
        "_queue",
        "_registry",
        "_sinks",
        "busy",
        "done",
        "host",
        "on_idle",
        "pushed",
        "waiting",
    )

    def __init__(
        self,
        registry: CallbackRegistry,
        parent: Dispatcher | None = None,
        *,
        last: tuple[type, ...] = (),
        guard: AbstractContextManager[object] | None = None,
        host: Host | None = None,
    ) -> None:
        self._registry = registry
        # Made on first use: an idle connection's queue would be most of its memory.
        self._queue: deque[_Entry] | None = None
        #: Someone is draining (read it; the dispatcher alone sets it).
        self.busy = False
        self._parent = parent
        self._last = last
        self._guard = guard
        self._sinks: list[Sink] | None = None
        self.host: Host = host if host is not None else _NO_HOST
        #: Events pushed so far, and events whose callback has returned.
        self.pushed = 0
        self.done = 0
        #: How many wait for ``done``/``busy`` to change (the host counts them):
        #: while any do, each call's end wakes them.
        self.waiting = 0
        #: Called once when the queue is next idle (a paused reader reads again).
        self.on_idle: Callback | None = None

    @property
    def queued(self) -> int:
        """Events waiting for their callback.  (Not ``__len__``: a dispatcher
        with none is still a dispatcher, true in an ``or``.)"""
        return len(self._queue) if self._queue is not None else 0

    @property
    def parent(self) -> Dispatcher | None:
        """The dispatcher whose streams see our events too (a client's server's)."""
        return self._parent

    # -- streams -------------------------------------------------------------------

    def subscribe(self, sink: Sink) -> None:
        """Put every event pushed from now on into *sink* too (``async for``)."""
        if self._sinks is None:
            self._sinks = []
        self._sinks.append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        """Stop putting events into *sink* (a stream closed before the end)."""
        # A new list, not a removal: another thread may be publishing to the old one.
        if self._sinks is not None:
            self._sinks = [s for s in self._sinks if s is not sink] or None

    def end_streams(self) -> None:
        """The object is done: its streams end after the events already put."""
        sinks, self._sinks = self._sinks, None
        for sink in sinks or ():
            sink.close()

    def publish(self, events: Sequence[StreamEvent]) -> None:
        """Hand *events* to the streams (ours and our parent's), without queueing."""
        node: Dispatcher | None = self
        while node is not None:
            for sink in node._sinks or ():
                for event in events:
                    sink.send_nowait(event)
            node = node._parent
        if self._sinks and self._last and any(isinstance(e, self._last) for e in events):
            self.end_streams()

    def pending_since(self, pushed: int) -> bool:
        """Events pushed since ``pushed`` was read have yet to run: an async
        ``send`` waits for them; one that made none (nobody would see a
        SENDED) has nothing to wait for."""
        return self.pushed != pushed and self.busy and self.done < self.pushed

    @property
    def streamed(self) -> bool:
        """A stream (ours or our parent's) sees every event: events must be built."""
        return self._sinks is not None or (self._parent is not None and bool(self._parent._sinks))

    def quiet(self, slot: int) -> bool:
        """Nobody would see an event of *slot* now: no callback, no stream."""
        if self._registry.resolved[slot] is not None or self._sinks:
            return False
        parent = self._parent
        return parent is None or not parent._sinks

    # -- pushing (with the guard held, where there is one) ----------------------------

    def push(
        self,
        events: list[Event],
        registry: CallbackRegistry | None = None,
        *,
        publish: bool = True,
    ) -> bool:
        """Queue *events* (looked up in *registry*, default the owner's), and
        hand them to the streams unless *publish* is false (they are another
        object's, queued here only to run after this one's callback).

        Returns ``True`` when the caller must now drain: the queue was idle.
        """
        if not events:
            return False
        parent = self._parent
        if publish and (self._sinks is not None or (parent is not None and parent._sinks)):
            self.publish(events)
        reg = registry or self._registry
        resolved = reg.resolved
        if not self.busy and not self._queue:
            # Idle: these would be dispatched now, so looking them up now is
            # the same; when none has a callback (a SENDED nobody listens to)
            # they are done at once, and nobody needs to drain.
            for event in events:
                if resolved[EVENT_SLOT[type(event)]] is not None:
                    break
            else:
                self.pushed += len(events)
                self.done += len(events)
                return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        for event in events:
            queue.append((EVENT_SLOT[type(event)], None, event, reg))
        self.pushed += len(events)
        if self.busy:
            return False
        self.busy = True
        return True

    def push_behind(self, inner: Dispatcher | None, events: list[Event]) -> bool:
        """Queue this object's *events* behind the callback *inner* is running
        (a STOPED asked for from inside one: ``innermost(key)``), or here when
        there is none; our streams see them as ours.  Takes the guard itself.

        Returns ``True`` when the caller must drain (*inner* is busy: never then).
        """
        target = self if inner is None else inner
        guard = target._guard
        if guard is None:
            return self._push_behind(target, events)
        with guard:
            return self._push_behind(target, events)

    def _push_behind(self, target: Dispatcher, events: list[Event]) -> bool:
        if target is self:
            return self.push(events)
        self.publish(events)
        return target.push(events, self._registry, publish=False)

    def received(self, source: object, payloads: list[str] | list[bytes]) -> bool:
        """Queue a RECEIVED for each of *payloads* (TCP data of *source*).

        With no stream open no :class:`Received` is built: the queue holds the
        callback's arguments.  Returns ``True`` when the caller must drain.
        """
        if self._sinks is not None or (self._parent is not None and self._parent._sinks):
            return self.push([Received(source=source, data=p) for p in payloads])
        count = len(payloads)
        if not count:
            return False
        registry = self._registry
        if not self.busy and not self._queue and registry.resolved[RECEIVED_SLOT] is None:
            self.pushed += count
            self.done += count
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        for payload in payloads:
            queue.append((RECEIVED_SLOT, (source, payload), _RECEIVED, registry))
        self.pushed += count
        if self.busy:
            return False
        self.busy = True
        return True

    def emit(
        self, events: list[Event], registry: CallbackRegistry | None = None, key: object = None
    ) -> None:
        """Push *events* (under the guard) and, if idle, drain them here (:meth:`run_all`)."""
        guard = self._guard
        if guard is None:
            run = self.push(events, registry)
        else:
            with guard:
                run = self.push(events, registry)
        if run:
            self.run_all(key)

    def claim(self) -> bool:
        """Become the drainer of events left queued by an interrupted one (guard held)."""
        if self.busy or not self._queue:
            return False
        self.busy = True
        return True

    def release(self) -> None:
        """Leave what is queued to the next pusher or claimer (guard held)."""
        self.busy = False

    # -- draining (never with the guard held) -----------------------------------------

    def run(self, key: object = None) -> Pending | None:
        """Drain, as thread or task *key* (``None``: not one that may wait).

        Plain callbacks run here, until the queue is idle.  An ``async def``
        one's awaitable is returned still running, with the queue still ours:
        the caller awaits it, then goes on with :meth:`steps`.
        """
        if key is None:
            return self.run_plain()
        begin_drain(key, self)
        try:
            return self.run_plain()
        finally:
            end_drain(key)

    def steps(self, key: object, first: Pending | None = None) -> Generator[Pending, None, None]:
        """Drain from a task: yields each ``async def`` callback in progress
        (*first* first, one :meth:`run` returned) for the caller to await
        before advancing; the caller logs what the await raises
        (:func:`log_call_error`).

        If the await is interrupted, ``close()`` (or ``throw``) the generator:
        the rest is left to :meth:`Host.resume`.  Advance it at once: one
        closed before its first step has not begun, and leaves the queue busy.
        """
        begin_drain(key, self)
        try:
            pending = first if first is not None else self.run_plain()
            while pending is not None:
                try:
                    yield pending
                except BaseException:
                    self.done += 1
                    self._interrupted()
                    raise
                self.done += 1
                if self.waiting:
                    self.host.wake()
                pending = self.run_plain()
        finally:
            end_drain(key)

    async def drain(self, key: object, first: Pending | None = None) -> None:
        """:meth:`steps`, awaited here (in trio or asyncio alike): what a
        callback's await raises is logged; an interruption leaves the rest to
        :meth:`Host.resume`."""
        steps = self.steps(key, first)
        for awaitable, call in steps:
            try:
                await awaitable
            except Exception as exc:
                log_call_error(call, exc)
            except BaseException:
                steps.close()
                raise

    def run_all(self, key: object = None) -> None:
        """Drain where nothing can be awaited (threads): an ``async def``
        callback is refused, and logged as its error."""
        # The threaded hot path: one call here, one in run_plain, and the callback's.
        stack = None
        if key is not None:
            stack = _DRAINING.get(key)
            if stack is None:
                stack = _DRAINING[key] = [self]
            else:
                stack.append(self)
        try:
            while (pending := self.run_plain()) is not None:
                awaitable, call = pending
                if isinstance(awaitable, Coroutine):
                    awaitable.close()
                log_call_error(call, TypeError(_NO_AWAIT))
                self.done += 1
                if self.waiting:
                    self.host.wake()
        finally:
            if stack is not None:
                stack.pop()
                # A thread's empty stack is kept for its next drain (dict work
                # per drain is a tenth of the compiled hot path), up to a bound.
                if not stack and len(_DRAINING) > _THREADS_KEPT:
                    del _DRAINING[key]

    def run_plain(self) -> Pending | None:
        """:meth:`run` for a caller no one waits on (a loop callback): nothing
        is registered as draining."""
        queue = self._queue
        assert queue is not None, "run() only after a push, received() or claim() said so"
        guard = self._guard
        while True:
            if not queue:
                if guard is None:
                    self.busy = False
                    break
                with guard:  # a pusher must see us busy, or see us gone
                    idle = not queue
                    if idle:
                        self.busy = False
                if idle:  # (not a break inside the with: mypyc cannot compile that)
                    break
                continue
            slot, args, about, registry = queue.popleft()
            callback = registry.resolved[slot]
            if callback is not None:
                if args is None:
                    args = callback_args(about)  # type: ignore[arg-type]
                if args is not None:
                    try:
                        result = callback(*args)
                    except Exception as exc:
                        log_callback_error(callback, about, exc, args[0] if args else None)
                        result = None
                    except BaseException:
                        self.done += 1
                        self._interrupted()
                        raise
                    if result is not None and (
                        type(result) is CoroutineType or inspect.isawaitable(result)
                    ):
                        return result, (callback, args, about)
            self.done += 1
            if self.waiting:
                self.host.wake()
        if self.waiting:
            self.host.wake()
        if self.on_idle is not None:
            on_idle, self.on_idle = self.on_idle, None
            on_idle()
        return None

    def _interrupted(self) -> None:
        """The drainer stopped early: the events left go to whoever comes next."""
        guard = self._guard
        if guard is None:
            self.busy = False
        else:
            with guard:
                self.busy = False
        if self.waiting:
            self.host.wake()
        if self._queue:
            self.host.resume()
        elif self.on_idle is not None:  # idle all the same: a paused reader reads again
            on_idle, self.on_idle = self.on_idle, None
            on_idle()
