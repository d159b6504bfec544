"""The trio runtime's sides: jfsocket's trio binding (:mod:`tests.bench.sides_async`)
and raw trio (``trio.SocketStream``, ``trio.socket``), a task per reader."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from jfsocket.bindings import trio as jf_trio

from . import sides_async
from .counters import SETTLE_POLL, Arrivals, Countdown, Gauge, Rounds, Tally, blast_async
from .peers import Job, Peer
from .plumbing import GROUP, LOOPBACK, loopback_sender, raw_receiver, rss, window
from .scenarios import BACKLOG, CHUNK, DATAGRAM_RECV, FANOUT_SIZE, HOLD_RECV, HOLD_STEP, PING_RECV
from .sides_async import BLOCK, MESSAGE, PAYLOAD, REQUEST
from .tlsfiles import HOSTNAME, client_context, server_context

__all__ = ["FLAVOUR", "SIDES", "prepare", "run"]

Side = Callable[[Peer], Awaitable[None]]
FLAVOUR: Final = sides_async.Flavour(
    TcpServer=jf_trio.TcpServer,
    TcpClient=jf_trio.TcpClient,
    CastReceiver=jf_trio.CastReceiver,
    CastSender=jf_trio.CastSender,
    event=trio.Event,
    sleep=trio.sleep,
)


def prepare(job: Job) -> None:
    """Nothing to do before the leak checks' baseline."""


def run(peer: Peer) -> None:
    """Run the side *peer.job* names, in ``trio.run``, within its time limit."""
    job = peer.job
    if job.kind == "jfsocket":
        side = functools.partial(sides_async.SIDES[job.scenario, job.role], peer, FLAVOUR)
    else:
        side = functools.partial(SIDES[job.scenario, job.role], peer)
    trio.run(_bounded, side, peer)


async def _bounded(side: Callable[[], Awaitable[None]], peer: Peer) -> None:
    try:
        with trio.fail_after(peer.left()):
            await side()
    except trio.TooSlowError:
        raise peer.stalled() from None


async def _wait(peer: Peer, ready: Callable[[], bool], what: str) -> None:
    await peer.wait_async(ready, what, trio.sleep)


async def _listener() -> trio.SocketListener:
    (listener,) = await trio.open_tcp_listeners(0, host=LOOPBACK, backlog=BACKLOG)
    return listener


def _port(listener: trio.SocketListener) -> int:
    return int(listener.socket.getsockname()[1])


async def _accepted(listener: trio.SocketListener, peer: Peer) -> trio.abc.Stream:
    """The next connection; over TLS, trio's SSLStream on it (server side)."""
    stream = await listener.accept()
    tls = server_context(peer.job)
    return stream if tls is None else trio.SSLStream(stream, tls, server_side=True)


async def _dial(peer: Peer) -> trio.abc.Stream:
    """A connection to the server side; over TLS, trio's SSLStream on it."""
    stream = await trio.open_tcp_stream(LOOPBACK, peer.port)
    tls = client_context(peer.job)
    return stream if tls is None else trio.SSLStream(stream, tls, server_hostname=HOSTNAME)


# -- ping-pong -------------------------------------------------------------------


async def _ping_server(peer: Peer) -> None:
    async with await _listener() as listener:
        peer.announce(_port(listener))
        peer.begin()
        peer.step("echoing until the client leaves")
        async with await _accepted(listener, peer) as stream:
            receive, send_all = stream.receive_some, stream.send_all
            while data := await receive(PING_RECV):
                await send_all(data)
        peer.end()


async def _ping_client(peer: Peer) -> None:
    volley = Rounds(peer.count, REQUEST, int)
    async with await _dial(peer) as stream:
        receive, send_all, due = stream.receive_some, stream.send_all, volley.due
        peer.begin()
        peer.step(f"{peer.count} round trips")
        await send_all(REQUEST)
        while volley.rounds < peer.count:
            data = await receive(PING_RECV)
            if not data:
                raise RuntimeError("ping-pong: the echo server closed early")
            if due(len(data)):
                await send_all(REQUEST)
        peer.end(volley.rounds, at=volley.finished)


# -- bulk ------------------------------------------------------------------------


async def _bulk_server(peer: Peer) -> None:
    total = peer.count * CHUNK
    tally = Tally(total, int)
    async with await _listener() as listener:
        peer.announce(_port(listener))
        peer.begin()
        peer.step("receiving every byte")
        async with await _accepted(listener, peer) as stream:
            receive, add = stream.receive_some, tally.add
            while tally.got < total:
                data = await receive(CHUNK)
                if not data:
                    raise RuntimeError("bulk: the client closed early")
                add(len(data))
            peer.end(tally.got // CHUNK, at=tally.finished)
            peer.done()


async def _bulk_client(peer: Peer) -> None:
    async with await _dial(peer) as stream:
        send_all = stream.send_all
        peer.begin()
        peer.step(f"sending {peer.count} writes")
        for _ in range(peer.count):
            await send_all(BLOCK)
        await _wait(peer, peer.peer_done, "the server counting every byte")
        peer.end(peer.count)


# -- fan-out ---------------------------------------------------------------------


async def _fanout_server(peer: Peer) -> None:
    async with await _listener() as listener, contextlib.AsyncExitStack() as stack:
        peer.announce(_port(listener))
        peer.step(f"accepting {peer.clients} clients")
        streams = [
            await stack.enter_async_context(await listener.accept()) for _ in range(peer.clients)
        ]
        await _wait(peer, peer.going, "the clients getting ready")
        peer.begin()
        peer.step(f"sending {peer.count} messages")
        for _ in range(peer.count):
            for stream in streams:
                await stream.send_all(MESSAGE)
        await _wait(peer, peer.peer_done, "every client receiving every message")
        peer.end(peer.count)


async def _read_into(stream: trio.SocketStream, tally: Tally) -> None:
    """A reader task: count what arrives until the end of the stream."""
    receive, add = stream.receive_some, tally.add
    with contextlib.suppress(trio.BrokenResourceError):
        while data := await receive(CHUNK):
            add(len(data))


async def _fanout_client(peer: Peer) -> None:
    arrived = trio.Event()
    complete = Countdown(peer.clients, arrived.set)
    tallies = [Tally(peer.count * FANOUT_SIZE, complete.arrive) for _ in range(peer.clients)]
    async with contextlib.AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        for tally in tallies:
            stream = await stack.enter_async_context(
                await trio.open_tcp_stream(LOOPBACK, peer.port)
            )
            nursery.start_soon(_read_into, stream, tally)
        peer.begin()
        peer.go()
        peer.step("every reader receiving every message")
        await arrived.wait()
        peer.end(sum(tally.got for tally in tallies) // FANOUT_SIZE, at=complete.finished)
        peer.done()
        nursery.cancel_scope.cancel()


# -- multicast -------------------------------------------------------------------


async def _cast_receiver(peer: Peer) -> None:
    gauge = Gauge(peer)

    async def read(sock: trio.socket.SocketType) -> None:
        recvfrom, add = sock.recvfrom, gauge.add
        while True:
            await recvfrom(DATAGRAM_RECV)
            add()

    with trio.socket.from_stdlib_socket(raw_receiver()) as sock:
        peer.window = window(sock)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read, sock)
            peer.announce(sock.getsockname()[1])
            peer.begin()
            await peer.wait_async(gauge.over, "receiving", trio.sleep, SETTLE_POLL)
            peer.end(gauge.count, at=gauge.last)
            nursery.cancel_scope.cancel()


async def _cast_sender(peer: Peer) -> None:
    target = (GROUP, peer.port)
    with trio.socket.from_stdlib_socket(loopback_sender()) as sock:
        sendto = sock.sendto

        async def burst(n: int) -> None:
            for _ in range(n):
                await sendto(PAYLOAD, target)

        peer.begin()
        peer.end(await blast_async(peer, burst, trio.sleep))
        peer.done()


# -- connections -----------------------------------------------------------------


async def _drain(stream: trio.SocketStream) -> None:
    """A held connection's reader task: read (and ignore) until the end of the stream."""
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError):
            while await stream.receive_some(HOLD_RECV):
                pass


async def _hold_server(peer: Peer) -> None:
    connected = trio.Event()
    arrivals = Arrivals(peer, connected.set)

    async def handler(stream: trio.SocketStream) -> None:
        arrivals.arrive()
        await _drain(stream)

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, handler, 0, host=LOOPBACK, backlog=BACKLOG)
        listeners: list[trio.SocketListener] = await nursery.start(serve)
        gc.collect()
        before = rss()
        peer.announce(_port(listeners[0]))
        peer.begin()
        peer.step(f"accepting {peer.count} connections")
        await connected.wait()
        peer.end(arrivals.got, at=arrivals.finished)
        gc.collect()
        peer.extra["rss"] = rss() - before
        peer.done()
        nursery.cancel_scope.cancel()


async def _hold_client(peer: Peer) -> None:
    async with trio.open_nursery() as nursery:
        peer.begin()
        for index in range(peer.count):
            await peer.keep_up_async(index, HOLD_STEP, trio.sleep)
            nursery.start_soon(_drain, await trio.open_tcp_stream(LOOPBACK, peer.port))
        await _wait(peer, lambda: peer.progress >= peer.count, "the server accepting every one")
        peer.end(peer.count)
        await _wait(peer, peer.peer_done, "the server measuring its memory")
        nursery.cancel_scope.cancel()


SIDES: Final[dict[tuple[str, str], Side]] = {
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
