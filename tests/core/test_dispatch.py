"""The dispatcher: order, one drainer, late binding, streams, async callbacks,
interruption, *inside*, the host's hooks and the guard.

Everything runs by hand: coroutines are stepped with ``send(None)``, no event
loop, and only the guard's test starts a (bounded) second thread.
"""

from __future__ import annotations

import contextvars
import gc
import importlib
import inspect
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator

import pytest
from jfsocket.core import (
    RECEIVED_SLOT,
    SENT_SLOT,
    CallbackRegistry,
    Connected,
    Disconnected,
    Dispatcher,
    Event,
    EventTypes,
    Pending,
    Received,
    Role,
    Sent,
    Stopped,
    StreamEvent,
    innermost,
    inside,
    log_call_error,
    mark_inside,
)

dispatch = importlib.import_module("jfsocket.core.dispatch")

SRC = "c"
KEY = "task-1"  # what a binding names its drainer with (a thread, a task)
HOST = ("127.0.0.1", 1)
REMOTE = ("127.0.0.1", 2)


def _connected() -> Connected:
    return Connected(source=SRC, host=HOST, remote=REMOTE)


def _disconnected() -> Disconnected:
    return Disconnected(source=SRC, host=HOST, remote=REMOTE)


def _received(*data: str) -> list[Event]:
    return [Received(source=SRC, data=d) for d in data]


class _Stream:
    """A sink that records what it is handed (an ``async for`` stream's stand-in)."""

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.closed = False

    def send_nowait(self, event: StreamEvent) -> None:
        assert not self.closed, "an event after the stream ended"
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


class _Host:
    """Records the dispatcher's calls: each wake with ``(done, busy)`` then, and resumes."""

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self.wakes: list[tuple[int, bool]] = []
        self.resumes = 0

    def wake(self) -> None:
        assert self.dispatcher is not None
        self.wakes.append((self.dispatcher.done, self.dispatcher.busy))

    def resume(self) -> None:
        self.resumes += 1


def _hosted(registry: CallbackRegistry) -> tuple[Dispatcher, _Host]:
    host = _Host()
    dispatcher = Dispatcher(registry, host=host)
    host.dispatcher = dispatcher
    return dispatcher, host


class _Guard:
    """A lock-like context manager that records each time it is held.

    ``held`` has the dispatcher's ``(pushed, len)`` at each acquisition and at its
    release; *before*, if set, runs first at each acquisition (another thread that
    got the lock just before us).  A second acquisition while held is counted, not
    raised: raised in a callback, it would only be logged.
    """

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self.holding = False
        self.nested = 0
        self.held: list[tuple[tuple[int, int], tuple[int, int]]] = []
        self.before: Callable[[], None] | None = None
        self._at_enter = (0, 0)

    def _state(self) -> tuple[int, int]:
        assert self.dispatcher is not None
        return self.dispatcher.pushed, self.dispatcher.queued

    def __enter__(self) -> _Guard:
        if self.before is not None:
            self.before()
        if self.holding:
            self.nested += 1
        self.holding = True
        self._at_enter = self._state()
        return self

    def __exit__(self, *exc: object) -> None:
        self.holding = False
        self.held.append((self._at_enter, self._state()))


def _guarded(registry: CallbackRegistry) -> tuple[Dispatcher, _Guard]:
    guard = _Guard()
    dispatcher = Dispatcher(registry, guard=guard)
    guard.dispatcher = dispatcher
    return dispatcher, guard


class _Step:
    """Suspends its awaiter once, as an event loop's await would."""

    def __await__(self) -> Generator[None, None, None]:
        yield


def _finish(awaitable: Awaitable[object]) -> None:
    """Run *awaitable* to its end by hand (bounded)."""
    it = awaitable.__await__()
    for _ in range(100):
        try:
            it.send(None)
        except StopIteration:
            return
    raise AssertionError("the awaitable did not finish")


def _drain(dispatcher: Dispatcher, key: object, first: Pending | None = None) -> None:
    """What an async binding does: await each async callback, log what it raises."""
    for awaitable, call in dispatcher.steps(key, first):
        try:
            _finish(awaitable)
        except Exception as exc:
            log_call_error(call, exc)


@pytest.fixture(autouse=True)
def _nobody_left_inside() -> Generator[None, None, None]:
    """Each test leaves no drainer registered (a missed ``_leave`` would leak)."""
    yield
    assert not inside(KEY)
    assert innermost(KEY) is None


# -- order, one drainer, late binding ------------------------------------------------


def test_first_pusher_drains_and_later_pushes_join_the_same_drain() -> None:
    """push on an idle queue says 'drain'; pushes before it ends, from its callbacks
    or from outside, do not, and run in the same drain, in order."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    said: list[bool] = []

    def on_received(client: object, data: object) -> str:
        seen.append(data)
        # A callback that causes more events: queued behind, not run inside.
        said.append(queue.push([Sent(source=SRC, data=f"re {data}")]))
        return "a result that is not awaitable"

    registry.bind(EventTypes.RECEIVED, on_received)
    registry.bind(EventTypes.SENDED, lambda c, d: seen.append(("sent", d)))
    assert queue.push(_received("a", "b")) is True
    assert queue.busy and queue.queued == 2
    assert queue.push(_received("c")) is False  # another pusher: queued behind
    assert queue.received(SRC, ["d"]) is False
    assert queue.claim() is False  # there is a drainer already
    assert queue.run(KEY) is None
    assert seen == [
        "a",
        "b",
        "c",
        "d",
        ("sent", "re a"),
        ("sent", "re b"),
        ("sent", "re c"),
        ("sent", "re d"),
    ]
    assert said == [False] * 4
    assert not queue.busy and queue.queued == 0
    assert (queue.pushed, queue.done) == (8, 8)
    assert queue.claim() is False  # idle and empty: nothing to claim


def test_callbacks_are_looked_up_when_they_run() -> None:
    """bind after the push, before the event runs, takes effect (unbind too);
    events with no callback then are skipped, but counted."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    registry.bind("onConnected", lambda *a: seen.append("connected"))
    registry.bind("onSended", lambda c, d: seen.append(("sent", d)))
    queue = Dispatcher(registry)
    assert queue.push([_connected()])
    events: list[Event] = [Sent(source=SRC, data=b"1"), *_received("x")]
    assert queue.push(events) is False  # busy: queued behind CONNECTED
    registry.bind("onReceived", lambda c, d: seen.append(("received", d)))
    registry.bind("onSended", None)
    assert queue.run(KEY) is None
    assert seen == ["connected", ("received", "x")]
    assert (queue.pushed, queue.done) == (3, 3)


def test_a_servers_bind_reaches_its_clients_queued_events() -> None:
    """A client's callbacks are its own, else its server's, kept current by bind on
    either; a bind reaches events already queued (looked up when they run)."""
    server = CallbackRegistry(Role.SERVER)
    client = server.child(Role.CLIENT)
    queue = Dispatcher(client)
    seen: list[str] = []
    assert queue.received(SRC, ["ignored"]) is False  # nothing bound anywhere
    client.bind("onConnected", lambda *a: seen.append("connected"))
    assert queue.push([_connected(), *_received("one")]) is True
    server.bind("onReceived", lambda c, d: seen.append(f"server {d}"))  # after the push
    assert queue.received(SRC, ["two"]) is False
    assert queue.run(KEY) is None
    assert seen == ["connected", "server one", "server two"]
    assert queue.received(SRC, ["three"]) is True
    client.bind("onReceived", lambda c, d: seen.append(f"client {d}"))  # before it runs
    assert queue.run(KEY) is None
    client.bind("onReceived", None)  # the server's again
    assert queue.received(SRC, ["four"]) is True
    assert queue.run(KEY) is None
    server.bind("onReceived", None)
    assert queue.received(SRC, ["five"]) is False
    assert seen[3:] == ["client three", "server four"]
    assert (queue.pushed, queue.done) == (7, 7)


def test_unbound_events_on_an_idle_queue_are_done_at_once() -> None:
    """Nothing bound and nobody draining: no drain is asked for, and the counts add up;
    one bound event among them queues them all, in order."""
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    events: list[Event] = [Sent(source=SRC, data=b"1"), *_received("x")]
    assert queue.push(events) is False
    assert queue.received(SRC, ["y", "z"]) is False
    assert not queue.busy and queue.queued == 0
    assert (queue.pushed, queue.done) == (4, 4)
    seen: list[object] = []
    registry.bind("onReceived", lambda c, d: seen.append(d))
    assert queue.push(events) is True
    assert queue.queued == 2 and queue.busy
    assert queue.push([Sent(source=SRC, data=b"2")]) is False  # unbound, but behind a drain
    assert queue.queued == 3
    assert (queue.pushed, queue.done) == (7, 4)
    assert queue.run(KEY) is None
    assert seen == ["x"]
    assert (queue.pushed, queue.done) == (7, 7)


def test_empty_pushes_and_another_registry() -> None:
    """No events: nothing to drain; an event may be looked up in another registry."""
    server = CallbackRegistry(Role.SERVER)
    queue = Dispatcher(server.child(Role.CLIENT))
    assert queue.push([]) is False
    assert queue.received(SRC, []) is False
    assert (queue.pushed, queue.done) == (0, 0)
    seen: list[object] = []
    server.bind(EventTypes.STOPED, seen.append)
    assert queue.push([Stopped(source="srv")], server) is True
    assert queue.run() is None
    assert seen == ["srv"]
    assert queue.queued == 0 and not queue.busy


def test_received_builds_no_event_without_a_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path queues the callback's arguments: no Received is made, what the
    call is about is the key, and the callback gets its arguments as ever."""

    def no_event(**kwargs: object) -> Received:
        raise AssertionError("a Received was built with no stream to see it")

    monkeypatch.setattr(dispatch, "Received", no_event)
    seen: list[tuple[object, ...]] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    assert queue.received(SRC, ["x"]) is False  # nothing bound: done at once
    registry.bind(EventTypes.RECEIVED, lambda *args: seen.append(args))
    assert queue.received(SRC, ["a", "b"]) is True
    assert queue.received(SRC, ["c"]) is False  # busy: queued behind
    assert queue.run(KEY) is None
    assert seen == [(SRC, "a"), (SRC, "b"), (SRC, "c")]
    assert (queue.pushed, queue.done) == (4, 4)

    async def later(client: object, data: object) -> None:
        seen.append((client, data))

    registry.bind(EventTypes.RECEIVED, later)
    assert queue.received(SRC, ["d"]) is True
    pending = queue.run(KEY)
    assert pending is not None
    _, (callback, args, about) = pending
    assert callback is later and args == (SRC, "d")
    assert about is EventTypes.RECEIVED  # the key, not an event object
    _drain(queue, KEY, pending)
    assert seen[-1] == (SRC, "d")


# -- streams ---------------------------------------------------------------------------


def test_streams_see_every_event_and_end_with_the_last() -> None:
    """A stream gets typed events (the fast path builds them then), a server's stream
    its clients' too; the object's last event ends its own streams only."""
    server_registry = CallbackRegistry(Role.SERVER)
    server = Dispatcher(server_registry, last=(Stopped,))
    client = Dispatcher(server_registry.child(Role.CLIENT), server, last=(Disconnected,))
    assert client.parent is server and server.parent is None
    mine, theirs = _Stream(), _Stream()
    server.subscribe(theirs)
    assert client.received(SRC, ["a"]) is False  # a parent's stream only: built for it
    assert theirs.events == [Received(source=SRC, data="a")]
    client.subscribe(mine)
    client.received(SRC, ["b"])
    client.push([Sent(source=SRC, data="s")])
    assert mine.events == theirs.events[1:] == [*_received("b"), Sent(source=SRC, data="s")]
    bye = _disconnected()
    client.push([bye])
    assert mine.closed and not theirs.closed
    assert mine.events[-1] is bye and theirs.events[-1] is bye
    client.received(SRC, ["after"])  # no stream of its own any more
    after = Received(source=SRC, data="after")
    assert len(mine.events) == 3 and theirs.events[-2:] == [bye, after]
    # Queued behind a callback of the client's, but the server's own: not the client's.
    stopped = Stopped(source="srv")
    client.push([stopped], server_registry, publish=False)
    assert len(theirs.events) == 5 and not theirs.closed
    server.publish([stopped])
    assert theirs.closed and theirs.events[5:] == [stopped]
    assert (client.pushed, client.done) == (6, 6)  # nothing bound: all done at once


def test_unsubscribe_stops_one_stream_and_leaves_the_others() -> None:
    """A stream closed early gets nothing more; the others still see every event;
    with none left, events are not built for streams any more."""
    queue = Dispatcher(CallbackRegistry(Role.RECEIVER))
    early, late = _Stream(), _Stream()
    queue.subscribe(early)
    queue.subscribe(late)
    queue.received(SRC, ["a"])
    queue.unsubscribe(early)
    queue.unsubscribe(early)  # twice: nothing happens
    queue.received(SRC, ["b"])
    assert early.events == _received("a") and late.events == _received("a", "b")
    assert queue.streamed
    queue.unsubscribe(late)
    assert not queue.streamed
    queue.unsubscribe(late)  # none left at all: nothing happens


def test_quiet_means_no_callback_and_no_stream() -> None:
    """quiet() is true only when neither a callback nor a stream (ours or the
    parent's) would see an event of that slot."""
    server_registry = CallbackRegistry(Role.SERVER)
    server = Dispatcher(server_registry)
    registry = server_registry.child(Role.CLIENT)
    client = Dispatcher(registry, server)
    assert client.quiet(SENT_SLOT) and client.quiet(RECEIVED_SLOT)
    server_registry.bind("onSended", print)  # the client's callback, through its server
    assert not client.quiet(SENT_SLOT) and client.quiet(RECEIVED_SLOT)
    server_registry.bind("onSended", None)
    stream = _Stream()
    client.subscribe(stream)
    assert not client.quiet(SENT_SLOT)
    client.end_streams()
    assert stream.closed and client.quiet(SENT_SLOT)
    server.subscribe(_Stream())
    assert not client.quiet(SENT_SLOT)
    server.end_streams()
    assert client.quiet(SENT_SLOT)


# -- async callbacks -------------------------------------------------------------------


def test_run_hands_back_an_async_callback_and_steps_goes_on() -> None:
    """run() runs plain callbacks and returns the first async one's awaitable with its
    call, still busy; steps(key, first) awaits the rest in order, pushes meanwhile
    included, each counted done when its await ends."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    async def on_received(client: object, data: object) -> None:
        seen.append(f"start {data}")
        await _Step()
        assert inside(KEY) and innermost(KEY) is queue  # steps is still draining
        seen.append(f"end {data}")

    registry.bind("onReceived", on_received)
    registry.bind("onSended", lambda c, d: seen.append(("sent", d)))
    assert queue.push([Sent(source=SRC, data="0"), *_received("a")]) is True
    assert queue.push([Sent(source=SRC, data="1"), *_received("b")]) is False
    pending = queue.run(KEY)
    assert pending is not None
    awaitable, call = pending
    assert inspect.iscoroutine(awaitable)
    assert call[0] is on_received and call[1] == (SRC, "a")
    assert call[2] == Received(source=SRC, data="a")
    assert seen == [("sent", "0")]  # the coroutine is made, not started
    assert queue.busy and queue.done == 1 and queue.queued == 2
    assert not inside(KEY)  # between run() and steps()
    assert queue.push(_received("c")) is False  # still ours: queued behind
    assert queue.claim() is False

    steps = queue.steps(KEY, pending)
    assert next(steps) == pending  # equal: a compiled core rebuilds typed tuples
    _finish(awaitable)
    assert queue.done == 1  # counted when the caller comes back
    yielded = next(steps)  # SENDED 1 ran on the way to RECEIVED b
    assert yielded[1][1] == (SRC, "b") and queue.done == 3
    _finish(yielded[0])
    yielded = next(steps)
    assert yielded[1][1] == (SRC, "c")
    _finish(yielded[0])
    with pytest.raises(StopIteration):
        next(steps)
    assert seen == [
        ("sent", "0"),
        "start a",
        "end a",
        ("sent", "1"),
        "start b",
        "end b",
        "start c",
        "end c",
    ]
    assert not queue.busy and (queue.pushed, queue.done) == (5, 5)


def test_steps_without_first_drains_from_the_start() -> None:
    """steps(key) after a push said 'drain' runs plain callbacks and yields async ones;
    an async callback that raises is the caller's to log, and the drain goes on."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    async def on_received(client: object, data: object) -> None:
        await _Step()
        if data == "bad":
            raise ValueError(data)
        seen.append(data)

    registry.bind("onReceived", on_received)
    registry.bind("onConnected", lambda *a: seen.append("connected"))
    assert queue.push([_connected(), *_received("bad", "good")])
    _drain(queue, KEY)
    assert seen == ["connected", "good"]
    assert not queue.busy and (queue.pushed, queue.done) == (3, 3)


def test_run_all_refuses_an_async_callback_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """Where nothing can be awaited, an async def callback is logged as a TypeError,
    its coroutine closed (never 'never awaited'), and the next events still run."""
    seen: list[object] = []
    made: list[Coroutine[object, object, None]] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    async def body(client: object, data: object) -> None:
        seen.append(("awaited", data))  # never: it is refused

    def on_received(client: object, data: object) -> Coroutine[object, object, None]:
        made.append(body(client, data))
        return made[-1]

    registry.bind("onReceived", on_received)
    registry.bind("onSended", lambda c, d: seen.append(("sent", d)))
    caplog.set_level(logging.ERROR, logger="jfsocket")
    queue.push([*_received("a"), Sent(source=SRC, data="1"), *_received("b")])
    queue.run_all(KEY)
    assert seen == [("sent", "1")]
    assert [inspect.getcoroutinestate(c) for c in made] == [inspect.CORO_CLOSED] * 2
    errors = [r for r in caplog.records if r.name == "jfsocket"]
    assert len(errors) == 2
    for record in errors:
        assert record.exc_info is not None and isinstance(record.exc_info[1], TypeError)
        assert "onReceived" in record.getMessage()
    assert not queue.busy and (queue.pushed, queue.done) == (3, 3)

    async def plain_async_def(client: object, data: object) -> None:
        seen.append(("awaited", data))  # never: it is refused

    registry.bind("onReceived", plain_async_def)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        queue.push(_received("c"))
        queue.run_all(KEY)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert seen == [("sent", "1")] and queue.done == 4


# -- errors and interruption -----------------------------------------------------------


def test_a_callback_that_raises_is_logged_and_the_drain_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An Exception in a callback is logged on 'jfsocket' with its traceback, the
    event's key and source; the events behind it still run."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    boom = ValueError("boom")

    def on_received(client: object, data: object) -> None:
        if data == "bad":
            raise boom
        seen.append(data)

    def on_sended(client: object, data: object) -> None:
        raise RuntimeError("sended")

    registry.bind("onReceived", on_received)
    registry.bind("onSended", on_sended)
    caplog.set_level(logging.ERROR, logger="jfsocket")
    assert queue.received(SRC, ["a", "bad", "b"])  # the fast path
    assert queue.push([Sent(source=SRC, data="s"), *_received("c")]) is False  # typed events
    assert queue.run(KEY) is None
    assert seen == ["a", "b", "c"]
    records = [r for r in caplog.records if r.name == "jfsocket"]
    assert len(records) == 2
    first, second = records
    assert first.exc_info is not None and first.exc_info[1] is boom
    assert first.exc_info[2] is not None  # the traceback
    assert "on_received" in first.getMessage() and "onReceived" in first.getMessage()
    assert repr(SRC) in first.getMessage()
    assert second.exc_info is not None and isinstance(second.exc_info[1], RuntimeError)
    assert "onSended" in second.getMessage() and repr(SRC) in second.getMessage()
    assert not queue.busy and (queue.pushed, queue.done) == (5, 5)


def test_a_base_exception_in_a_callback_leaves_the_rest_to_the_next_drainer() -> None:
    """KeyboardInterrupt in a plain callback: it propagates, the dispatcher is no longer
    busy, the interrupted call is done, the host is asked to resume, and the next
    push drains the rest in order: nothing is lost."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    def on_received(client: object, data: object) -> None:
        seen.append(data)
        if data == "b":
            raise KeyboardInterrupt

    registry.bind("onReceived", on_received)
    assert queue.push(_received("a", "b", "c", "d"))
    with pytest.raises(KeyboardInterrupt):
        queue.run(KEY)
    assert seen == ["a", "b"]
    assert not queue.busy and queue.queued == 2
    assert (queue.pushed, queue.done) == (4, 2)
    assert host.resumes == 1
    assert queue.push([Sent(source=SRC, data="unbound")]) is True  # behind what is left
    assert queue.received(SRC, ["e"]) is False
    assert queue.run(KEY) is None
    assert seen == ["a", "b", "c", "d", "e"]
    assert not queue.busy and (queue.pushed, queue.done) == (6, 6)
    assert host.resumes == 1


def test_an_interrupted_drain_is_claimed_by_whoever_resumes_it() -> None:
    """After an interruption, claim() makes the caller the drainer of what is left,
    once; with nothing left, the host is not asked to resume."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    def on_received(client: object, data: object) -> None:
        seen.append(data)
        if data in ("a", "last"):
            raise KeyboardInterrupt

    registry.bind("onReceived", on_received)
    queue.push(_received("a", "b", "c"))
    with pytest.raises(KeyboardInterrupt):
        queue.run(KEY)
    assert host.resumes == 1
    assert queue.claim() is True
    assert queue.claim() is False  # one drainer
    assert queue.push(_received("d")) is False
    assert queue.run(KEY) is None
    assert seen == ["a", "b", "c", "d"]
    assert queue.claim() is False  # nothing left

    queue.push(_received("last"))
    with pytest.raises(KeyboardInterrupt):
        queue.run(KEY)
    assert host.resumes == 1  # nothing was left
    assert not queue.busy and (queue.pushed, queue.done) == (5, 5)
    assert queue.claim() is False


def test_release_leaves_the_queue_to_the_next_pusher() -> None:
    """A pusher told to drain may leave it to someone else (release); the next push
    or claim then drains everything, in order."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda c, d: seen.append(d)})
    queue = Dispatcher(registry)
    assert queue.push(_received("a"))
    queue.release()
    assert not queue.busy and queue.queued == 1
    assert queue.push(_received("b")) is True
    queue.release()
    assert queue.claim() is True
    assert queue.run() is None
    assert seen == ["a", "b"]


class _Cancelled(BaseException):
    """A runtime's cancellation (trio.Cancelled, asyncio.CancelledError)."""


@pytest.mark.parametrize("how", ["close", "throw"])
def test_interrupting_steps_mid_await_leaves_the_rest(how: str) -> None:
    """Closing steps() (or throwing a cancellation into it) while an async callback is
    awaited: not busy, that call done, resume asked for since events are left, and
    the next claim drains them in order."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    async def on_received(client: object, data: object) -> None:
        seen.append(f"start {data}")
        await _Step()
        seen.append(f"end {data}")

    registry.bind("onReceived", on_received)
    registry.bind("onSended", lambda c, d: seen.append(("sent", d)))
    queue.push([*_received("a"), Sent(source=SRC, data="1"), *_received("b")])
    pending = queue.run(KEY)
    assert pending is not None
    steps = queue.steps(KEY, pending)
    awaitable, _ = next(steps)
    assert isinstance(awaitable, Coroutine)
    awaitable.send(None)  # suspended mid-await, when the cancellation comes
    assert inside(KEY)
    if how == "close":
        steps.close()
    else:
        with pytest.raises(_Cancelled):
            steps.throw(_Cancelled())
    awaitable.close()  # the binding's cancellation ends the callback too
    assert not inside(KEY)
    assert not queue.busy and queue.queued == 2
    assert (queue.pushed, queue.done) == (3, 1)
    assert host.resumes == 1
    assert queue.claim() is True
    _drain(queue, KEY)
    assert seen == ["start a", ("sent", "1"), "start b", "end b"]
    assert not queue.busy and (queue.pushed, queue.done) == (3, 3)
    assert host.resumes == 1


def test_interrupting_the_last_await_asks_no_resume() -> None:
    """An interrupted await with nothing queued behind it: no resume, and the next
    push drains as usual."""
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    async def on_received(client: object, data: object) -> None:
        await _Step()

    registry.bind("onReceived", on_received)
    queue.push(_received("a"))
    steps = queue.steps(KEY)
    awaitable, _ = next(steps)
    steps.close()
    assert isinstance(awaitable, Coroutine)
    awaitable.close()
    assert host.resumes == 0
    assert not queue.busy and (queue.pushed, queue.done) == (1, 1)
    assert queue.push(_received("b")) is True
    _drain(queue, KEY)
    assert (queue.pushed, queue.done) == (2, 2)


# -- inside ------------------------------------------------------------------------------


def test_inside_and_innermost_follow_nested_drains() -> None:
    """While a callback runs, its drainer is inside and innermost names the dispatcher
    being drained, the inner one of a callback that drains another; after, neither."""
    seen: list[tuple[str, bool, Dispatcher | None]] = []
    outer_registry = CallbackRegistry(Role.CLIENT)
    inner_registry = CallbackRegistry(Role.CLIENT)
    outer = Dispatcher(outer_registry)
    inner = Dispatcher(inner_registry)

    def look(where: str) -> None:
        seen.append((where, inside(KEY), innermost(KEY)))

    def on_outer(client: object, data: object) -> None:
        look("outer")
        assert not inside("another task") and innermost("another task") is None
        if inner.push(_received("x")):
            assert inner.run(KEY) is None
        look("outer after inner")

    inner_registry.bind("onReceived", lambda c, d: look("inner"))
    outer_registry.bind("onReceived", on_outer)
    assert not inside(KEY)
    outer.push(_received("a"))
    assert outer.run(KEY) is None
    assert seen == [
        ("outer", True, outer),
        ("inner", True, inner),
        ("outer after inner", True, outer),
    ]


def test_inside_is_left_when_a_callback_interrupts() -> None:
    """A BaseException out of a callback does not leave its drainer marked inside."""
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    def on_received(client: object, data: object) -> None:
        assert inside(KEY)
        raise KeyboardInterrupt

    registry.bind("onReceived", on_received)
    queue.push(_received("a"))
    with pytest.raises(KeyboardInterrupt):
        queue.run(KEY)
    # (the autouse fixture checks KEY is no longer inside)


def test_a_drainer_named_none_is_not_inside() -> None:
    """run(None): a drainer that may wait anyway (nobody names it); it is not inside."""
    seen: list[tuple[bool, Dispatcher | None]] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    registry.bind("onReceived", lambda c, d: seen.append((inside(None), innermost(None))))
    queue.push(_received("a"))
    assert queue.run(None) is None
    queue.push(_received("b"))
    _drain(queue, None)
    assert seen == [(False, None), (False, None)]


def test_mark_inside_counts_only_in_its_own_context() -> None:
    """A helper task marked inside counts as inside (for any key), its creator not."""

    def helper() -> tuple[bool, bool]:
        before = inside(KEY)
        mark_inside()
        return before, inside(KEY)

    context = contextvars.copy_context()
    assert context.run(helper) == (False, True)
    assert context.run(inside, "whoever") is True
    assert not inside(KEY) and not inside(None)
    assert contextvars.copy_context().run(inside, KEY) is False  # a new copy: not marked


# -- the host's hooks ----------------------------------------------------------------------


def test_waiters_are_woken_at_each_calls_end() -> None:
    """While someone waits, every call's end wakes the host (with done already counted),
    and the drain's end once more, no longer busy; with nobody waiting, never."""
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda c, d: None})
    queue, host = _hosted(registry)
    queue.push(_received("a", "b"))
    assert queue.run(KEY) is None
    assert host.wakes == []

    queue.waiting = 1
    queue.push([*_received("c"), Sent(source=SRC, data="unbound"), *_received("d")])
    assert queue.run(KEY) is None
    assert [done for done, _ in host.wakes][:3] == [3, 4, 5]
    assert host.wakes[-1] == (5, False)
    assert all(busy for _, busy in host.wakes[:3])


def test_waiters_are_woken_after_async_calls_and_interruptions() -> None:
    """The end of an awaited callback wakes too, and so does an interruption."""

    async def on_received(client: object, data: object) -> None:
        await _Step()

    registry = CallbackRegistry(Role.CLIENT, {"onReceived": on_received})
    queue, host = _hosted(registry)
    queue.waiting = 1
    queue.push(_received("a", "b"))
    steps = queue.steps(KEY)
    _finish(next(steps)[0])
    awaitable, _ = next(steps)
    assert host.wakes == [(1, True)]
    steps.close()
    assert isinstance(awaitable, Coroutine)
    awaitable.close()
    assert host.wakes[1:] == [(2, False)]

    queue.push(_received("c"))
    _drain(queue, KEY)
    assert host.wakes[2:] == [(3, True), (3, False)]


def test_on_idle_runs_once_when_the_queue_is_next_idle() -> None:
    """on_idle runs after the drain's last callback, once, and is cleared."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda c, d: seen.append(d)})
    queue = Dispatcher(registry)
    queue.push(_received("a", "b"))
    queue.on_idle = lambda: seen.append(("idle", queue.busy, queue.queued))
    assert queue.run(KEY) is None
    assert seen == ["a", "b", ("idle", False, 0)]
    assert queue.on_idle is None
    queue.push(_received("c"))
    assert queue.run(KEY) is None
    assert seen[-1] == "c"


def test_on_idle_set_by_a_callback_runs_at_that_drains_end() -> None:
    """A hook set during a drain (a paused reader) waits for the queue to be empty."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    def on_received(client: object, data: object) -> None:
        seen.append(data)
        if data == "a":
            queue.on_idle = lambda: seen.append("idle")

    registry.bind("onReceived", on_received)
    queue.push(_received("a", "b"))
    _drain(queue, KEY)
    assert seen == ["a", "b", "idle"]


# -- the guard ---------------------------------------------------------------------------


def test_emit_pushes_under_the_guard_and_drains_outside_it() -> None:
    """emit() holds the guard around its push (the stream sees it held), never while
    a callback runs, and again for the drainer's last look at the queue."""
    seen: list[tuple[str, bool]] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue, guard = _guarded(registry)

    class Watching(_Stream):
        def send_nowait(self, event: StreamEvent) -> None:
            seen.append(("stream", guard.holding))

    queue.emit([Sent(source=SRC, data="unbound")], key=KEY)  # done at once
    assert guard.held == [((0, 0), (1, 0))]
    assert not queue.busy and queue.done == 1

    registry.bind("onReceived", lambda c, d: seen.append(("callback", guard.holding)))
    queue.subscribe(Watching())
    guard.held.clear()
    queue.emit(_received("a", "b"), key=KEY)
    assert seen == [("stream", True), ("stream", True), ("callback", False), ("callback", False)]
    assert guard.held[0] == ((1, 0), (3, 2))  # the push
    assert guard.held[-1] == ((3, 0), (3, 0))  # the last look
    assert guard.nested == 0 and not guard.holding
    assert not queue.busy and queue.done == 3


def test_a_push_just_before_the_last_look_joins_the_drain() -> None:
    """A push made while the drainer waits for the guard, its queue empty, is seen
    under the guard and run by that drainer: the pusher was told not to drain."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda c, d: seen.append(d)})
    queue, guard = _guarded(registry)
    said: list[bool] = []

    def pusher_first() -> None:
        if queue.busy and queue.queued == 0 and not said:
            said.append(queue.push(_received("late")))

    guard.before = pusher_first
    queue.emit(_received("a"), key=KEY)
    assert said == [False]
    assert seen == ["a", "late"]
    assert not queue.busy and (queue.pushed, queue.done) == (2, 2)


def test_a_push_from_another_thread_joins_a_running_drain() -> None:
    """With a real lock as guard: no lock is held while a callback runs, and another
    thread's push meanwhile is run by the same drainer, after the callback."""
    seen: list[object] = []
    lock = threading.Lock()
    started, go = threading.Event(), threading.Event()
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry, guard=lock)
    drainers: set[int | None] = set()
    said: bool | None = None

    def on_received(client: object, data: object) -> None:
        drainers.add(threading.get_ident())
        seen.append(data)
        if data == "a":
            started.set()
            assert go.wait(10)

    registry.bind("onReceived", on_received)
    drainer = threading.Thread(target=queue.emit, args=(_received("a"),), kwargs={"key": KEY})
    drainer.start()
    try:
        assert started.wait(10)
        assert lock.acquire(timeout=10), "the guard is held while a callback runs"
        try:
            said = queue.push(_received("b"))
        finally:
            lock.release()
    finally:
        go.set()
        drainer.join(10)
    assert not drainer.is_alive()
    assert said is False
    assert seen == ["a", "b"] and drainers == {drainer.ident}
    assert not queue.busy and (queue.pushed, queue.done) == (2, 2)


def test_on_idle_runs_when_an_interrupted_drain_left_nothing() -> None:
    """Interrupted on its last event, the queue is idle all the same: the hook runs
    (a reader paused until then would otherwise stay paused: it pushes no more)."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    def on_received(client: object, data: object) -> None:
        seen.append(data)
        raise KeyboardInterrupt

    registry.bind("onReceived", on_received)
    queue.push(_received("last"))
    queue.on_idle = lambda: seen.append("idle")
    with pytest.raises(KeyboardInterrupt):
        queue.run(KEY)
    assert seen == ["last", "idle"]
    assert queue.on_idle is None and host.resumes == 0


def test_drain_awaits_each_async_callback_in_order_and_logs_what_it_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``await dispatcher.drain(key)`` (what trio and asyncio call): each async
    callback is awaited before the next event runs; one that raises is logged."""
    seen: list[str] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)

    async def on_received(client: object, data: str) -> None:
        seen.append(f"{data} begins")
        await _Step()
        if data == "b":
            raise ValueError("boom")
        seen.append(f"{data} ends")

    registry.bind("onReceived", on_received)
    assert queue.push(_received("a", "b", "c"))
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        _finish(queue.drain(KEY))
    assert seen == ["a begins", "a ends", "b begins", "c begins", "c ends"]
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == ["boom"]
    assert not queue.busy and queue.done == 3


def test_drain_interrupted_mid_await_leaves_the_rest_to_resume() -> None:
    """A cancellation thrown into the awaiting drain: it propagates, the call counts
    as done, and the host is asked to resume what is left."""
    registry = CallbackRegistry(Role.CLIENT)
    queue, host = _hosted(registry)

    async def on_received(client: object, data: str) -> None:
        await _Step()

    registry.bind("onReceived", on_received)
    queue.push(_received("a", "b"))
    coro = queue.drain(KEY)
    coro.send(None)  # suspended inside the first callback
    with pytest.raises(KeyboardInterrupt):
        coro.throw(KeyboardInterrupt())
    assert not queue.busy and queue.done == 1 and queue.queued == 1
    assert host.resumes == 1


def test_emit_without_a_guard_and_nested_run_all(caplog: pytest.LogCaptureFixture) -> None:
    """emit() on an unguarded dispatcher drains there; run_all() nested under the
    same key (a callback draining another object) stacks; an awaitable that is not
    a coroutine is refused too, and waiters are woken after it."""
    outer_registry, inner_registry = CallbackRegistry(Role.CLIENT), CallbackRegistry(Role.CLIENT)
    outer, inner_host = Dispatcher(outer_registry), _Host()
    inner = Dispatcher(inner_registry, host=inner_host)
    inner_host.dispatcher = inner
    seen: list[object] = []

    def on_outer(client: object, data: str) -> None:
        seen.append(("outer", innermost(KEY) is outer))
        inner.waiting = 1
        assert inner.push(_received("x"))
        inner.run_all(KEY)
        inner.waiting = 0
        seen.append(("back", innermost(KEY) is outer))

    def on_inner(client: object, data: str) -> object:
        seen.append(("inner", innermost(KEY) is inner))
        return _Step()  # awaitable, not a coroutine

    outer_registry.bind("onReceived", on_outer)
    inner_registry.bind("onReceived", on_inner)
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        outer.emit(_received("a"), key=KEY)
    assert seen == [("outer", True), ("inner", True), ("back", True)]
    assert any(isinstance(r.exc_info[1], TypeError) for r in caplog.records if r.exc_info)
    assert inner_host.wakes and inner_host.wakes[0] == (1, True)
    assert not outer.busy and not inner.busy


def test_an_interrupted_drain_gives_the_queue_up_under_the_guard() -> None:
    """KeyboardInterrupt in a guarded dispatcher's callback: not busy any more, set
    so with the guard held (a pusher on another thread sees it or becomes drainer)."""
    registry = CallbackRegistry(Role.CLIENT)
    queue, guard = _guarded(registry)

    def on_received(client: object, data: str) -> None:
        raise KeyboardInterrupt

    registry.bind("onReceived", on_received)
    with pytest.raises(KeyboardInterrupt):
        queue.emit(_received("b"))
    assert not queue.busy and not guard.holding
    assert guard.held[-1][1] == (queue.pushed, 0)


def test_run_all_keeps_few_idle_thread_stacks() -> None:
    """run_all() keeps a thread's empty stack for its next drain, but only so many:
    keys that come and go (threads of a busy server) do not grow the table."""
    from jfsocket.core import dispatch

    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda *_: None})
    queue = Dispatcher(registry)
    for n in range(dispatch._THREADS_KEPT + 50):
        assert queue.push(_received("x"))
        queue.run_all(("thread", n))
        assert not inside(("thread", n))
    assert len(dispatch._DRAINING) <= dispatch._THREADS_KEPT + 1
    for n in range(dispatch._THREADS_KEPT + 50):  # leave the table as the other tests expect
        dispatch._DRAINING.pop(("thread", n), None)


def test_pending_since_says_whether_a_step_left_events_to_wait_for() -> None:
    """A step that pushed nothing (a SENDED nobody would see) leaves nothing to wait
    for; one that queued an event behind a running drain does, until it has run."""
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": lambda *_: None})
    queue = Dispatcher(registry)
    assert queue.push(_received("a"))  # we drain: busy
    before = queue.pushed
    assert not queue.pending_since(before)  # nothing new
    queue.push([Sent(source=SRC, data=b"unbound")])  # queued behind, though unbound
    assert queue.pending_since(before)
    assert queue.run(KEY) is None
    assert not queue.pending_since(before)  # it has run


def test_push_behind_queues_after_the_running_callback_and_streams_see_it_as_ours() -> None:
    """A server's STOPED asked for from inside a client's callback: it runs after
    that callback's queued events, is looked up in the server's registry, and only
    the server's stream sees it (under the client's guard); with no callback
    running it is simply pushed here."""
    server_registry = CallbackRegistry(Role.SERVER)
    server = Dispatcher(server_registry, last=(Stopped,))
    client, guard = _guarded(server_registry.child(Role.CLIENT))
    seen: list[object] = []
    server_registry.bind("onStoped", lambda s: seen.append("STOPED"))
    server_registry.bind("onReceived", lambda c, d: seen.append(d))
    mine, theirs = _Stream(), _Stream()
    client.subscribe(mine)
    server.subscribe(theirs)
    assert client.push(_received("a", "b"))
    assert server.push_behind(client, [Stopped(source="srv")]) is False  # client is busy
    assert guard.held  # pushed under the client's guard
    client.run(KEY)
    assert seen == ["a", "b", "STOPED"]
    assert [type(e) for e in mine.events] == [Received, Received]
    assert theirs.closed and isinstance(theirs.events[-1], Stopped)
    idle = Dispatcher(server_registry)
    assert idle.push_behind(None, [Stopped(source="srv")]) is True  # none running: here
