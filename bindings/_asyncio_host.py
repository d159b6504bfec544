"""asyncio's part of the core's dispatcher: callbacks as tasks, waiters, task ownership.

What :mod:`jfsocket.bindings.asyncio` needs from asyncio beyond transports:
an ``async def`` callback met in a loop callback starts as a task of its own
(eagerly on 3.12+, as the object's stand-in task before: the one private
asyncio API, here only), waiters of ``send``/``close`` park on futures, an
object owns the tasks its callbacks run in and waits for them before it is
done, and cleanup finishes even when cancelled.  The ordering rules are the
core's (:class:`~jfsocket.core.Dispatcher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import socket as _socket
import sys
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType
from typing import Any, Final, TypeVar

from jfsocket.core import (
    Address,
    Call,
    CallbackRegistry,
    Dispatcher,
    Event,
    Pending,
    StreamEvent,
    begin_drain,
    end_drain,
    innermost,
    inside,
    log_call_error,
    mark_inside,
)

from ._facade import wrong_runtime

#: Python 3.12+ starts a task eagerly: it runs at once, in the caller, until it
#: first suspends, so a callback that never does costs no trip round the loop.
EAGER: Final = sys.version_info >= (3, 12)


def running_loop(obj: object) -> asyncio.AbstractEventLoop:
    """The running loop, or a clear error naming the binding to use instead."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise wrong_runtime(obj, "asyncio", "a running asyncio loop (asyncio.run)") from None


def inside_callback() -> bool:
    """The current task is running a callback, or works for one (so it must not
    wait for events)."""
    return bool(_starting) or inside(asyncio.current_task())


def innermost_callback() -> Dispatcher | None:
    """The dispatcher whose callback the current task is running, if any."""
    inner = innermost(asyncio.current_task())
    if inner is None and _starting:
        inner = _starting[-1]
    return inner


#: The dispatchers whose async callback's first step runs now, in a task being
#: started eagerly (3.12+): inside it before the task can be named.
_starting: list[Dispatcher] = []


class _Resumed:
    """Await a coroutine whose first step already ran (and yielded *yielded*),
    or that must first receive *error*; what the awaiting task gets (wake-ups,
    cancellation) goes on to it."""

    __slots__ = ("_coro", "_error", "_yielded")

    def __init__(
        self, coro: Coroutine[Any, Any, object], yielded: object, error: BaseException | None = None
    ) -> None:
        self._coro, self._yielded, self._error = coro, yielded, error

    def __await__(self) -> Generator[Any, Any, object]:
        coro = self._coro
        try:
            yielded = coro.throw(self._error) if self._error is not None else self._yielded
        except StopIteration as stop:
            return stop.value
        while True:
            try:
                value = yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as stop:
                    return stop.value


async def resume(coro: Coroutine[Any, Any, None], yielded: object) -> None:
    """Finish, in a task, a coroutine whose first step already ran and yielded *yielded*."""
    await _Resumed(coro, yielded)


async def _awaited(awaitable: Awaitable[object]) -> None:
    """A coroutine of an awaitable that is not one (a task runs only coroutines)."""
    await awaitable


def _task_in(context: contextvars.Context, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # pragma: no cover - 3.10: a copy of it


class EventStream:
    """``async for event in obj``: the events pushed since it began, until the last."""

    def __init__(self) -> None:
        self._events: deque[StreamEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def send_nowait(self, event: StreamEvent) -> None:
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._events.popleft()


class Host:
    """asyncio's part of an object's :class:`Dispatcher` (``core``).

    From a loop callback (:meth:`kick`) plain callbacks run at once, and an
    async one goes on in a task of the object, started eagerly, that drains
    what follows it; from a task (:meth:`drain`) async ones are awaited in
    place.  The object owns those tasks, and waits for them before it is done.
    """

    __slots__ = (
        "_context",
        "_handoff",
        "_parent",
        "_retired",
        "_stand_in",
        "_waiters",
        "_wake_stand_in",
        "core",
        "tasks",
    )

    def __init__(
        self,
        registry: CallbackRegistry,
        parent: Host | None = None,
        *,
        last: tuple[type[StreamEvent], ...] = (),
    ) -> None:
        self.core: Dispatcher = Dispatcher(
            registry, parent.core if parent is not None else None, last=last, host=self
        )
        self._parent = parent
        self._waiters: list[asyncio.Future[None]] = []
        #: Tasks running our callbacks (a server's include its connections'),
        #: made with the first: most connections never have one.
        self.tasks: set[asyncio.Task[None]] | None = None
        # Before 3.12, the task async callbacks start in (see _first_step).
        self._stand_in: asyncio.Task[None] | None = None
        self._wake_stand_in: asyncio.Future[None] | None = None
        self._handoff: tuple[Coroutine[Any, Any, object], object, Call] | None = None
        self._context: contextvars.Context | None = None  # the stand-in's
        self._retired = False

    def push(self, events: list[Event], registry: CallbackRegistry | None = None) -> bool:
        """Queue *events* (``async for`` readers get them too); ``True``: drain now."""
        return self.core.push(events, registry)

    def kick(self) -> None:
        """Drain from a loop callback: plain callbacks run here, and so does an
        async one's first step, in a task of its own; if it suspends, that task
        has the queue until it ends, and the loop drains on after it."""
        core = self.core
        go = core.run_plain
        while (pending := go()) is not None:
            if not self._first_step(*pending):
                return
            core.done += 1
            if core.waiting:
                self.wake()

    def _first_step(self, awaitable: Awaitable[object], call: Call) -> bool:
        """Start an async callback as a task, its first step now (so that
        ``current_task()``, ``asyncio.timeout`` and task groups work in it);
        ``True``: it finished there (what it raised is logged).

        Python 3.12+ starts tasks eagerly.  Before, asyncio has no public way:
        the step runs as the object's stand-in task, made current with
        asyncio's private ``_enter_task``, the one private API here
        (tests/asyncio/test_eager.py checks it on every Python the suite
        runs on); the stand-in goes on with it if it suspends.
        """
        coro = awaitable if type(awaitable) is CoroutineType else _awaited(awaitable)
        if not EAGER:
            return self._stand_in_step(coro, call)
        _starting.append(self.core)
        try:
            task: asyncio.Task[object] = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
                coro, loop=asyncio.get_running_loop(), eager_start=True
            )
        finally:
            _starting.pop()
        if task.done():
            if not task.cancelled() and (exc := task.exception()) is not None:
                log_call_error(call, exc)
            return True
        begin_drain(task, self.core)  # inside, as the drainer, until it ends
        self._track(task)  # type: ignore[arg-type]
        task.add_done_callback(functools.partial(self._went_on, call))
        return False

    def _went_on(self, call: Call, task: asyncio.Task[object]) -> None:
        """A callback that suspended has ended: the drain goes on after it."""
        end_drain(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log_call_error(call, exc)
        self._call_ended()

    def _call_ended(self) -> None:
        core = self.core
        core.done += 1
        if core.waiting:
            self.wake()
        self.kick()

    def _stand_in_step(self, coro: Coroutine[Any, Any, object], call: Call) -> bool:
        loop = asyncio.get_running_loop()
        stand_in, context = self._stand_in, self._context
        if stand_in is None or context is None or stand_in.done():
            context = self._context = contextvars.copy_context()
            stand_in = self._stand_in = _task_in(context, self._stand_in_main())
            self._track(stand_in)
        _enter_task(loop, stand_in)
        begin_drain(stand_in, self.core)
        try:
            yielded = context.run(coro.send, None)  # in the task's own context
        except StopIteration:
            return True
        except (Exception, asyncio.CancelledError) as exc:
            log_call_error(call, exc)
            return True
        except BaseException:
            self.core.release()
            raise
        finally:
            end_drain(stand_in)
            _leave_task(loop, stand_in)
        self._handoff = (coro, yielded, call)
        if self._wake_stand_in is not None and not self._wake_stand_in.done():
            self._wake_stand_in.set_result(None)
        return False

    async def _stand_in_main(self) -> None:
        """Parked until a callback it started suspends; finishes it, and then the
        loop drains on; ends once retired (a later one starts a new stand-in)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        while True:
            job = self._take()
            error: BaseException | None = None
            if job is None:
                if self._retired:
                    return
                wake = self._wake_stand_in = loop.create_future()
                try:
                    await wake
                except asyncio.CancelledError as exc:
                    job = self._take()
                    if job is None:
                        raise
                    error = exc  # aimed at the callback (its own timeout): it gets it
                finally:
                    self._wake_stand_in = None
                if job is None:
                    continue
            coro, yielded, call = job
            begin_drain(task, self.core)
            try:
                await _Resumed(coro, yielded, error)
            except (Exception, asyncio.CancelledError) as exc:
                log_call_error(call, exc)
            finally:
                end_drain(task)
            loop.call_soon(self._call_ended)  # not here: this task cannot start the next

    def _take(self) -> tuple[Coroutine[Any, Any, object], object, Call] | None:
        job, self._handoff = self._handoff, None
        return job

    def retire(self) -> None:
        """The object is done for now: the stand-in task ends once idle."""
        self._retired = True
        if self._wake_stand_in is not None and not self._wake_stand_in.done():
            self._wake_stand_in.set_result(None)

    async def emit(self, events: list[Event], registry: CallbackRegistry | None = None) -> None:
        """Push, then drain, or wait until someone else has dispatched them."""
        await self.finish(self.core.push(events, registry))

    async def finish(self, run: bool) -> None:
        """After a push that said *run*: drain, or wait until its events were dispatched."""
        if run:
            await self.drain()
        else:
            await self.wait_done(self.core.pushed)

    async def drain(self, first: Pending | None = None) -> None:
        """Run callbacks, awaiting async ones, until the queue is empty
        (*first*: an async callback :meth:`kick` met, not yet awaited)."""
        await self.core.drain(asyncio.current_task(), first)

    def resume(self) -> None:
        """A drain was cancelled with events left: a task of ours delivers them."""
        task = asyncio.get_running_loop().create_task(self._resume())
        self._track(task)

    async def _resume(self) -> None:
        if self.core.claim():
            await self.drain()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run *coro* in a task the object owns (and waits for before it is done)."""
        self._track(asyncio.get_running_loop().create_task(coro))

    def _track(self, task: asyncio.Task[None]) -> None:
        node: Host | None = self
        while node is not None:  # a server waits for its connections' tasks
            if node.tasks is None:
                node.tasks = set()
            node.tasks.add(task)
            node = node._parent
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        node: Host | None = self
        while node is not None:
            if node.tasks is not None:
                node.tasks.discard(task)
            node = node._parent

    async def wait_done(self, target: int) -> None:
        """Wait until the events pushed up to *target* were dispatched."""
        core = self.core
        if (core.done >= target or not core.busy) or inside_callback():
            # Done already; or inside a callback (ours: they run right after
            # it; another object's: its drainer may be waiting on us).
            return
        while core.done < target and core.busy:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            core.waiting += 1
            try:
                await waiter
            finally:
                core.waiting -= 1
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def wake(self) -> None:
        """Waiters look again."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def subscribe(self) -> EventStream:
        """A stream of every event pushed from now on."""
        stream = EventStream()
        self.core.subscribe(stream)
        return stream

    async def reap(self) -> None:
        """Wait for the object's tasks (not the caller's own) to end."""
        self.retire()
        current = asyncio.current_task()
        while pending := [task for task in self.tasks or () if task is not current]:
            await asyncio.wait(pending)


async def cleanup(
    coro: Coroutine[Any, Any, None], dispatcher: Host, *, interrupt: bool = False
) -> None:
    """Run *coro* to its end even if we are cancelled meanwhile; then re-raise.

    With *interrupt* (the block around the object was cancelled), and on a
    cancellation while it waits, callbacks still running are cancelled first
    (one stuck in an ``await`` cannot hang the cleanup); the events queued
    behind them are still delivered.
    """
    if interrupt:
        cancel_callbacks(dispatcher)
    context = contextvars.copy_context()
    if inside_callback():
        context.run(mark_inside)
    task = context.run(asyncio.ensure_future, coro)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancel_callbacks(dispatcher)
            cancelled = True
        else:
            break
    if cancelled:
        raise asyncio.CancelledError


def cancel_callbacks(dispatcher: Host) -> None:
    current = asyncio.current_task()
    for task in list(dispatcher.tasks or ()):
        if task is not current:
            task.cancel()


async def sendto(sock: _socket.socket, payload: bytes, target: Address) -> int:
    """``sendto`` on a non-blocking socket, waiting for room if the OS has none."""
    while True:
        try:
            return sock.sendto(payload, target)
        except (BlockingIOError, InterruptedError):
            await _writable(sock)


async def _writable(sock: _socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


_O = TypeVar("_O", bound="AsyncObject")


class AsyncObject:
    """``async with``, ``async for`` and task ownership, shared by the four classes."""

    _dispatcher: Host

    async def __aenter__(self: _O) -> _O:
        running_loop(self)
        await self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cancelled = exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
        await cleanup(self._exit(), self._dispatcher, interrupt=cancelled)

    async def _exit(self) -> None:
        await self._finish()
        await self._dispatcher.reap()
        self._dispatcher.core.end_streams()

    def __aiter__(self) -> EventStream:
        """``async for event in obj``: the typed events, until the object is done."""
        return self._dispatcher.subscribe()

    async def _enter(self) -> None:
        pass

    async def _finish(self) -> None:
        raise NotImplementedError
