"""The dispatch queue: order, one drainer, late binding, counters."""

from __future__ import annotations

from jfsocket.core import (
    SENT_SLOT,
    CallbackRegistry,
    Connected,
    Disconnected,
    DispatchQueue,
    Event,
    EventTypes,
    Received,
    Role,
    Sent,
    Stopped,
    invoke,
)

SRC = "c"


def test_first_pusher_drains_and_later_pushes_join_the_same_drain() -> None:
    """push on an idle queue says 'drain'; pushes during the drain do not."""
    seen: list[object] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = DispatchQueue(registry)

    def on_received(client: object, data: object) -> None:
        seen.append(data)
        # A callback that causes more events: queued behind, not run inside.
        assert queue.push([Sent(source=SRC, data="reply")]) is False

    registry.bind(EventTypes.RECEIVED, on_received)
    registry.bind(EventTypes.SENDED, lambda c, d: seen.append(("sent", d)))
    assert queue.push([Received(source=SRC, data="a"), Received(source=SRC, data="b")])
    assert queue.busy
    assert queue.push([Received(source=SRC, data="c")]) is False
    while (call := queue.next_call()) is not None:
        invoke(*call)
    assert seen == ["a", "b", "c", ("sent", "reply"), ("sent", "reply"), ("sent", "reply")]
    assert not queue.busy
    assert (queue.pushed, queue.done) == (6, 6)


def test_callbacks_are_looked_up_when_they_run() -> None:
    """Binding after the push but before the drain takes effect; unbound events are skipped."""
    registry = CallbackRegistry(Role.CLIENT)
    registry.bind("onConnected", print)
    queue = DispatchQueue(registry)
    assert queue.push([Connected(source=SRC, host=("127.0.0.1", 1), remote=("127.0.0.1", 2))])
    events: list[Event] = [Sent(source=SRC, data=b"1"), Received(source=SRC, data="x")]
    assert queue.push(events) is False  # busy: queued behind CONNECTED
    registry.bind("onReceived", print)
    assert queue.next_call() is not None  # CONNECTED
    call = queue.next_call()
    assert call is not None
    assert call[0] is print
    assert call[1] == (SRC, "x")
    assert queue.done == 2  # CONNECTED and the skipped SENDED; the RECEIVED is running
    assert queue.next_call() is None
    assert queue.done == 3


def test_unbound_events_on_an_idle_queue_are_done_at_once() -> None:
    """Nothing bound and nobody draining: no drain is asked for, and the counts add up."""
    registry = CallbackRegistry(Role.CLIENT)
    queue = DispatchQueue(registry)
    events: list[Event] = [Sent(source=SRC, data=b"1"), Received(source=SRC, data="x")]
    assert queue.push(events) is False
    assert not queue.busy and len(queue) == 0
    assert (queue.pushed, queue.done) == (2, 2)
    registry.bind("onReceived", print)
    assert queue.push(events) is True  # one of them has a callback: all are queued, in order
    assert len(queue) == 2
    queue.abandon()  # left queued by an interrupted drainer: later events queue behind them
    assert queue.push([Sent(source=SRC, data=b"2")]) is True
    assert len(queue) == 3


def test_empty_push_and_other_registry() -> None:
    """No events: nothing to drain; an event may be looked up in another registry."""
    server = CallbackRegistry(Role.SERVER)
    queue = DispatchQueue(server.child(Role.CLIENT))
    assert queue.push([]) is False
    server.bind(EventTypes.STOPED, repr)
    assert queue.push([Stopped(source="srv")], server)
    call = queue.next_call()
    assert call is not None
    assert call[0] is repr
    assert len(queue) == 0


def test_abandon_lets_the_next_push_drain() -> None:
    """A drainer interrupted mid-callback gives up the role; the queue is not stuck."""
    registry = CallbackRegistry(Role.CLIENT, {"onReceived": print})
    queue = DispatchQueue(registry)
    queue.push([Received(source=SRC, data="a"), Received(source=SRC, data="b")])
    assert queue.next_call() is not None
    queue.abandon()
    assert queue.done == 1
    assert queue.push([Received(source=SRC, data="c")]) is True
    assert len(queue) == 2


class _Stream:
    """A sink that records what it is handed (an ``async for`` stream's stand-in)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def send_nowait(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


def _run(queue: DispatchQueue) -> None:
    while (call := queue.next_call()) is not None:
        invoke(*call)


def test_received_builds_no_event_without_a_stream() -> None:
    """The fast path queues the callback's arguments; the callback gets them as ever,
    and an exception in it is logged with the event's key and source."""
    seen: list[tuple[object, ...]] = []
    registry = CallbackRegistry(Role.CLIENT)
    queue = DispatchQueue(registry)
    assert queue.received(SRC, ["x"]) is False  # nothing bound: done at once
    assert (queue.pushed, queue.done) == (1, 1)
    registry.bind(EventTypes.RECEIVED, lambda *args: seen.append(args))
    assert queue.received(SRC, []) is False
    assert queue.received(SRC, ["a", "b"]) is True
    assert queue.received(SRC, ["c"]) is False  # busy: queued behind
    calls = queue.next_calls()
    assert [call[2] for call in calls] == [EventTypes.RECEIVED] * 3  # no Received objects
    for call in calls:
        invoke(*call)
    assert queue.next_calls() == []
    assert seen == [(SRC, "a"), (SRC, "b"), (SRC, "c")]
    assert (queue.pushed, queue.done) == (4, 4)


def test_streams_see_every_event_and_end_with_the_last() -> None:
    """A stream gets typed events (the fast path builds them then), a server's stream
    its clients' too; the object's last event ends its own streams."""
    server_registry = CallbackRegistry(Role.SERVER)
    server = DispatchQueue(server_registry, last=(Stopped,))
    client = DispatchQueue(server_registry.child(Role.CLIENT), server, last=(Disconnected,))
    mine, theirs = _Stream(), _Stream()
    client.subscribe(mine)
    server.subscribe(theirs)
    client.received(SRC, ["a"])
    assert mine.events == theirs.events == [Received(source=SRC, data="a")]
    assert not client.quiet(SENT_SLOT)  # a stream would see a SENDED
    bye = Disconnected(source=SRC, host=("127.0.0.1", 1), remote=("127.0.0.1", 2))
    client.push([bye])
    assert mine.closed and not theirs.closed
    assert theirs.events[-1] is bye
    # Queued behind a callback of the client's, but the server's own: not the client's.
    stopped = Stopped(source="srv")
    client.push([stopped], server_registry, publish=False)
    assert theirs.events[-1] is bye
    server.publish([stopped])
    assert theirs.closed and theirs.events[-1] is stopped
    assert client.quiet(SENT_SLOT)


def test_resolved_callbacks_follow_bind_on_the_server() -> None:
    """A client's callbacks are its own, else its server's, kept current by bind on
    either; a bind reaches events already queued (looked up when they run)."""
    server = CallbackRegistry(Role.SERVER)
    client = server.child(Role.CLIENT)
    queue = DispatchQueue(client)
    seen: list[str] = []
    assert queue.received(SRC, ["ignored"]) is False
    server.bind("onReceived", lambda c, d: seen.append(f"server {d}"))
    assert client.lookup(EventTypes.RECEIVED) is not None
    assert queue.push([Connected(source=SRC, host=("h", 1), remote=("r", 2))]) is False
    server.bind("onConnected", lambda *a: seen.append("connected"))
    assert queue.received(SRC, ["one"]) is True
    client.bind("onReceived", lambda c, d: seen.append(f"client {d}"))  # before it runs
    _run(queue)
    server.bind("onReceived", None)
    assert queue.received(SRC, ["two"]) is True
    _run(queue)
    client.bind("onReceived", None)
    assert queue.received(SRC, ["three"]) is False
    assert seen == ["client one", "client two"]
