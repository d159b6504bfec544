"""The asyncio runtime's sides, on asyncio's default loop or on uvloop: jfsocket's
asyncio binding (:mod:`tests.bench.sides_async`), raw asyncio ``Protocol``
code (``loop.create_server`` / ``create_connection`` /
``create_datagram_endpoint``), and asyncio streams (ping-pong only).

Each side runs in a fresh event loop, within its time limit, and fails if it
leaves a task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, cast

from jfsocket.bindings import asyncio as jf_asyncio

from . import sides_async
from .counters import SETTLE_POLL, Arrivals, Countdown, Gauge, Rounds, Tally, blast_async
from .peers import Job, Peer
from .plumbing import GROUP, LOOPBACK, loopback_sender, raw_receiver, rss, window
from .scenarios import BACKLOG, CHUNK, FANOUT_SIZE, HOLD_STEP, PING_RECV
from .sides_async import BLOCK, MESSAGE, PAYLOAD, REQUEST
from .tlsfiles import HOSTNAME, client_context, server_context

__all__ = ["FLAVOUR", "SIDES", "prepare", "run"]

Side = Callable[[Peer], Awaitable[None]]
BULK_RECV: Final = 256 << 10  # what asyncio's and uvloop's transports read at most
_P = TypeVar("_P", bound="_Tracked")

FLAVOUR: Final = sides_async.Flavour(
    TcpServer=jf_asyncio.TcpServer,
    TcpClient=jf_asyncio.TcpClient,
    CastReceiver=jf_asyncio.CastReceiver,
    CastSender=jf_asyncio.CastSender,
    event=asyncio.Event,
    sleep=asyncio.sleep,
    bulk_recv=BULK_RECV,
)


def _factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if loop == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"no event loop {loop!r}")


def prepare(job: Job) -> None:
    """uvloop: make and close a loop (libuv's first opens process-wide descriptors)."""
    _factory(job.loop)().close()


def run(peer: Peer) -> None:
    """Run the side *peer.job* names, in a fresh loop, within its time limit."""
    job = peer.job
    if job.kind == "jfsocket":
        side = functools.partial(sides_async.SIDES[job.scenario, job.role], peer, FLAVOUR)
    else:
        side = functools.partial(SIDES[job.kind, job.scenario, job.role], peer)
    _run(job.loop, side, peer)


def _run(loop: str, side: Callable[[], Awaitable[None]], peer: Peer) -> None:
    """``asyncio.run(side())`` on a fresh *loop*; fails if *side* leaves a task behind."""
    event_loop = _factory(loop)()
    try:
        try:
            event_loop.run_until_complete(asyncio.wait_for(side(), peer.left()))
        except asyncio.TimeoutError:
            raise peer.stalled() from None
        left = [task for task in asyncio.all_tasks(event_loop) if not task.done()]
        if left:
            raise RuntimeError(f"{peer.job.what}: {len(left)} task(s) left running: {left[:3]}")
    finally:
        try:
            stray = asyncio.all_tasks(event_loop)
            for task in stray:
                task.cancel()
            if stray:
                event_loop.run_until_complete(asyncio.gather(*stray, return_exceptions=True))
            event_loop.run_until_complete(event_loop.shutdown_asyncgens())
            event_loop.run_until_complete(event_loop.shutdown_default_executor())
        finally:
            event_loop.close()


async def _wait(peer: Peer, ready: Callable[[], bool], what: str) -> None:
    await peer.wait_async(ready, what, asyncio.sleep)


# -- raw protocols -----------------------------------------------------------------


class _Tracked(asyncio.Protocol):
    """A raw protocol whose connection's start and end can be awaited."""

    transport: asyncio.Transport

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)
        self.made.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """The end."""
        if not self.lost.done():
            self.lost.set_result(None)


class _Pump(_Tracked):
    """A raw writer: waits while the transport's writing is paused."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self._resumed: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        """The transport's buffer is above its high-water mark."""
        self.paused = True

    def resume_writing(self) -> None:
        """The buffer drained below the low-water mark."""
        self.paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """The end: a waiting writer fails."""
        super().connection_lost(exc)
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_exception(ConnectionResetError("connection lost"))

    async def resumed(self) -> None:
        """Until writing may go on."""
        if self.paused:
            self._resumed = asyncio.get_running_loop().create_future()
            await self._resumed


class _Counter(_Tracked):
    """A raw reader: counts bytes in ``data_received``."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._add = tally.add

    def data_received(self, data: bytes) -> None:
        """Count."""
        self._add(len(data))


class _Echo(_Tracked):
    """The raw ping-pong server: ``data_received`` writes the data back."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport's ``write``."""
        super().connection_made(transport)
        self._write = self.transport.write

    def data_received(self, data: bytes) -> None:
        """Echo."""
        self._write(data)


class _Volleyer(_Tracked):
    """The raw ping-pong client: each whole response writes the next request."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.volley = Rounds(rounds, REQUEST, functools.partial(self.done.set_result, None))
        self._due = self.volley.due

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport's ``write``."""
        super().connection_made(transport)
        self._write = self.transport.write

    def data_received(self, data: bytes) -> None:
        """Count bytes; a whole response sends the next request."""
        if self._due(len(data)):
            self._write(REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        """The end: an unfinished volley fails."""
        super().connection_lost(exc)
        if not self.done.done():
            self.done.set_exception(RuntimeError("ping-pong: connection lost early"))


class _Holder(_Tracked):
    """A held connection: counts its arrival, ignores data."""

    def __init__(self, arrive: Callable[[], object]) -> None:
        super().__init__()
        self._arrive = arrive

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """One more connection."""
        super().connection_made(transport)
        self._arrive()

    def data_received(self, data: bytes) -> None:
        """Ignored."""


class _Datagrams(asyncio.DatagramProtocol):
    """A raw multicast endpoint: each datagram counted; its end can be awaited."""

    def __init__(self, add: Callable[[], object] = int) -> None:
        self._add = add
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """One datagram."""
        self._add()

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport closed its socket."""
        if not self.lost.done():
            self.lost.set_result(None)


async def _listen(
    factory: Callable[[], _P], accepted: list[_P], tls: ssl.SSLContext | None = None
) -> asyncio.Server:
    """``loop.create_server`` on loopback (with *tls*, asyncio's ``ssl=``); each
    accepted protocol lands in *accepted*."""

    def accept() -> _P:
        protocol = factory()
        accepted.append(protocol)
        return protocol

    return await asyncio.get_running_loop().create_server(
        accept, LOOPBACK, 0, backlog=BACKLOG, ssl=tls
    )


def _dial_tls(peer: Peer) -> dict[str, Any]:
    """``create_connection``'s and ``open_connection``'s TLS keywords (none: plaintext)."""
    tls = client_context(peer.job)
    return {} if tls is None else {"ssl": tls, "server_hostname": HOSTNAME}


async def _close(protocols: list[_P], server: asyncio.Server | None = None) -> None:
    """Close *protocols*' transports (and *server*), and wait until they are gone."""
    if server is not None:
        server.close()
    for protocol in protocols:
        if hasattr(protocol, "transport"):
            protocol.transport.close()
    await asyncio.gather(*(p.lost for p in protocols if hasattr(p, "transport")))
    if server is not None:
        await server.wait_closed()


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


# -- ping-pong ---------------------------------------------------------------------


async def _ping_server(peer: Peer) -> None:
    accepted: list[_Echo] = []
    server = await _listen(_Echo, accepted, server_context(peer.job))
    try:
        peer.announce(_port(server))
        peer.begin()
        await _wait(peer, lambda: bool(accepted), "accepting the client")
        peer.step("echoing until the client leaves")
        await accepted[0].lost
        peer.end()
    finally:
        await _close(accepted, server)


async def _ping_client(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        functools.partial(_Volleyer, peer.count), LOOPBACK, peer.port, **_dial_tls(peer)
    )
    try:
        peer.begin()
        peer.step(f"{peer.count} round trips")
        transport.write(REQUEST)
        await client.done
        peer.end(client.volley.rounds, at=client.volley.finished)
    finally:
        await _close([client])


# -- bulk --------------------------------------------------------------------------


async def _bulk_server(peer: Peer) -> None:
    arrived = asyncio.Event()
    tally = Tally(peer.count * CHUNK, arrived.set)
    accepted: list[_Counter] = []
    server = await _listen(functools.partial(_Counter, tally), accepted, server_context(peer.job))
    try:
        peer.announce(_port(server))
        peer.begin()
        peer.step("receiving every byte")
        await arrived.wait()
        peer.end(tally.got // CHUNK, at=tally.finished)
        peer.done()
    finally:
        await _close(accepted, server)


async def _bulk_client(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(_Pump, LOOPBACK, peer.port, **_dial_tls(peer))
    try:
        write, resumed = transport.write, client.resumed
        peer.begin()
        peer.step(f"sending {peer.count} writes")
        for _ in range(peer.count):
            write(BLOCK)
            if client.paused:
                await resumed()
        await _wait(peer, peer.peer_done, "the server counting every byte")
        peer.end(peer.count)
    finally:
        await _close([client])


# -- fan-out -----------------------------------------------------------------------


async def _fanout_server(peer: Peer) -> None:
    accepted: list[_Pump] = []
    server = await _listen(_Pump, accepted)
    try:
        peer.announce(_port(server))
        await _wait(peer, lambda: len(accepted) >= peer.clients, f"accepting {peer.clients}")
        await asyncio.gather(*(p.made for p in accepted))
        await _wait(peer, peer.going, "the clients getting ready")
        writers = [(p, p.transport.write) for p in accepted]
        peer.begin()
        peer.step(f"sending {peer.count} messages")
        for _ in range(peer.count):
            for protocol, write in writers:
                write(MESSAGE)
                if protocol.paused:
                    await protocol.resumed()
        await _wait(peer, peer.peer_done, "every client receiving every message")
        peer.end(peer.count)
    finally:
        await _close(accepted, server)


async def _fanout_client(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    complete = Countdown(peer.clients, arrived.set)
    tallies = [Tally(peer.count * FANOUT_SIZE, complete.arrive) for _ in range(peer.clients)]
    clients: list[_Counter] = []
    try:
        for tally in tallies:
            _, client = await loop.create_connection(
                functools.partial(_Counter, tally), LOOPBACK, peer.port
            )
            clients.append(client)
        peer.begin()
        peer.go()
        peer.step("every client receiving every message")
        await arrived.wait()
        peer.end(sum(tally.got for tally in tallies) // FANOUT_SIZE, at=complete.finished)
        peer.done()
    finally:
        await _close(clients)


# -- multicast ---------------------------------------------------------------------


async def _endpoint(sock: socket.socket, protocol: _Datagrams) -> asyncio.DatagramTransport:
    sock.setblocking(False)
    try:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: protocol, sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return transport


async def _cast_receiver(peer: Peer) -> None:
    gauge = Gauge(peer)
    sock = raw_receiver()
    peer.window = window(sock)
    port = sock.getsockname()[1]
    protocol = _Datagrams(gauge.add)
    transport = await _endpoint(sock, protocol)
    try:
        peer.announce(port)
        peer.begin()
        await peer.wait_async(gauge.over, "receiving", asyncio.sleep, SETTLE_POLL)
        peer.end(gauge.count, at=gauge.last)
    finally:
        transport.close()
        await protocol.lost


async def _cast_sender(peer: Peer) -> None:
    target = (GROUP, peer.port)
    protocol = _Datagrams()
    transport = await _endpoint(loopback_sender(), protocol)
    try:
        sendto = transport.sendto

        async def burst(n: int) -> None:
            for _ in range(n):
                sendto(PAYLOAD, target)

        peer.begin()
        sent = await blast_async(peer, burst, asyncio.sleep)
        # What the transport buffered (the socket's buffer was full) is sent yet.
        buffered: Callable[[], int] = getattr(transport, "get_write_buffer_size", int)
        await _wait(peer, lambda: not buffered(), "flushing")
        peer.end(sent)
        peer.done()
    finally:
        transport.close()
        await protocol.lost


# -- connections -------------------------------------------------------------------


async def _hold_server(peer: Peer) -> None:
    connected = asyncio.Event()
    arrivals = Arrivals(peer, connected.set)
    accepted: list[_Holder] = []
    server = await _listen(functools.partial(_Holder, arrivals.arrive), accepted)
    try:
        gc.collect()
        before = rss()
        peer.announce(_port(server))
        peer.begin()
        peer.step(f"accepting {peer.count} connections")
        await connected.wait()
        peer.end(arrivals.got, at=arrivals.finished)
        gc.collect()
        peer.extra["rss"] = rss() - before
        peer.done()
    finally:
        await _close(accepted, server)


async def _hold_client(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    clients: list[_Tracked] = []
    try:
        peer.begin()
        for index in range(peer.count):
            await peer.keep_up_async(index, HOLD_STEP, asyncio.sleep)
            _, client = await loop.create_connection(_Tracked, LOOPBACK, peer.port)
            clients.append(client)
        await _wait(peer, lambda: peer.progress >= peer.count, "the server accepting every one")
        peer.end(peer.count)
        await _wait(peer, peer.peer_done, "the server measuring its memory")
    finally:
        await _close(clients)


# -- asyncio streams (ping-pong) -----------------------------------------------------


async def _ping_server_streams(peer: Peer) -> None:
    gone = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            receive, write, drain = reader.read, writer.write, writer.drain
            while data := await receive(PING_RECV):
                write(data)
                await drain()
        finally:
            writer.close()
            gone.set()

    server = await asyncio.start_server(echo, LOOPBACK, 0, ssl=server_context(peer.job))
    try:
        peer.announce(_port(server))
        peer.begin()
        peer.step("echoing until the client leaves")
        await gone.wait()
        peer.end()
    finally:
        server.close()
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


async def _ping_client_streams(peer: Peer) -> None:
    volley = Rounds(peer.count, REQUEST, int)
    reader, writer = await asyncio.open_connection(LOOPBACK, peer.port, **_dial_tls(peer))
    try:
        receive, write, drain, due = reader.read, writer.write, writer.drain, volley.due
        peer.begin()
        peer.step(f"{peer.count} round trips")
        write(REQUEST)
        await drain()
        while volley.rounds < peer.count:
            data = await receive(PING_RECV)
            if not data:
                raise RuntimeError("ping-pong: the echo handler closed early")
            if due(len(data)):
                write(REQUEST)
                await drain()
        peer.end(volley.rounds, at=volley.finished)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


SIDES: Final[dict[tuple[str, str, str], Side]] = {
    ("raw", "ping-pong", "server"): _ping_server,
    ("raw", "ping-pong", "client"): _ping_client,
    ("raw", "bulk", "server"): _bulk_server,
    ("raw", "bulk", "client"): _bulk_client,
    ("raw", "fan-out", "server"): _fanout_server,
    ("raw", "fan-out", "client"): _fanout_client,
    ("raw", "multicast", "server"): _cast_receiver,
    ("raw", "multicast", "client"): _cast_sender,
    ("raw", "connections", "server"): _hold_server,
    ("raw", "connections", "client"): _hold_client,
    ("streams", "ping-pong", "server"): _ping_server_streams,
    ("streams", "ping-pong", "client"): _ping_client_streams,
    ("raw", "tls-ping-pong", "server"): _ping_server,
    ("raw", "tls-ping-pong", "client"): _ping_client,
    ("raw", "tls-bulk", "server"): _bulk_server,
    ("raw", "tls-bulk", "client"): _bulk_client,
    ("streams", "tls-ping-pong", "server"): _ping_server_streams,
    ("streams", "tls-ping-pong", "client"): _ping_client_streams,
}
