"""The dispatch queue: one object's callbacks, in order, one at a time.

Rules of this module:

* events are pushed in the order the core returned them; the one who pushes
  onto an idle queue becomes its *drainer* and runs every call until the queue
  is empty, events pushed meanwhile (by other threads or tasks, or by the
  callbacks themselves) included;
* so callbacks of one object never overlap and never reorder, and no lock
  needs to be held while a callback runs: the bindings only guard ``push`` and
  ``next_call`` (threads) or need no guard at all (one event loop);
* each event's callback is looked up when it is about to run, so ``bind``
  takes effect for events not yet dispatched (events pushed onto an idle
  queue with no callback at all are done at once: nothing could run first);
* every event pushed also goes to the object's *sinks* (``async for``
  streams) and its parent's (a server sees its clients' events); the
  object's last event (DISCONNECT, STOPED) ends its own streams;
* the common case builds nothing nobody looks at: :meth:`received` queues a
  RECEIVED as the callback's arguments, with no event object, when no stream
  is open; :meth:`quiet` tells the core that nobody would see an event at
  all (no callback, no stream), so it need not make one;
* ``pushed``/``done`` count events, so a caller can wait until the events it
  pushed have been dispatched (an async ``send`` returns after its SENDED).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from .callbacks import (
    EVENT_SLOT,
    RECEIVED_SLOT,
    About,
    Callback,
    CallbackRegistry,
    callback_args,
)
from .events import Event, EventTypes, Received

__all__ = ["Call", "DispatchQueue", "Sink"]

#: A callback to run: ``(callback, positional args, what it is about)``.
Call = tuple[Callback, tuple[object, ...], About]
#: A queued event: its slot, its arguments if already known, what it is
#: about, and the registry its callback is looked up in.
_Entry = tuple[int, "tuple[object, ...] | None", About, CallbackRegistry]

_RECEIVED: EventTypes = EventTypes.RECEIVED


class Sink(Protocol):
    """Where an ``async for`` stream gets its events (each binding's own kind)."""

    def send_nowait(self, event: Event) -> None:
        """One more event (the name of trio's memory channels)."""

    def close(self) -> None:
        """No more events: the stream ends after those already put."""


class DispatchQueue:
    """Events waiting for their callbacks, and whether someone is draining them."""

    __slots__ = (
        "_busy",
        "_last",
        "_parent",
        "_queue",
        "_registry",
        "_running",
        "_sinks",
        "done",
        "pushed",
    )

    def __init__(
        self,
        registry: CallbackRegistry,
        parent: DispatchQueue | None = None,
        *,
        last: tuple[type, ...] = (),
    ) -> None:
        self._registry = registry
        # Made on first use: an idle connection's queue would be most of its memory.
        self._queue: deque[_Entry] | None = None
        self._busy = False
        self._running = 0
        self._parent = parent
        self._last = last
        self._sinks: list[Sink] | None = None
        #: Events pushed so far, and events whose callback has returned.
        self.pushed = 0
        self.done = 0

    def __len__(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    @property
    def busy(self) -> bool:
        """Someone is draining."""
        return self._busy

    # -- streams -------------------------------------------------------------------

    def subscribe(self, sink: Sink) -> None:
        """Put every event pushed from now on into *sink* too (``async for``)."""
        if self._sinks is None:
            self._sinks = []
        self._sinks.append(sink)

    def end_streams(self) -> None:
        """The object is done: its streams end after the events already put."""
        sinks, self._sinks = self._sinks, None
        for sink in sinks or ():
            sink.close()

    def publish(self, events: list[Event]) -> None:
        """Hand *events* to the streams (ours and our parent's), without queueing."""
        node: DispatchQueue | None = self
        while node is not None:
            for sink in node._sinks or ():
                for event in events:
                    sink.send_nowait(event)
            node = node._parent
        if self._sinks and self._last and any(isinstance(e, self._last) for e in events):
            self.end_streams()

    def quiet(self, slot: int) -> bool:
        """Nobody would see an event of *slot* now: no callback, no stream."""
        if self._registry.resolved[slot] is not None or self._sinks:
            return False
        parent = self._parent
        return parent is None or not parent._sinks

    # -- pushing -------------------------------------------------------------------

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
        if not self._busy and not self._queue:
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
        if self._busy:
            return False
        self._busy = True
        return True

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
        if not self._busy and not self._queue and registry.resolved[RECEIVED_SLOT] is None:
            self.pushed += count
            self.done += count
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        for payload in payloads:
            queue.append((RECEIVED_SLOT, (source, payload), _RECEIVED, registry))
        self.pushed += count
        if self._busy:
            return False
        self._busy = True
        return True

    # -- draining ------------------------------------------------------------------

    def next_call(self) -> Call | None:
        """The next call to run, or ``None``: the queue is empty and idle again.

        Events with no bound callback are counted done and skipped.
        """
        self.done += self._running  # the call handed out last time has returned
        self._running = 0
        queue = self._queue
        while queue:
            slot, args, about, registry = queue.popleft()
            callback = registry.resolved[slot]
            if callback is not None:
                if args is None:
                    args = callback_args(about)  # type: ignore[arg-type]
                if args is not None:
                    self._running = 1
                    return callback, args, about
            self.done += 1
        self._busy = False
        return None

    def claim(self) -> bool:
        """Become the drainer of events left queued by an interrupted one."""
        if self._busy or not self._queue:
            return False
        self._busy = True
        return True

    def next_calls(self) -> list[Call]:
        """Every call queued now, at once (empty: the queue is idle again).

        For drainers that pay for each trip to the queue (a lock): callbacks
        still run in order, and events pushed meanwhile come in the next batch.
        """
        self.done += self._running
        queue = self._queue
        calls = []
        while queue:
            slot, args, about, registry = queue.popleft()
            callback = registry.resolved[slot]
            if callback is not None:
                if args is None:
                    args = callback_args(about)  # type: ignore[arg-type]
                if args is not None:
                    calls.append((callback, args, about))
                    continue
            self.done += 1
        self._running = len(calls)
        if not calls:
            self._busy = False
        return calls

    def abandon(self) -> None:
        """The drainer stopped early (it was interrupted): the next push drains."""
        self.done += self._running
        self._running = 0
        self._busy = False
