"""``async for event in obj``: the core's typed events, in order, ending when done."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable

import pytest
from jfsocket.bindings.asyncio import CastReceiver, CastSender, TcpClient, TcpServer
from jfsocket.core import (
    Backoff,
    Connected,
    Disconnected,
    EventTypes,
    Received,
    Reconnecting,
    Sent,
    Started,
    Stopped,
    StreamEvent,
)

from .helpers import LOCALHOST, EventLog, accept, cancel_and_wait, raw_listener, within

pytestmark = pytest.mark.asyncio


class Collector:
    """An ``async for`` over a source in a task of its own, into :attr:`events`."""

    def __init__(self, source: AsyncIterable[StreamEvent]) -> None:
        self.events: list[StreamEvent] = []
        self.log = EventLog()  # one record per event, to wait on
        self.task = asyncio.ensure_future(self._collect(source))

    async def _collect(self, source: AsyncIterable[StreamEvent]) -> None:
        async for event in source:
            self.events.append(event)
            self.log.record(type(event).__name__, (event,))

    @classmethod
    async def start(cls, source: AsyncIterable[StreamEvent]) -> Collector:
        """Start collecting; once this returns the loop has subscribed (its first
        step runs ``__aiter__`` and waits in ``__anext__``)."""
        collector = cls(source)
        await asyncio.sleep(0)
        return collector

    async def wait_for(self, kind: type[StreamEvent], count: int = 1) -> None:
        """Wait until *count* events of type *kind* arrived."""
        await self.log.wait_for(kind.__name__, count)

    async def ended(self) -> None:
        """Wait until the ``async for`` loop has ended by itself."""
        await within(asyncio.wait({self.task}), what=f"the stream did not end: {self.events}")
        assert self.task.done() and self.task.exception() is None

    def kinds(self) -> list[type[StreamEvent]]:
        """The events' types, in order."""
        return [type(e) for e in self.events]


async def test_client_stream_in_order_and_ends_after_disconnect() -> None:
    """A client's stream: Connected, Sent, Received, Disconnected; then it ends."""
    server_log = EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(EventTypes.RECEIVED)) as server,
        TcpClient() as client,
    ):
        collector = await Collector.start(client)
        try:
            await client.connect(*server.host)
            data = b"up"
            await client.send(data)
            await server_log.wait_for("RECEIVED")
            await server.send("down")
            await collector.wait_for(Received)
            await client.close()
            await collector.ended()
        finally:
            await cancel_and_wait(collector.task)
    assert collector.kinds() == [Connected, Sent, Received, Disconnected]
    connected, sent, received, disconnected = collector.events
    assert isinstance(connected, Connected) and connected.source is client
    assert connected.host == client.host and connected.remote == server.host
    assert isinstance(sent, Sent) and sent.data is data
    assert isinstance(received, Received) and received.data == "down"
    assert not received.truncated
    assert isinstance(disconnected, Disconnected) and disconnected.error is None
    assert disconnected.type is EventTypes.DISCONNECT


async def test_client_stream_ends_when_the_peer_closes() -> None:
    """The peer closing the connection also ends ``async for`` after Disconnected."""
    with raw_listener() as listener:
        async with TcpClient() as client:
            collector = await Collector.start(client)
            try:
                await client.connect(*listener.getsockname())
                peer = await accept(listener)
                peer.close()
                await collector.ended()
            finally:
                await cancel_and_wait(collector.task)
    assert collector.kinds() == [Connected, Disconnected]


async def test_server_stream_includes_clients_and_ends_after_stoped() -> None:
    """A server's stream (subscribed before start): Started, its clients' events,
    Stopped; then it ends."""
    server = TcpServer(LOCALHOST, 0)
    collector = await Collector.start(server)
    try:
        async with server, TcpClient() as client:
            await client.connect(*server.host)
            await client.send("hello")
            await collector.wait_for(Received)
            (side,) = server.clients.values()
            await side.send("back")
        await collector.ended()
    finally:
        await cancel_and_wait(collector.task)
    events = collector.events
    assert collector.kinds() == [Started, Connected, Received, Sent, Disconnected, Stopped]
    assert events[0].source is server and events[-1].source is server
    assert all(e.source is side for e in events[1:-1])
    received = events[2]
    assert isinstance(received, Received) and received.data == "hello"


async def test_two_iterators_each_get_every_event() -> None:
    """Two ``async for`` loops on one client both see the whole stream."""
    async with TcpServer(LOCALHOST, 0) as server, TcpClient() as client:
        first = await Collector.start(client)
        second = await Collector.start(client)
        try:
            await client.connect(*server.host)
            await client.send("x")
            await client.close()
            await first.ended()
            await second.ended()
        finally:
            await cancel_and_wait(first.task)
            await cancel_and_wait(second.task)
    assert first.kinds() == [Connected, Sent, Disconnected]
    assert first.events == second.events


async def test_breaking_out_early_leaves_the_object_working() -> None:
    """``break`` out of ``async for`` after the first event: nothing is left
    running, the client keeps working, and a new ``async for`` sees what follows."""
    async with TcpServer(LOCALHOST, 0) as server, TcpClient() as client:
        first: list[StreamEvent] = []

        async def first_event() -> None:
            async for event in client:
                first.append(event)
                break

        breaker = asyncio.ensure_future(first_event())
        await asyncio.sleep(0)
        try:
            await client.connect(*server.host)
            await within(breaker)
        finally:
            await cancel_and_wait(breaker)
        assert [type(e) for e in first] == [Connected]
        later = await Collector.start(client)
        try:
            await client.send("still here")
            await client.close()
            await later.ended()
        finally:
            await cancel_and_wait(later.task)
    assert later.kinds() == [Sent, Disconnected]


async def test_receiver_stream_ends_after_stopped() -> None:
    """A receiver's stream: Started, Received (with the sender's address), Stopped;
    then it ends."""
    group = f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}"
    receiver = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
    receiver.joinGroup(group)
    collector = await Collector.start(receiver)
    try:
        async with receiver, CastSender(ttl=0, interface="127.0.0.1") as cast:
            await cast.send((group, receiver.host[1]), "datagram")
            await collector.wait_for(Received)
        await collector.ended()
    finally:
        await cancel_and_wait(collector.task)
    assert collector.kinds() == [Started, Received, Stopped]
    received = collector.events[1]
    assert isinstance(received, Received) and received.data == "datagram"
    assert received.remote is not None and received.remote[0] == "127.0.0.1"
    assert not received.truncated


async def test_a_redialing_clients_stream_goes_on_past_disconnect() -> None:
    """With reconnect, ``async for`` yields DISCONNECT, then Reconnecting (the
    typed notice), and ends only when the client is closed."""
    async with TcpServer(LOCALHOST, 0) as server:
        client = TcpClient(reconnect=Backoff(initial=0.05, maximum=0.05, jitter=0))
        async with client:
            await client.connect(*server.host)
            stream = await Collector.start(client)
            await server.stop()
            await stream.wait_for(Reconnecting)
            reconnecting = next(e for e in stream.events if isinstance(e, Reconnecting))
            assert reconnecting.attempt == 1 and reconnecting.delay == 0.05
            assert not stream.task.done()
        await within(stream.task)  # closed: the stream ended
    assert stream.kinds()[:2] == [Disconnected, Reconnecting]
