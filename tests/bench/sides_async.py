"""jfsocket's sides on the async bindings, written once for trio and asyncio.

The two bindings have the same API (SPEC §6); a :class:`Flavour` names one of
them and what its runtime waits with.  Callbacks are what a user would write:
``async def`` ones where they send, plain ones where they only count.  Every
wait is bounded by the side's whole-run limit (``sides_trio.run``,
``sides_asyncio.run``) and by its polls of the control block.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Protocol

import attrs
from jfsocket.core import EventTypes

from .counters import (
    SETTLE_POLL,
    Arrivals,
    Countdown,
    Gauge,
    Tally,
    Volley,
    blast_async,
    echo,
)
from .peers import Peer
from .plumbing import GROUP, LOOPBACK, rss, window
from .scenarios import (
    BACKLOG,
    CHUNK,
    DATAGRAM,
    DATAGRAM_RECV,
    FANOUT_SIZE,
    HOLD_STEP,
    PING_RECV,
    PING_SIZE,
)
from .tlsfiles import client_context, server_context

if TYPE_CHECKING:
    from jfsocket.bindings import asyncio as jf_asyncio
    from jfsocket.bindings import trio as jf_trio

__all__ = ["SIDES", "AsyncSide", "Flavour", "Waitable"]

REQUEST: Final = bytes(range(PING_SIZE))
BLOCK: Final = bytes(CHUNK)
MESSAGE: Final = bytes(FANOUT_SIZE)
PAYLOAD: Final = bytes(DATAGRAM)


class Waitable(Protocol):
    """``trio.Event`` or ``asyncio.Event``."""

    def set(self) -> None:
        """Wake the waiters."""

    async def wait(self) -> object:
        """Until set."""


@attrs.frozen(kw_only=True)
class Flavour:
    """An async binding's classes, and its runtime's event and sleep."""

    TcpServer: type[jf_trio.TcpServer] | type[jf_asyncio.TcpServer]
    TcpClient: type[jf_trio.TcpClient] | type[jf_asyncio.TcpClient]
    CastReceiver: type[jf_trio.CastReceiver] | type[jf_asyncio.CastReceiver]
    CastSender: type[jf_trio.CastSender] | type[jf_asyncio.CastSender]
    event: Callable[[], Waitable]
    sleep: Callable[[float], Awaitable[object]]
    bulk_recv: int = CHUNK  # the bulk server's recv_buffer: what the raw code reads at most


AsyncSide = Callable[[Peer, Flavour], Awaitable[None]]


async def _wait(peer: Peer, jf: Flavour, ready: Callable[[], bool], what: str) -> None:
    await peer.wait_async(ready, what, jf.sleep)


# -- ping-pong -------------------------------------------------------------------


async def _ping_server(peer: Peer, jf: Flavour) -> None:
    gone = jf.event()
    async with jf.TcpServer(
        LOOPBACK,
        0,
        {EventTypes.RECEIVED: echo, EventTypes.DISCONNECT: lambda *_: gone.set()},
        encoding=None,
        recv_buffer=PING_RECV,
        ssl=server_context(peer.job),
    ) as server:
        peer.announce(server.host[1])
        peer.begin()
        peer.step("echoing until the client leaves")
        await gone.wait()
        peer.end()


async def _ping_client(peer: Peer, jf: Flavour) -> None:
    done = jf.event()
    volley = Volley(peer.count, REQUEST, done.set)
    async with jf.TcpClient(
        None,
        {EventTypes.RECEIVED: volley.on_received},
        encoding=None,
        recv_buffer=PING_RECV,
        ssl=client_context(peer.job),
    ) as client:
        await client.connect(LOOPBACK, peer.port)
        peer.begin()
        peer.step(f"{peer.count} round trips")
        await client.send(REQUEST)
        await done.wait()
        peer.end(volley.rounds, at=volley.finished)


# -- bulk ------------------------------------------------------------------------


async def _bulk_server(peer: Peer, jf: Flavour) -> None:
    arrived = jf.event()
    tally = Tally(peer.count * CHUNK, arrived.set)
    async with jf.TcpServer(
        LOOPBACK,
        0,
        {EventTypes.RECEIVED: tally.on_received},
        encoding=None,
        recv_buffer=jf.bulk_recv,
        ssl=server_context(peer.job),
    ) as server:
        peer.announce(server.host[1])
        peer.begin()
        peer.step("receiving every byte")
        await arrived.wait()
        peer.end(tally.got // CHUNK, at=tally.finished)
        peer.done()


async def _bulk_client(peer: Peer, jf: Flavour) -> None:
    async with jf.TcpClient(encoding=None, ssl=client_context(peer.job)) as client:
        await client.connect(LOOPBACK, peer.port)
        send = client.send
        peer.begin()
        peer.step(f"sending {peer.count} writes")
        for _ in range(peer.count):
            await send(BLOCK)
        await _wait(peer, jf, peer.peer_done, "the server counting every byte")
        peer.end(peer.count)


# -- fan-out ---------------------------------------------------------------------


async def _fanout_server(peer: Peer, jf: Flavour) -> None:
    connected = jf.event()
    arrivals = Countdown(peer.clients, connected.set)
    async with jf.TcpServer(
        LOOPBACK, 0, {EventTypes.CONNECTED: arrivals.arrive}, encoding=None, backlog=BACKLOG
    ) as server:
        peer.announce(server.host[1])
        peer.step(f"accepting {peer.clients} clients")
        await connected.wait()
        await _wait(peer, jf, peer.going, "the clients getting ready")
        send = server.send
        peer.begin()
        peer.step(f"sending {peer.count} messages")
        for _ in range(peer.count):
            await send(MESSAGE)
        await _wait(peer, jf, peer.peer_done, "every client receiving every message")
        peer.end(peer.count)


async def _fanout_client(peer: Peer, jf: Flavour) -> None:
    arrived = jf.event()
    complete = Countdown(peer.clients, arrived.set)
    tallies = [Tally(peer.count * FANOUT_SIZE, complete.arrive) for _ in range(peer.clients)]
    async with contextlib.AsyncExitStack() as stack:
        for tally in tallies:
            client = jf.TcpClient(
                None, {EventTypes.RECEIVED: tally.on_received}, encoding=None, recv_buffer=CHUNK
            )
            await stack.enter_async_context(client)
            await client.connect(LOOPBACK, peer.port)
        peer.begin()
        peer.go()
        peer.step("every client receiving every message")
        await arrived.wait()
        peer.end(sum(tally.got for tally in tallies) // FANOUT_SIZE, at=complete.finished)
        peer.done()


# -- multicast -------------------------------------------------------------------


async def _cast_receiver(peer: Peer, jf: Flavour) -> None:
    gauge = Gauge(peer)
    receiver = jf.CastReceiver(
        ("0.0.0.0", 0),
        {EventTypes.RECEIVED: gauge.on_received},
        interface=LOOPBACK,
        encoding=None,
        recv_buffer=DATAGRAM_RECV,
    )
    receiver.joinGroup(GROUP)
    async with receiver:
        peer.window = window(receiver)
        peer.announce(receiver.host[1])
        peer.begin()
        await peer.wait_async(gauge.over, "receiving", jf.sleep, SETTLE_POLL)
        peer.end(gauge.count, at=gauge.last)


async def _cast_sender(peer: Peer, jf: Flavour) -> None:
    target = (GROUP, peer.port)
    async with jf.CastSender(ttl=0, interface=LOOPBACK, encoding=None) as sender:
        send = sender.send

        async def burst(n: int) -> None:
            for _ in range(n):
                await send(target, PAYLOAD)

        peer.begin()
        peer.end(await blast_async(peer, burst, jf.sleep))
        peer.done()


# -- connections -----------------------------------------------------------------


async def _hold_server(peer: Peer, jf: Flavour) -> None:
    connected = jf.event()
    arrivals = Arrivals(peer, connected.set)
    async with jf.TcpServer(
        LOOPBACK, 0, {EventTypes.CONNECTED: arrivals.arrive}, backlog=BACKLOG
    ) as server:
        gc.collect()
        before = rss()
        peer.announce(server.host[1])
        peer.begin()
        peer.step(f"accepting {peer.count} connections")
        await connected.wait()
        peer.end(arrivals.got, at=arrivals.finished)
        gc.collect()
        peer.extra["rss"] = rss() - before
        peer.done()


async def _hold_client(peer: Peer, jf: Flavour) -> None:
    async with contextlib.AsyncExitStack() as stack:
        peer.begin()
        for index in range(peer.count):
            await peer.keep_up_async(index, HOLD_STEP, jf.sleep)
            client = jf.TcpClient()
            await stack.enter_async_context(client)
            await client.connect(LOOPBACK, peer.port)
        await _wait(
            peer, jf, lambda: peer.progress >= peer.count, "the server accepting every connection"
        )
        peer.end(peer.count)
        await _wait(peer, jf, peer.peer_done, "the server measuring its memory")


SIDES: Final[dict[tuple[str, str], AsyncSide]] = {
    ("ping-pong", "server"): _ping_server,
    ("ping-pong", "client"): _ping_client,
    ("bulk", "server"): _bulk_server,
    ("bulk", "client"): _bulk_client,
    ("tls-ping-pong", "server"): _ping_server,
    ("tls-ping-pong", "client"): _ping_client,
    ("tls-bulk", "server"): _bulk_server,
    ("tls-bulk", "client"): _bulk_client,
    ("fan-out", "server"): _fanout_server,
    ("fan-out", "client"): _fanout_client,
    ("multicast", "server"): _cast_receiver,
    ("multicast", "client"): _cast_sender,
    ("connections", "server"): _hold_server,
    ("connections", "client"): _hold_client,
}
