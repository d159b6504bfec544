"""``async for event in obj``: the core's typed events, in order, ending when done."""

from __future__ import annotations

from collections.abc import AsyncIterable

import pytest
import trio
from jfsocket.bindings.trio import TcpClient, TcpServer
from jfsocket.core import (
    Backoff,
    Connected,
    Disconnected,
    Event,
    EventTypes,
    Received,
    Reconnecting,
    Sent,
    Started,
    Stopped,
    StreamEvent,
)

from .conftest import LOCALHOST, EventLog, blocked, raw_listener

pytestmark = pytest.mark.trio


async def collect(
    source: AsyncIterable[StreamEvent],
    out: list[StreamEvent],
    ended: trio.Event,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Iterate *source* into *out*; set *ended* when the loop finishes.

    ``started()`` does not yield, so the ``async for`` has subscribed before the
    task that started us runs again.
    """
    task_status.started()
    async for event in source:
        out.append(event)
    ended.set()


async def test_client_stream_in_order_and_ends_after_disconnect() -> None:
    """A client's stream: Connected, Sent, Received, Disconnected; then it ends."""
    events: list[Event] = []
    ended = trio.Event()
    server_log = EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(EventTypes.RECEIVED)) as server,
        TcpClient() as client,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(collect, client, events, ended)
        await client.connect(*server.host)
        data = b"up"
        await client.send(data)
        await server_log.wait_for("RECEIVED")
        await server.send("down")
        with trio.fail_after(5):
            while len(events) < 3:
                await trio.sleep(0)
        await client.close()
        with trio.fail_after(5):
            await ended.wait()
    assert [type(e) for e in events] == [Connected, Sent, Received, Disconnected]
    connected, sent, received, disconnected = events
    assert isinstance(connected, Connected) and connected.source is client
    assert connected.host == client.host and connected.remote == server.host
    assert isinstance(sent, Sent) and sent.data is data
    assert isinstance(received, Received) and received.data == "down"
    assert not received.truncated
    assert isinstance(disconnected, Disconnected) and disconnected.error is None
    assert disconnected.type is EventTypes.DISCONNECT


async def test_client_stream_ends_when_the_peer_closes() -> None:
    """The peer closing the connection also ends ``async for`` after Disconnected."""
    events: list[Event] = []
    ended = trio.Event()
    async with raw_listener() as listener, trio.open_nursery() as nursery:
        async with TcpClient() as client:
            await nursery.start(collect, client, events, ended)
            await client.connect(*listener.getsockname())
            peer, _ = await listener.accept()
            peer.close()
            with trio.fail_after(5):
                while not events or not isinstance(events[-1], Disconnected):
                    await trio.sleep(0)
        await blocked()  # were the stream ending, it would have ended by now
        nursery.cancel_scope.cancel()  # do not hang when it does not
    assert [type(e) for e in events] == [Connected, Disconnected]
    assert ended.is_set()


async def test_server_stream_includes_clients_and_ends_after_stoped() -> None:
    """A server's stream (subscribed before start): Started, its clients' events,
    Stopped; then it ends."""
    events: list[Event] = []
    ended = trio.Event()
    server = TcpServer(LOCALHOST, 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(collect, server, events, ended)
        async with server, TcpClient() as client:
            await client.connect(*server.host)
            await client.send("hello")
            with trio.fail_after(5):
                while not any(isinstance(e, Received) for e in events):
                    await trio.sleep(0)
            (side,) = server.clients.values()
            await side.send("back")
        with trio.fail_after(5):
            await ended.wait()
    kinds = [type(e) for e in events]
    assert kinds == [Started, Connected, Received, Sent, Disconnected, Stopped]
    assert events[0].source is server and events[-1].source is server
    assert all(e.source is side for e in events[1:-1])
    received = events[2]
    assert isinstance(received, Received) and received.data == "hello"


async def test_two_iterators_each_get_every_event() -> None:
    """Two ``async for`` loops on one client both see the whole stream."""
    first: list[Event] = []
    second: list[Event] = []
    ended = [trio.Event(), trio.Event()]
    async with (
        TcpServer(LOCALHOST, 0) as server,
        trio.open_nursery() as nursery,
    ):
        async with TcpClient() as client:
            await nursery.start(collect, client, first, ended[0])
            await nursery.start(collect, client, second, ended[1])
            await client.connect(*server.host)
            await client.send("x")
        with trio.fail_after(5):
            for event in ended:
                await event.wait()
    assert [type(e) for e in first] == [Connected, Sent, Disconnected]
    assert first == second


async def test_a_redialing_clients_stream_goes_on_past_disconnect() -> None:
    """With reconnect, ``async for`` yields DISCONNECT, then Reconnecting (the
    typed notice), and ends only when the client is closed."""
    events: list[StreamEvent] = []
    ended = trio.Event()
    backoff = Backoff(initial=0.05, maximum=0.05, jitter=0)
    async with TcpServer(LOCALHOST, 0) as server, TcpClient(reconnect=backoff) as client:
        await client.connect(*server.host)
        async with trio.open_nursery() as nursery:
            await nursery.start(collect, client, events, ended)
            await server.stop()
            with trio.fail_after(5):
                while not any(isinstance(e, Reconnecting) for e in events):
                    await trio.sleep(0)
            assert not ended.is_set()
            await client.close()
            with trio.fail_after(5):
                await ended.wait()
    assert [type(e) for e in events][:2] == [Disconnected, Reconnecting]
