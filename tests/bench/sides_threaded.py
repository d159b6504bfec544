"""The threaded runtime's sides: jfsocket's threaded binding, used through
callbacks as it is meant to be, and raw blocking sockets, a thread per reader.

A raw loop blocked in I/O ends at its peer's end of stream, or when the side
shuts its socket down; a side that stalls past its limit is ended by the
child's hang guard (:mod:`tests.bench.peers`), which prints where it was.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Final

from jfsocket.bindings.threaded import CastReceiver, CastSender, EventTypes, TcpClient, TcpServer

from .counters import (
    SETTLE_POLL,
    Arrivals,
    Countdown,
    Gauge,
    Rounds,
    SyncVolley,
    Tally,
    blast,
    echo_sync,
)
from .peers import Job, Peer
from .plumbing import GROUP, LOOPBACK, loopback_sender, raw_receiver, rss, window
from .scenarios import (
    BACKLOG,
    CHUNK,
    DATAGRAM,
    DATAGRAM_RECV,
    FANOUT_SIZE,
    HOLD_RECV,
    HOLD_STEP,
    PING_RECV,
    PING_SIZE,
)
from .tlsfiles import HOSTNAME, client_context, server_context

__all__ = ["SIDES", "prepare", "run"]

Side = Callable[[Peer], None]
REQUEST: Final = bytes(range(PING_SIZE))
BLOCK: Final = bytes(CHUNK)
MESSAGE: Final = bytes(FANOUT_SIZE)
PAYLOAD: Final = bytes(DATAGRAM)


def prepare(job: Job) -> None:
    """Nothing to do before the leak checks' baseline."""


def run(peer: Peer) -> None:
    """Run the side *peer.job* names."""
    job = peer.job
    SIDES[job.kind, job.scenario, job.role](peer)


# -- raw plumbing --------------------------------------------------------------


def _listen() -> socket.socket:
    return socket.create_server((LOOPBACK, 0), backlog=BACKLOG)


def _blocking(sock: socket.socket) -> socket.socket:
    """Blocking, with TCP_NODELAY as jfsocket sets it."""
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _accept(listener: socket.socket, peer: Peer) -> socket.socket:
    listener.settimeout(peer.left())
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        raise peer.stalled("accepting a connection") from None
    conn = _blocking(conn)
    tls = server_context(peer.job)
    return conn if tls is None else tls.wrap_socket(conn, server_side=True)


def _connect(peer: Peer) -> socket.socket:
    sock = _blocking(socket.create_connection((LOOPBACK, peer.port), timeout=peer.left()))
    tls = client_context(peer.job)
    return sock if tls is None else tls.wrap_socket(sock, server_hostname=HOSTNAME)


def _start(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name="bench reader")
    thread.start()
    return thread


def _shut(socks: Iterable[socket.socket]) -> None:
    """Wake whatever blocks on *socks* (their reads return the end of stream)."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _close(socks: Iterable[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def _join(threads: Iterable[threading.Thread], peer: Peer) -> None:
    for thread in threads:
        thread.join(peer.left())
        if thread.is_alive():
            raise peer.stalled(f"{thread.name} ending")


def _read_into(sock: socket.socket, tally: Tally) -> None:
    """A reader thread: count what arrives until the end of the stream."""
    buffer = bytearray(CHUNK)
    recv_into, add = sock.recv_into, tally.add
    with contextlib.suppress(OSError):
        while size := recv_into(buffer):
            add(size)


def _drain(sock: socket.socket, arrived: Callable[[], object] | None = None) -> None:
    """A held connection's reader thread: read (and ignore) until the end of the stream."""
    if arrived is not None:
        arrived()
    with contextlib.suppress(OSError):
        while sock.recv(HOLD_RECV):
            pass


# -- ping-pong -------------------------------------------------------------------


def _ping_server_jfsocket(peer: Peer) -> None:
    gone = threading.Event()
    with TcpServer(
        LOOPBACK,
        0,
        {EventTypes.RECEIVED: echo_sync, EventTypes.DISCONNECT: lambda *_: gone.set()},
        encoding=None,
        recv_buffer=PING_RECV,
        ssl=server_context(peer.job),
    ) as server:
        server.start()
        peer.announce(server.host[1])
        peer.begin()
        peer.wait_event(gone, "echoing until the client leaves")
        peer.end()


def _ping_client_jfsocket(peer: Peer) -> None:
    done = threading.Event()
    volley = SyncVolley(peer.count, REQUEST, done.set)
    with TcpClient(
        None,
        {EventTypes.RECEIVED: volley.on_received},
        encoding=None,
        recv_buffer=PING_RECV,
        ssl=client_context(peer.job),
    ) as client:
        client.connect(LOOPBACK, peer.port, timeout=peer.left())
        peer.begin()
        client.send(REQUEST)
        peer.wait_event(done, f"{peer.count} round trips")
        peer.end(volley.rounds, at=volley.finished)


def _ping_server_raw(peer: Peer) -> None:
    with _listen() as listener:
        peer.announce(listener.getsockname()[1])
        peer.begin()
        with _accept(listener, peer) as conn:
            recv, sendall = conn.recv, conn.sendall
            while data := recv(PING_RECV):
                sendall(data)
        peer.end()


def _ping_client_raw(peer: Peer) -> None:
    volley = Rounds(peer.count, REQUEST, int)
    with _connect(peer) as sock:
        recv, sendall, due = sock.recv, sock.sendall, volley.due
        peer.begin()
        sendall(REQUEST)
        while volley.rounds < peer.count:
            data = recv(PING_RECV)
            if not data:
                raise RuntimeError("ping-pong: the echo server closed early")
            if due(len(data)):
                sendall(REQUEST)
        peer.end(volley.rounds, at=volley.finished)


# -- bulk ------------------------------------------------------------------------


def _bulk_server_jfsocket(peer: Peer) -> None:
    arrived = threading.Event()
    tally = Tally(peer.count * CHUNK, arrived.set)
    with TcpServer(
        LOOPBACK,
        0,
        {EventTypes.RECEIVED: tally.on_received},
        encoding=None,
        recv_buffer=CHUNK,
        ssl=server_context(peer.job),
    ) as server:
        server.start()
        peer.announce(server.host[1])
        peer.begin()
        peer.wait_event(arrived, "receiving every byte")
        peer.end(tally.got // CHUNK, at=tally.finished)
        peer.done()


def _bulk_client_jfsocket(peer: Peer) -> None:
    with TcpClient(encoding=None, ssl=client_context(peer.job)) as client:
        client.connect(LOOPBACK, peer.port, timeout=peer.left())
        send = client.send
        peer.begin()
        for _ in range(peer.count):
            send(BLOCK)
        peer.wait(peer.peer_done, "the server counting every byte")
        peer.end(peer.count)


def _bulk_server_raw(peer: Peer) -> None:
    total = peer.count * CHUNK
    tally = Tally(total, int)
    buffer = bytearray(CHUNK)
    with _listen() as listener:
        peer.announce(listener.getsockname()[1])
        peer.begin()
        with _accept(listener, peer) as conn:
            recv_into, add = conn.recv_into, tally.add
            while tally.got < total:
                size = recv_into(buffer)
                if not size:
                    raise RuntimeError("bulk: the client closed early")
                add(size)
            peer.end(tally.got // CHUNK, at=tally.finished)
            peer.done()


def _bulk_client_raw(peer: Peer) -> None:
    with _connect(peer) as sock:
        sendall = sock.sendall
        peer.begin()
        for _ in range(peer.count):
            sendall(BLOCK)
        peer.wait(peer.peer_done, "the server counting every byte")
        peer.end(peer.count)


# -- fan-out ---------------------------------------------------------------------


def _fanout_server_jfsocket(peer: Peer) -> None:
    connected = threading.Event()
    arrivals = Countdown(peer.clients, connected.set)
    with TcpServer(
        LOOPBACK, 0, {EventTypes.CONNECTED: arrivals.arrive}, encoding=None, backlog=BACKLOG
    ) as server:
        server.start()
        peer.announce(server.host[1])
        peer.wait_event(connected, f"accepting {peer.clients} clients")
        peer.wait(peer.going, "the clients getting ready")
        send = server.send
        peer.begin()
        for _ in range(peer.count):
            send(MESSAGE)
        peer.wait(peer.peer_done, "every client receiving every message")
        peer.end(peer.count)


def _fanout_client_jfsocket(peer: Peer) -> None:
    arrived = threading.Event()
    complete = Countdown(peer.clients, arrived.set)
    tallies = [Tally(peer.count * FANOUT_SIZE, complete.arrive) for _ in range(peer.clients)]
    with contextlib.ExitStack() as stack:
        for tally in tallies:
            client = stack.enter_context(
                TcpClient(
                    None,
                    {EventTypes.RECEIVED: tally.on_received},
                    encoding=None,
                    recv_buffer=CHUNK,
                )
            )
            client.connect(LOOPBACK, peer.port, timeout=peer.left())
        peer.begin()
        peer.go()
        peer.wait_event(arrived, "every client receiving every message")
        peer.end(sum(tally.got for tally in tallies) // FANOUT_SIZE, at=complete.finished)
        peer.done()


def _fanout_server_raw(peer: Peer) -> None:
    with _listen() as listener, contextlib.ExitStack() as stack:
        peer.announce(listener.getsockname()[1])
        conns = [stack.enter_context(_accept(listener, peer)) for _ in range(peer.clients)]
        peer.wait(peer.going, "the clients getting ready")
        peer.begin()
        for _ in range(peer.count):
            for conn in conns:
                conn.sendall(MESSAGE)
        peer.wait(peer.peer_done, "every client receiving every message")
        peer.end(peer.count)


def _fanout_client_raw(peer: Peer) -> None:
    arrived = threading.Event()
    complete = Countdown(peer.clients, arrived.set)
    tallies = [Tally(peer.count * FANOUT_SIZE, complete.arrive) for _ in range(peer.clients)]
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(_connect(peer)) for _ in tallies]
        readers = [_start(_read_into, *pair) for pair in zip(socks, tallies, strict=True)]
        stack.callback(_join, readers, peer)
        stack.callback(_shut, socks)
        peer.begin()
        peer.go()
        peer.wait_event(arrived, "every reader receiving every message")
        peer.end(sum(tally.got for tally in tallies) // FANOUT_SIZE, at=complete.finished)
        peer.done()


# -- multicast -------------------------------------------------------------------


def _cast_receiver_jfsocket(peer: Peer) -> None:
    gauge = Gauge(peer)
    with CastReceiver(
        ("0.0.0.0", 0),
        {EventTypes.RECEIVED: gauge.on_received},
        interface=LOOPBACK,
        encoding=None,
        recv_buffer=DATAGRAM_RECV,
    ) as receiver:
        receiver.joinGroup(GROUP)
        receiver.start()
        peer.window = window(receiver)
        peer.announce(receiver.host[1])
        peer.begin()
        peer.wait(gauge.over, "receiving", SETTLE_POLL)
        peer.end(gauge.count, at=gauge.last)


def _cast_sender_jfsocket(peer: Peer) -> None:
    target = (GROUP, peer.port)
    with CastSender(ttl=0, interface=LOOPBACK, encoding=None) as sender:
        send = sender.send

        def burst(n: int) -> None:
            for _ in range(n):
                send(target, PAYLOAD)

        peer.begin()
        peer.end(blast(peer, burst))
        peer.done()


def _cast_receiver_raw(peer: Peer) -> None:
    gauge = Gauge(peer)

    def read(sock: socket.socket) -> None:
        recvfrom, add = sock.recvfrom, gauge.add
        with contextlib.suppress(OSError):
            while recvfrom(DATAGRAM_RECV)[0]:
                add()

    with raw_receiver() as sock:
        peer.window = window(sock)
        reader = _start(read, sock)
        try:
            peer.announce(sock.getsockname()[1])
            peer.begin()
            peer.wait(gauge.over, "receiving", SETTLE_POLL)
            peer.end(gauge.count, at=gauge.last)
        finally:
            _shut([sock])  # the reader's recvfrom returns b""
            _join([reader], peer)


def _cast_sender_raw(peer: Peer) -> None:
    target = (GROUP, peer.port)
    with loopback_sender() as sock:
        sendto = sock.sendto

        def burst(n: int) -> None:
            for _ in range(n):
                sendto(PAYLOAD, target)

        peer.begin()
        peer.end(blast(peer, burst))
        peer.done()


# -- connections -----------------------------------------------------------------


def _hold_server_jfsocket(peer: Peer) -> None:
    connected = threading.Event()
    arrivals = Arrivals(peer, connected.set)
    with TcpServer(LOOPBACK, 0, {EventTypes.CONNECTED: arrivals.arrive}, backlog=BACKLOG) as server:
        server.start()
        gc.collect()
        before = rss()
        peer.announce(server.host[1])
        peer.begin()
        peer.wait_event(connected, f"accepting {peer.count} connections")
        peer.end(arrivals.got, at=arrivals.finished)
        gc.collect()
        peer.extra["rss"] = rss() - before
        peer.done()


def _hold_client_jfsocket(peer: Peer) -> None:
    with contextlib.ExitStack() as stack:
        peer.begin()
        for index in range(peer.count):
            peer.keep_up(index, HOLD_STEP)
            client = stack.enter_context(TcpClient())
            client.connect(LOOPBACK, peer.port, timeout=peer.left())
        peer.wait(lambda: peer.progress >= peer.count, "the server accepting every connection")
        peer.end(peer.count)
        peer.wait(peer.peer_done, "the server measuring its memory")


def _hold_server_raw(peer: Peer) -> None:
    connected = threading.Event()
    arrivals = Arrivals(peer, connected.set)
    conns: list[socket.socket] = []
    readers: list[threading.Thread] = []

    def accept(listener: socket.socket) -> None:
        with contextlib.suppress(OSError):  # shut down: the run is over
            for _ in range(peer.count):
                conn, _ = listener.accept()
                conns.append(conn)
                readers.append(_start(_drain, conn, arrivals.arrive))

    with _listen() as listener, contextlib.ExitStack() as stack:
        stack.callback(_close, conns)  # the callbacks run last first
        stack.callback(_join, readers, peer)
        stack.callback(_shut, conns)
        acceptor = _start(accept, listener)
        stack.callback(_join, [acceptor], peer)
        stack.callback(_shut, [listener])
        gc.collect()
        before = rss()
        peer.announce(listener.getsockname()[1])
        peer.begin()
        peer.wait_event(connected, f"accepting {peer.count} connections")
        peer.end(arrivals.got, at=arrivals.finished)
        gc.collect()
        peer.extra["rss"] = rss() - before
        peer.done()


def _hold_client_raw(peer: Peer) -> None:
    socks: list[socket.socket] = []
    readers: list[threading.Thread] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_close, socks)  # the callbacks run last first
        stack.callback(_join, readers, peer)
        stack.callback(_shut, socks)
        peer.begin()
        for index in range(peer.count):
            peer.keep_up(index, HOLD_STEP)
            sock = _connect(peer)
            socks.append(sock)
            readers.append(_start(_drain, sock))
        peer.wait(lambda: peer.progress >= peer.count, "the server accepting every connection")
        peer.end(peer.count)
        peer.wait(peer.peer_done, "the server measuring its memory")


SIDES: Final[dict[tuple[str, str, str], Side]] = {
    ("jfsocket", "ping-pong", "server"): _ping_server_jfsocket,
    ("jfsocket", "ping-pong", "client"): _ping_client_jfsocket,
    ("raw", "ping-pong", "server"): _ping_server_raw,
    ("raw", "ping-pong", "client"): _ping_client_raw,
    ("jfsocket", "bulk", "server"): _bulk_server_jfsocket,
    ("jfsocket", "bulk", "client"): _bulk_client_jfsocket,
    ("raw", "bulk", "server"): _bulk_server_raw,
    ("raw", "bulk", "client"): _bulk_client_raw,
    ("jfsocket", "tls-ping-pong", "server"): _ping_server_jfsocket,
    ("jfsocket", "tls-ping-pong", "client"): _ping_client_jfsocket,
    ("raw", "tls-ping-pong", "server"): _ping_server_raw,
    ("raw", "tls-ping-pong", "client"): _ping_client_raw,
    ("jfsocket", "tls-bulk", "server"): _bulk_server_jfsocket,
    ("jfsocket", "tls-bulk", "client"): _bulk_client_jfsocket,
    ("raw", "tls-bulk", "server"): _bulk_server_raw,
    ("raw", "tls-bulk", "client"): _bulk_client_raw,
    ("jfsocket", "fan-out", "server"): _fanout_server_jfsocket,
    ("jfsocket", "fan-out", "client"): _fanout_client_jfsocket,
    ("raw", "fan-out", "server"): _fanout_server_raw,
    ("raw", "fan-out", "client"): _fanout_client_raw,
    ("jfsocket", "multicast", "server"): _cast_receiver_jfsocket,
    ("jfsocket", "multicast", "client"): _cast_sender_jfsocket,
    ("raw", "multicast", "server"): _cast_receiver_raw,
    ("raw", "multicast", "client"): _cast_sender_raw,
    ("jfsocket", "connections", "server"): _hold_server_jfsocket,
    ("jfsocket", "connections", "client"): _hold_client_jfsocket,
    ("raw", "connections", "server"): _hold_server_raw,
    ("raw", "connections", "client"): _hold_client_raw,
}
