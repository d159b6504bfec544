"""The dispatch queue: order, one drainer, late binding, counters."""

from __future__ import annotations

from jfsocket.core import (
    CallbackRegistry,
    Connected,
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
