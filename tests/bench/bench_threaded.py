"""The threaded binding beside raw blocking sockets doing the same work, on loopback.

Each scenario runs jfsocket (:mod:`jfsocket.bindings.threaded`, used through
callbacks as it is meant to be) and a baseline of plain ``socket`` calls on
threads, taking turns; each figure is the median of several runs, after one
untimed warm-up run of each.  Setup and teardown are outside the timed region;
every run checks what arrived, and that it left no thread or file descriptor
behind.

Scenarios:

* ``bulk``: one client sends 64 KiB ``bytes`` (256 MiB, 32 MiB with ``quick``)
  to a server reading 64 KiB at a time, until the receiver counted every byte;
  MiB/s (target ratio 0.85);
* ``ping-pong``: 64-byte request, echoed back; the next request leaves when the
  whole response is in (callbacks on both sides for jfsocket); round trips/s
  (target 0.6);
* ``fan-out``: a server sends each 256-byte message to 200 clients, until every
  client counted all its bytes; messages delivered/s (target 0.5);
* ``connections``: 1 000 clients (100 with ``quick``) connect and stay; the
  time until the server has them all, and the server process's RSS growth per
  connection; each run in a fresh interpreter, so no run reuses another's
  freed memory;
* ``multicast``: 200-byte datagrams (100 000, 10 000 with ``quick``) from a
  raw sender to a receiver; received/s (target 0.7) and loss.  The sender
  paces itself, identically for both receivers: bursts of 256, then it waits
  (briefly, bounded) until the receiver is within 1 024 datagrams of it (fewer
  if the receive buffer, 1 MiB asked for both, cannot hold that many).

Safety: TCP only on 127.0.0.1; multicast only to a group in 239.255.0.0/16,
sent with TTL 0 from interface 127.0.0.1 and joined on 127.0.0.1.  Every wait
has a time limit: a run that stalls raises :class:`StalledError`, naming what did
not finish, after shutting its sockets down so no call stays blocked.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import gc
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import Final

import attrs
from jfsocket.bindings.threaded import CastReceiver, EventTypes, TcpClient, TcpServer

from .common import Result, medians_of
from .plumbing import StalledError, check, loopback_sender, rss, verdict

__all__ = [
    "FULL",
    "QUICK",
    "SCENARIOS",
    "Deadline",
    "Sizes",
    "StalledError",
    "main",
]

SCENARIOS: Final = ("bulk", "ping-pong", "fan-out", "connections", "multicast")
LOOPBACK: Final = "127.0.0.1"
GROUP: Final = "239.255.77.77"  # administratively scoped (239.255.0.0/16)
CHUNK: Final = 64 << 10  # bulk send size, and every stream reader's buffer
PING_SIZE: Final = 64
PING_RECV: Final = 1024
FANOUT_SIZE: Final = 256
HOLD_RECV: Final = 256  # the held connections' reads (jfsocket's default recvBuffer)
BACKLOG: Final = 1024  # both servers: connects come in a burst
DATAGRAM: Final = 200
DATAGRAM_RECV: Final = 2048
BURST: Final = 256
WINDOW: Final = 1024  # most datagrams in flight, if the receive buffer holds that many
DATAGRAM_COST: Final = 2048  # receive-buffer bytes one small datagram may take (Linux: ~1.3 KiB)
PACE_WAIT: Final = 0.05  # longest a burst waits for the receiver to catch up
SETTLE: Final = 0.2  # the receiver made no progress for this long: the rest is lost
RCVBUF: Final = 1 << 20  # SO_RCVBUF of both multicast receivers (the kernel doubles it)
DEFAULT_TIMEOUT: Final = 120.0
_MIB: Final = float(1 << 20)
_ROOT: Final = Path(__file__).resolve().parents[2]
_CHILD_FLAG: Final = "--hold-connections"
_MODULE: Final = "tests.bench.bench_threaded"  # what the child runs, also when this is __main__
_HANG_GRACE: Final = 60.0


@attrs.frozen(kw_only=True)
class Sizes:
    """How much work each scenario does."""

    bulk_bytes: int
    round_trips: int
    fanout_clients: int
    fanout_messages: int
    connections: int
    datagrams: int


FULL: Final = Sizes(
    bulk_bytes=256 << 20,
    round_trips=20_000,
    fanout_clients=200,
    fanout_messages=200,
    connections=1000,
    datagrams=100_000,
)
QUICK: Final = Sizes(
    bulk_bytes=32 << 20,
    round_trips=2_000,
    fanout_clients=200,
    fanout_messages=20,
    connections=100,
    datagrams=10_000,
)


class Deadline:
    """The time limit of one run.

    :meth:`wait` raises :class:`StalledError` once it is past.  When it expires, the
    actions given to :meth:`on_expiry` run on a watchdog thread (they shut
    sockets down, so a call blocked in I/O returns), and leaving the ``with``
    block raises :class:`StalledError` whatever else happened.
    """

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        self._end = 0.0
        self._aborts: list[Callable[[], object]] = []
        self._expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = f"bench watchdog {what}"

    def __enter__(self) -> Deadline:
        self._end = perf_counter() + self.seconds
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._timer.join()
        if self._expired.is_set() and not isinstance(exc, StalledError):
            raise StalledError(f"{self.what}: not done within {self.seconds:g} s") from exc

    def on_expiry(self, action: Callable[[], object]) -> None:
        """Run *action* if the time runs out (errors it raises are ignored)."""
        self._aborts.append(action)

    def _expire(self) -> None:
        self._expired.set()
        for action in list(self._aborts):
            with contextlib.suppress(Exception):
                action()

    def remaining(self) -> float:
        """Seconds left (0 once expired)."""
        return max(0.0, self._end - perf_counter())

    def wait(self, event: threading.Event, what: str) -> None:
        """Wait for *event*; :class:`StalledError` naming *what* if the time runs out first."""
        if not event.wait(self.remaining()):
            raise StalledError(f"{self.what}: {what} not done within {self.seconds:g} s")


# -- counting ----------------------------------------------------------------


class _Countdown:
    """Sets :attr:`done` once *parties* arrivals were reported (from any threads)."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._lock = threading.Lock()
        self.done = threading.Event()
        if parties <= 0:
            self.done.set()

    def arrive(self, *_: object) -> None:
        """One party is done (usable as a callback: its arguments are ignored)."""
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()


class _Tally:
    """Counts one receiver's bytes; reports to a countdown once *target* is reached."""

    __slots__ = ("_countdown", "_target", "got")

    def __init__(self, target: int, countdown: _Countdown) -> None:
        self._target = target
        self._countdown = countdown
        self.got = 0

    def add(self, size: int) -> None:
        """*size* more bytes arrived."""
        before = self.got
        self.got = before + size
        if before < self._target <= self.got:
            self._countdown.arrive()

    def on_received(self, _source: object, data: bytes) -> None:
        """The RECEIVED callback."""
        self.add(len(data))


class _Volley:
    """The client side of ping-pong: each whole response sends the next request."""

    __slots__ = ("_expected", "_got", "_left", "_request", "done")

    def __init__(self, rounds: int, request: bytes) -> None:
        self._request = request
        self._left = rounds
        self._got = 0
        self._expected = len(request)
        self.done = threading.Event()

    def on_received(self, client: TcpClient, data: bytes) -> None:
        """The client's RECEIVED callback: count bytes, not callbacks."""
        self._got += len(data)
        if self._got < self._expected:
            return
        self._left -= 1
        if self._left <= 0:
            self.done.set()
            return
        self._expected += len(self._request)
        client.send(self._request)


class _Gauge:
    """Counts datagrams on the receiving thread; the sender waits for it to catch up."""

    __slots__ = ("_event", "_wake_at", "count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0  # perf_counter() of the latest datagram
        self._wake_at = sys.maxsize
        self._event = threading.Event()

    def add(self) -> None:
        """One datagram arrived."""
        self.count += 1
        self.last = perf_counter()
        if self.count >= self._wake_at:
            self._event.set()

    def on_received(self, _source: object, _data: bytes) -> None:
        """The RECEIVED callback."""
        self.add()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until *count* datagrams arrived; ``False`` after *timeout* seconds."""
        end = perf_counter() + timeout
        self._wake_at = count
        try:
            while self.count < count:
                self._event.clear()
                if self.count >= count:
                    break
                left = end - perf_counter()
                if left <= 0 or not self._event.wait(left):
                    return self.count >= count
            return True
        finally:
            self._wake_at = sys.maxsize


# -- plumbing ----------------------------------------------------------------


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    """A blocking raw client socket, with TCP_NODELAY as jfsocket sets it."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _accept(listener: socket.socket) -> socket.socket:
    """The next connection on *listener* (whose timeout bounds the wait), blocking."""
    try:
        conn, _ = listener.accept()
    except TimeoutError as exc:
        raise StalledError("no connection arrived at the raw listener") from exc
    conn.setblocking(True)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _listen(timeout: float) -> socket.socket:
    """A raw listener on loopback; ``accept`` waits at most *timeout* seconds."""
    listener = socket.create_server((LOOPBACK, 0), backlog=BACKLOG)
    listener.settimeout(timeout)
    return listener


def _shutdown_all(socks: Iterable[socket.socket]) -> None:
    """Wake whatever blocks on *socks*."""
    for sock in list(socks):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _half_close(sock: socket.socket) -> None:
    """Send EOF on *sock* (the peer's reader ends); harmless if it is already gone."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def _close_all(socks: Iterable[socket.socket]) -> None:
    for sock in list(socks):
        sock.close()


def _start(name: str, target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, name=f"bench {name}")
    thread.start()
    return thread


def _join_all(threads: Iterable[threading.Thread], timeout: float, what: str) -> None:
    """Join *threads*, all within *timeout* seconds, else :class:`StalledError` naming them."""
    end = perf_counter() + timeout
    stuck = []
    for thread in list(threads):
        thread.join(max(0.0, end - perf_counter()))
        if thread.is_alive():
            stuck.append(thread.name)
    if stuck:
        raise StalledError(f"{what}: {len(stuck)} threads did not end: {', '.join(stuck[:5])}")


def _open_fds() -> dict[str, str] | None:
    """This process's open file descriptors and what they are (``None``: unknown here)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    fds = {}
    for name in names:
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
    return fds


def _check_fds(what: str, before: dict[str, str] | None) -> None:
    """Fail if fds opened since *before* stay open (after a collection, within a second)."""
    if before is None:
        return
    end = perf_counter() + 1.0
    while True:
        after = _open_fds() or {}
        left = {fd: target for fd, target in after.items() if before.get(fd) != target}
        if not left:
            return
        if perf_counter() > end:
            raise RuntimeError(f"{what}: file descriptors left open: {sorted(left.values())}")
        gc.collect()
        threading.Event().wait(0.05)


def _raise_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE up to the hard limit when *needed* is above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} file descriptors needed; RLIMIT_NOFILE hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _guarded(what: str, timeout: float, fn: Callable[[], Sequence[float]]) -> Sequence[float]:
    """Run *fn*, then check it left no thread or fd behind.

    Last resort against a hang our deadlines cannot break (a join inside the
    library): past twice the time limit, faulthandler prints every thread's
    stack and ends the process.
    """
    threads = set(threading.enumerate())
    fds = _open_fds()
    faulthandler.dump_traceback_later(2 * timeout + _HANG_GRACE, exit=True, file=2)  # 2: stderr
    try:
        figures = fn()
    finally:
        faulthandler.cancel_dump_traceback_later()
    _join_all(set(threading.enumerate()) - threads, 10.0, f"{what}: after the run")
    _check_fds(what, fds)
    return figures


def _medians(
    n: int,
    timeout: float,
    runs: Sequence[tuple[str, Callable[[], Sequence[float]]]],
    *,
    warm_up: bool = True,
) -> list[list[float]]:
    """Per-figure medians of each named run, over *n* interleaved rounds.

    With *warm_up*, each runs once untimed first: on a VM the first run after an
    idle spell is much slower (idle vCPUs wake slowly), whichever side it is.
    """
    samples: list[list[Sequence[float]]] = [[] for _ in runs]
    if warm_up:
        for what, fn in runs:
            _guarded(f"{what} (warm-up)", timeout, fn)

    def once(what: str, fn: Callable[[], Sequence[float]], out: list[Sequence[float]]) -> float:
        figures = _guarded(what, timeout, fn)
        out.append(figures)
        return figures[0]

    medians_of(
        n,
        [
            functools.partial(once, what, fn, out)
            for (what, fn), out in zip(runs, samples, strict=True)
        ],
    )
    return [[statistics.median(column) for column in zip(*out, strict=True)] for out in samples]


# -- bulk --------------------------------------------------------------------


def _bulk_jfsocket(total: int, timeout: float) -> tuple[float]:
    """MiB/s from a TcpClient's 64 KiB sends to a TcpServer's RECEIVED callbacks."""
    chunk = bytes(CHUNK)
    arrived = _Countdown(1)
    tally = _Tally(total, arrived)
    with Deadline("bulk, jfsocket", timeout) as deadline, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpServer(
                LOOPBACK,
                0,
                {EventTypes.RECEIVED: tally.on_received},
                encoding=None,
                recv_buffer=CHUNK,
            )
        )
        server.start()
        client = stack.enter_context(TcpClient(encoding=None))
        client.connect(LOOPBACK, server.host[1], timeout=timeout)
        deadline.on_expiry(client.close)  # a send blocked on a stalled reader fails
        send = client.send
        start = perf_counter()
        for _ in range(total // CHUNK):
            send(chunk)
        deadline.wait(arrived.done, "server receiving every byte")
        elapsed = perf_counter() - start
    check("bulk, jfsocket", tally.got, total)
    return (total / _MIB / elapsed,)


def _bulk_raw(total: int, timeout: float) -> tuple[float]:
    """MiB/s from ``sendall`` of 64 KiB chunks to a reader thread's ``recv_into``."""
    chunk = bytes(CHUNK)
    arrived = _Countdown(1)
    tally = _Tally(total, arrived)
    with Deadline("bulk, raw", timeout) as deadline, contextlib.ExitStack() as stack:
        listener = stack.enter_context(_listen(timeout))
        client = stack.enter_context(_connect(listener.getsockname(), timeout))
        conn = stack.enter_context(_accept(listener))
        deadline.on_expiry(lambda: _shutdown_all([client, conn]))

        def read() -> None:
            buffer = bytearray(CHUNK)
            recv_into, add = conn.recv_into, tally.add
            with contextlib.suppress(OSError):
                while size := recv_into(buffer):
                    add(size)

        reader = _start("bulk reader", read)
        stack.callback(_join_all, [reader], timeout, "bulk, raw reader")
        stack.callback(_half_close, client)
        sendall = client.sendall
        start = perf_counter()
        for _ in range(total // CHUNK):
            sendall(chunk)
        deadline.wait(arrived.done, "reader receiving every byte")
        elapsed = perf_counter() - start
    check("bulk, raw", tally.got, total)
    return (total / _MIB / elapsed,)


def _bulk(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    total = max(CHUNK, sizes.bulk_bytes // CHUNK * CHUNK)
    [ours], [theirs] = _medians(
        n,
        timeout,
        [
            ("bulk, jfsocket", functools.partial(_bulk_jfsocket, total, timeout)),
            ("bulk, raw", functools.partial(_bulk_raw, total, timeout)),
        ],
    )
    return [
        Result(
            scenario="bulk, 64 KiB sends",
            jfsocket=ours,
            baseline=theirs,
            unit="MiB/s",
            baseline_name="sendall / recv_into thread",
            note=f"{total / _MIB:g} MiB; {verdict(ours / theirs, 0.85)}",
        )
    ]


# -- ping-pong ---------------------------------------------------------------


def _echo(client: TcpClient, data: bytes) -> None:
    """The server's RECEIVED callback: send it back."""
    client.send(data)


def _ping_jfsocket(rounds: int, timeout: float) -> tuple[float]:
    """Round trips/s, callback-driven on both sides."""
    request = bytes(range(PING_SIZE))
    volley = _Volley(rounds, request)
    with Deadline("ping-pong, jfsocket", timeout) as deadline, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpServer(
                LOOPBACK, 0, {EventTypes.RECEIVED: _echo}, encoding=None, recv_buffer=PING_RECV
            )
        )
        server.start()
        client = stack.enter_context(
            TcpClient(
                None,
                {EventTypes.RECEIVED: volley.on_received},
                encoding=None,
                recv_buffer=PING_RECV,
            )
        )
        client.connect(LOOPBACK, server.host[1], timeout=timeout)
        start = perf_counter()
        client.send(request)
        deadline.wait(volley.done, f"{rounds} round trips")
        elapsed = perf_counter() - start
    return (rounds / elapsed,)


def _ping_raw(rounds: int, timeout: float) -> tuple[float]:
    """Round trips/s: ``sendall`` then ``recv`` until the whole echo is in, in a loop."""
    request = bytes(range(PING_SIZE))
    with Deadline("ping-pong, raw", timeout) as deadline, contextlib.ExitStack() as stack:
        listener = stack.enter_context(_listen(timeout))
        client = stack.enter_context(_connect(listener.getsockname(), timeout))
        conn = stack.enter_context(_accept(listener))
        deadline.on_expiry(lambda: _shutdown_all([client, conn]))

        def echo() -> None:
            recv, sendall = conn.recv, conn.sendall
            with contextlib.suppress(OSError):
                while data := recv(PING_RECV):
                    sendall(data)

        server = _start("echo", echo)
        stack.callback(_join_all, [server], timeout, "ping-pong, raw echo")
        stack.callback(_half_close, client)
        sendall, recv = client.sendall, client.recv
        start = perf_counter()
        for _ in range(rounds):
            sendall(request)
            got = 0
            while got < PING_SIZE:
                data = recv(PING_RECV)
                if not data:
                    raise RuntimeError("ping-pong, raw: the echo server closed early")
                got += len(data)
        elapsed = perf_counter() - start
    return (rounds / elapsed,)


def _ping_pong(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    rounds = max(1, sizes.round_trips)
    [ours], [theirs] = _medians(
        n,
        timeout,
        [
            ("ping-pong, jfsocket", functools.partial(_ping_jfsocket, rounds, timeout)),
            ("ping-pong, raw", functools.partial(_ping_raw, rounds, timeout)),
        ],
    )
    return [
        Result(
            scenario=f"ping-pong, {PING_SIZE} B",
            jfsocket=ours,
            baseline=theirs,
            unit="round trips/s",
            baseline_name="sendall+recv loop / echo thread",
            note=f"{rounds} round trips; {verdict(ours / theirs, 0.6)}",
        )
    ]


# -- fan-out -----------------------------------------------------------------


def _fanout_jfsocket(clients: int, messages: int, timeout: float) -> tuple[float]:
    """Messages delivered/s: ``server.send(data)`` to every client, counted by callbacks."""
    data = bytes(FANOUT_SIZE)
    arrived = _Countdown(clients)
    tallies = [_Tally(messages * FANOUT_SIZE, arrived) for _ in range(clients)]
    connected = _Countdown(clients)
    with Deadline("fan-out, jfsocket", timeout) as deadline, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpServer(
                LOOPBACK,
                0,
                {EventTypes.CONNECTED: connected.arrive},
                encoding=None,
                backlog=BACKLOG,
            )
        )
        server.start()
        deadline.on_expiry(server.close)  # a send blocked on a stalled client fails
        for tally in tallies:
            client = stack.enter_context(
                TcpClient(
                    None,
                    {EventTypes.RECEIVED: tally.on_received},
                    encoding=None,
                    recv_buffer=CHUNK,
                )
            )
            client.connect(LOOPBACK, server.host[1], timeout=timeout)
        deadline.wait(connected.done, f"the server accepting {clients} clients")
        send = server.send
        start = perf_counter()
        for _ in range(messages):
            send(data)
        deadline.wait(arrived.done, "every client receiving every message")
        elapsed = perf_counter() - start
    for tally in tallies:
        check("fan-out, jfsocket", tally.got, messages * FANOUT_SIZE)
    return (clients * messages / elapsed,)


def _fanout_raw(clients: int, messages: int, timeout: float) -> tuple[float]:
    """Messages delivered/s: a ``sendall`` loop over the accepted sockets, reader threads."""
    data = bytes(FANOUT_SIZE)
    arrived = _Countdown(clients)
    tallies = [_Tally(messages * FANOUT_SIZE, arrived) for _ in range(clients)]
    with Deadline("fan-out, raw", timeout) as deadline, contextlib.ExitStack() as stack:
        listener = stack.enter_context(_listen(timeout))
        ends: list[socket.socket] = []
        conns: list[socket.socket] = []
        stack.callback(_close_all, ends)
        stack.callback(_close_all, conns)
        deadline.on_expiry(lambda: _shutdown_all(ends + conns))
        readers: list[threading.Thread] = []
        stack.callback(_join_all, readers, timeout, "fan-out, raw readers")
        stack.callback(_shutdown_all, ends)

        def read(sock: socket.socket, tally: _Tally) -> None:
            buffer = bytearray(CHUNK)
            recv_into, add = sock.recv_into, tally.add
            with contextlib.suppress(OSError):
                while size := recv_into(buffer):
                    add(size)

        for tally in tallies:
            end = _connect(listener.getsockname(), timeout)
            ends.append(end)
            conns.append(_accept(listener))
            readers.append(_start("fan-out reader", functools.partial(read, end, tally)))
        start = perf_counter()
        for _ in range(messages):
            for conn in conns:
                conn.sendall(data)
        deadline.wait(arrived.done, "every reader receiving every message")
        elapsed = perf_counter() - start
    for tally in tallies:
        check("fan-out, raw", tally.got, messages * FANOUT_SIZE)
    return (clients * messages / elapsed,)


def _fan_out(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    clients, messages = max(1, sizes.fanout_clients), max(1, sizes.fanout_messages)
    _raise_fd_limit(4 * clients + 64)
    [ours], [theirs] = _medians(
        n,
        timeout,
        [
            ("fan-out, jfsocket", functools.partial(_fanout_jfsocket, clients, messages, timeout)),
            ("fan-out, raw", functools.partial(_fanout_raw, clients, messages, timeout)),
        ],
    )
    return [
        Result(
            scenario=f"fan-out, {clients} clients × {FANOUT_SIZE} B",
            jfsocket=ours,
            baseline=theirs,
            unit="msg/s",
            baseline_name="sendall loop / reader threads",
            note=f"{messages} sends; {verdict(ours / theirs, 0.5)}",
        )
    ]


# -- connections -------------------------------------------------------------


def _hold_jfsocket(count: int, timeout: float) -> tuple[float, float]:
    """Seconds until a TcpServer has *count* connections, RSS bytes per connection."""
    connected = _Countdown(count)
    with Deadline("connections, jfsocket", timeout) as deadline, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpServer(LOOPBACK, 0, {EventTypes.CONNECTED: connected.arrive}, backlog=BACKLOG)
        )
        server.start()
        ends: list[socket.socket] = []
        stack.callback(_close_all, ends)
        gc.collect()
        before = rss()
        start = perf_counter()
        for _ in range(count):
            ends.append(_connect(server.host, timeout))
        deadline.wait(connected.done, f"the server accepting {count} connections")
        elapsed = perf_counter() - start
        gc.collect()
        grown = rss() - before
    return elapsed, grown / count


def _hold_raw(count: int, timeout: float) -> tuple[float, float]:
    """The same with an accept thread starting one reader thread per connection."""
    connected = _Countdown(count)
    with Deadline("connections, raw", timeout) as deadline, contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0), backlog=BACKLOG))
        ends: list[socket.socket] = []
        readers: list[threading.Thread] = []
        stack.callback(_join_all, readers, timeout, "connections, raw readers")
        stack.callback(_close_all, ends)
        deadline.on_expiry(lambda: _shutdown_all(ends))

        def serve(conn: socket.socket) -> None:
            with conn:
                connected.arrive()
                with contextlib.suppress(OSError):
                    while conn.recv(HOLD_RECV):
                        pass

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # shut down: the run is over
                readers.append(_start("held reader", functools.partial(serve, conn)))

        acceptor = _start("acceptor", accept)
        stack.callback(_join_all, [acceptor], timeout, "connections, raw acceptor")
        stack.callback(_shutdown_all, [listener])
        gc.collect()
        before = rss()
        start = perf_counter()
        for _ in range(count):
            ends.append(_connect(listener.getsockname(), timeout))
        deadline.wait(connected.done, f"the acceptor taking {count} connections")
        elapsed = perf_counter() - start
        gc.collect()
        grown = rss() - before
    return elapsed, grown / count


def _hold_in_child(kind: str, count: int, timeout: float) -> tuple[float, float]:
    """:func:`_hold_jfsocket` or :func:`_hold_raw` in a fresh interpreter."""
    command = [sys.executable, "-m", _MODULE, _CHILD_FLAG, kind, str(count), str(timeout)]
    # Longer than the child's own guards (its deadline, then its hang guard's dump).
    limit = 2 * timeout + _HANG_GRACE + 30
    try:
        done = subprocess.run(
            command, cwd=_ROOT, capture_output=True, text=True, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired as exc:
        tail = exc.stderr[-2000:] if isinstance(exc.stderr, str) else ""
        raise StalledError(f"connections, {kind}: child killed after {limit:g} s\n{tail}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"connections, {kind}: child failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return float(figures[0]), float(figures[1])


def _hold_child_main(argv: Sequence[str]) -> None:
    """The child's side of :func:`_hold_in_child`: print the figures as JSON."""
    kind, count, timeout = argv
    _raise_fd_limit(2 * int(count) + 64)
    hold = _hold_jfsocket if kind == "jfsocket" else _hold_raw
    figures = _guarded(
        f"connections, {kind}", float(timeout), lambda: hold(int(count), float(timeout))
    )
    print(json.dumps(list(figures)), flush=True)


def _connections(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    count = max(1, sizes.connections)
    (ours_s, ours_b), (theirs_s, theirs_b) = _medians(
        n,
        2 * timeout + _HANG_GRACE,  # this process's hang guard outlasts the child's
        [
            (
                "connections, jfsocket",
                functools.partial(_hold_in_child, "jfsocket", count, timeout),
            ),
            ("connections, raw", functools.partial(_hold_in_child, "raw", count, timeout)),
        ],
        warm_up=False,  # each run is a fresh interpreter anyway
    )
    base = "accept thread + reader thread each"
    return [
        Result(
            scenario=f"connect {count} clients",
            jfsocket=ours_s * 1e3,
            baseline=theirs_s * 1e3,
            unit="ms",
            baseline_name=base,
            higher_is_better=False,
            note=f"sequential connects until the server has all; backlog {BACKLOG}",
        ),
        Result(
            scenario=f"memory, {count} held",
            jfsocket=ours_b / 1024,
            baseline=theirs_b / 1024,
            unit="KiB/conn",
            baseline_name=base,
            higher_is_better=False,
            note="server process VmRSS growth / connections",
        ),
    ]


# -- multicast ---------------------------------------------------------------


def _window(sock: socket.socket) -> int:
    """How far the sender may run ahead: WINDOW, less if the receive buffer is small."""
    room = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // DATAGRAM_COST - BURST
    return max(BURST, min(WINDOW, room))


def _blast(
    port: int, total: int, window: int, gauge: _Gauge, deadline: Deadline
) -> tuple[float, float]:
    """Send *total* datagrams, paced; (received/s, fraction lost).

    After each burst the sender waits (at most PACE_WAIT) until the receiver is
    within *window* datagrams; a lag it gave up on is taken as lost, so losses do
    not make every later burst wait.
    """
    payload = bytes(DATAGRAM)
    target = (GROUP, port)
    given_up = 0
    sent = 0
    with loopback_sender() as sock:
        sendto = sock.sendto
        start = perf_counter()
        while sent < total:
            for _ in range(min(BURST, total - sent)):
                sendto(payload, target)
            sent = min(total, sent + BURST)
            floor = sent - window - given_up
            if gauge.count < floor and not gauge.wait_for(floor, PACE_WAIT):
                given_up = sent - window - gauge.count
            if not deadline.remaining():
                raise StalledError(
                    f"{deadline.what}: sending not done within {deadline.seconds:g} s"
                )
        seen = gauge.count
        while seen < total and not gauge.wait_for(total, SETTLE) and gauge.count > seen:
            seen = gauge.count  # still arriving: wait on
    received = gauge.count
    if not received:
        raise RuntimeError(f"{deadline.what}: no datagram arrived")
    return received / (gauge.last - start), 1 - received / total


def _multicast_jfsocket(total: int, timeout: float) -> tuple[float, float]:
    """A CastReceiver's RECEIVED callbacks counting the datagrams."""
    gauge = _Gauge()
    with Deadline("multicast, jfsocket", timeout) as deadline, contextlib.ExitStack() as stack:
        receiver = stack.enter_context(
            CastReceiver(
                ("0.0.0.0", 0),
                {EventTypes.RECEIVED: gauge.on_received},
                interface=LOOPBACK,
                encoding=None,
                recv_buffer=DATAGRAM_RECV,
            )
        )
        receiver.joinGroup(GROUP)
        receiver.start()
        # Benchmark only: the private socket, to give it the baseline's SO_RCVBUF.
        sock = receiver._sock
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        return _blast(receiver.host[1], total, _window(sock), gauge, deadline)


def _multicast_raw(total: int, timeout: float) -> tuple[float, float]:
    """A reader thread's ``recvfrom`` loop counting the datagrams."""
    gauge = _Gauge()
    with Deadline("multicast, raw", timeout) as deadline, contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind(("0.0.0.0", 0))
        membership = socket.inet_aton(GROUP) + socket.inet_aton(LOOPBACK)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)

        def read() -> None:
            recvfrom, add = sock.recvfrom, gauge.add
            with contextlib.suppress(OSError):
                while recvfrom(DATAGRAM_RECV)[0]:
                    add()

        reader = _start("multicast reader", read)
        stack.callback(_join_all, [reader], timeout, "multicast, raw reader")
        stack.callback(_shutdown_all, [sock])  # wakes the reader: recvfrom returns b""
        return _blast(sock.getsockname()[1], total, _window(sock), gauge, deadline)


def _multicast(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    total = max(1, sizes.datagrams)
    (ours, our_loss), (theirs, their_loss) = _medians(
        n,
        timeout,
        [
            ("multicast, jfsocket", functools.partial(_multicast_jfsocket, total, timeout)),
            ("multicast, raw", functools.partial(_multicast_raw, total, timeout)),
        ],
    )
    return [
        Result(
            scenario=f"multicast, {DATAGRAM} B datagrams",
            jfsocket=ours,
            baseline=theirs,
            unit="datagrams/s",
            baseline_name="recvfrom loop thread",
            note=(
                f"{total} sent, loss {our_loss:.2%} / {their_loss:.2%}; "
                f"{verdict(ours / theirs, 0.7)}"
            ),
        )
    ]


_RUNNERS: Final[dict[str, Callable[[Sizes, int, float], list[Result]]]] = {
    "bulk": _bulk,
    "ping-pong": _ping_pong,
    "fan-out": _fan_out,
    "connections": _connections,
    "multicast": _multicast,
}


def main(
    quick: bool = False,
    *,
    sizes: Sizes | None = None,
    runs: int | None = None,
    timeout: float | None = None,
    scenarios: Collection[str] | None = None,
) -> list[Result]:
    """Rows for the *scenarios* (default all, in :data:`SCENARIOS` order).

    *sizes* defaults to :data:`FULL` (:data:`QUICK` if *quick*); *runs* per
    median to 5 (3 if *quick*); *timeout* is each run's limit in seconds.
    """
    size = sizes if sizes is not None else (QUICK if quick else FULL)
    n = runs if runs is not None else (3 if quick else 5)
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    chosen = SCENARIOS if scenarios is None else tuple(scenarios)
    unknown = [name for name in chosen if name not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; available: {', '.join(SCENARIOS)}")
    results: list[Result] = []
    for name in SCENARIOS:
        if name in chosen:
            results += _RUNNERS[name](size, n, limit)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == [_CHILD_FLAG]:
        _hold_child_main(sys.argv[2:])
    else:
        from .common import print_table

        print_table(main("--quick" in sys.argv[1:]))
