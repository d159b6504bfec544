"""The trio binding beside raw trio and asyncio streams doing the same work, on loopback.

Each scenario runs three contenders in the same process run, taking turns:
jfsocket (:mod:`jfsocket.bindings.trio`, through callbacks as it is meant to
be used), raw trio (``trio.SocketStream`` / ``trio.socket`` code doing the same
work) and asyncio streams (``asyncio.open_connection`` / ``start_server``,
under ``asyncio.run``).  Each figure is the median of several runs, after one
untimed warm-up run of each.  A row's ratio is jfsocket against raw trio; an
extra row per figure puts asyncio in the jfsocket column, against raw trio too.
Setup and teardown are outside the timed region; every run checks what
arrived, closes everything it opened, and leaves no file descriptor behind.

Scenarios:

* ``bulk``: one client sends 64 KiB ``bytes`` (256 MiB, 32 MiB with ``quick``)
  to a server reading 64 KiB at a time, until the server counted every byte;
  MiB/s (target ratio 0.85);
* ``ping-pong``: 64-byte request, echoed back; the next request leaves when the
  whole response is in (async RECEIVED callbacks on both sides for jfsocket);
  round trips/s (target 0.7);
* ``connections``: 10 000 clients (500 with ``quick``) connect and stay; the
  time until the server has them all, and the server process's RSS growth per
  connection.  Each run's server is a fresh interpreter; the clients are raw
  trio sockets of this process, the same code for every server, connecting one
  after the other but never more than 2 048 ahead of the server's accepts (the
  backlog is 4 096: a full accept queue drops SYNs, which cost a 1 s retry);
* ``multicast``: 200-byte datagrams (100 000, 10 000 with ``quick``) from a
  raw sender to a receiver; received/s (target 0.7) and loss.  The sender
  runs in the receiver's event loop and paces itself, identically for every
  receiver: bursts of 256, then it waits (briefly, bounded) until the receiver
  is within 1 024 datagrams of it (fewer if the receive buffer, 1 MiB asked
  for every receiver, cannot hold that many).  asyncio has no multicast
  streams: its receiver is a ``DatagramProtocol``.

Safety: TCP only on 127.0.0.1; multicast only to a group in 239.255.0.0/16,
sent with TTL 0 from interface 127.0.0.1 and joined on 127.0.0.1.  Every wait
is bounded (``trio.fail_after``, ``asyncio.wait_for``): a run that stalls
raises :class:`StalledError` naming what did not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from pathlib import Path
from time import perf_counter
from typing import Final

import attrs
import trio
from jfsocket.bindings.trio import CastReceiver, EventTypes, TcpClient, TcpServer

from .common import Result, medians_of
from .counters import Gauge, Tally, Volley, echo
from .plumbing import (
    HOLD_STEP,
    Held,
    StalledError,
    check,
    fd_room,
    guarded,
    loopback_sender,
    report_held,
    verdict,
)
from .streams import bulk_streams, ping_streams, streams_server, within

__all__ = ["FULL", "QUICK", "SCENARIOS", "Sizes", "StalledError", "main"]

SCENARIOS: Final = ("bulk", "ping-pong", "connections", "multicast")
LOOPBACK: Final = "127.0.0.1"
GROUP: Final = "239.255.77.78"  # administratively scoped (239.255.0.0/16)
CHUNK: Final = 64 << 10  # bulk send size, and the bulk readers' buffer
PING_SIZE: Final = 64
PING_RECV: Final = 1024
HOLD_RECV: Final = 256  # the held connections' reads (jfsocket's default recvBuffer)
BACKLOG: Final = 4096  # every server: the connects come in a burst
DATAGRAM: Final = 200
DATAGRAM_RECV: Final = 2048
BURST: Final = 256
WINDOW: Final = 1024  # most datagrams in flight, if the receive buffer holds that many
DATAGRAM_COST: Final = 2048  # receive-buffer bytes one small datagram may take (Linux: ~1.3 KiB)
PACE_WAIT: Final = 0.05  # longest a burst waits for the receiver to catch up
SETTLE: Final = 0.2  # the receiver made no progress for this long: the rest is lost
RCVBUF: Final = 1 << 20  # SO_RCVBUF of every multicast receiver (the kernel doubles it)
DEFAULT_TIMEOUT: Final = 120.0
_FD_MARGIN: Final = 64
_MIB: Final = float(1 << 20)
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
_ROOT: Final = Path(__file__).resolve().parents[2]
_CHILD_FLAG: Final = "--hold-connections"
_KINDS: Final = ("jfsocket", "trio", "asyncio")


@attrs.frozen(kw_only=True)
class Sizes:
    """How much work each scenario does."""

    bulk_bytes: int
    round_trips: int
    connections: int
    datagrams: int


FULL: Final = Sizes(bulk_bytes=256 << 20, round_trips=20_000, connections=10_000, datagrams=100_000)
QUICK: Final = Sizes(bulk_bytes=32 << 20, round_trips=2_000, connections=500, datagrams=10_000)


@contextlib.contextmanager
def _limit(seconds: float, what: str) -> Iterator[None]:
    """``trio.fail_after(seconds)``, failing with a :class:`StalledError` naming *what*."""
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise StalledError(f"{what}: not done within {seconds:g} s") from None


# -- counting ----------------------------------------------------------------


class _GaugeProtocol(asyncio.DatagramProtocol):
    """asyncio's receiver: each datagram counted."""

    def __init__(self, gauge: Gauge) -> None:
        self._add = gauge.add

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """One datagram."""
        self._add()


# -- plumbing ----------------------------------------------------------------


def _medians(
    n: int, runs: Sequence[tuple[str, Callable[[], Sequence[float]]]], *, warm_up: bool = True
) -> list[list[float]]:
    """Per-figure medians of each named run, over *n* interleaved rounds.

    With *warm_up*, each runs once untimed first (a VM's first run after an
    idle spell is slower, whichever side it is).
    """
    samples: list[list[Sequence[float]]] = [[] for _ in runs]
    if warm_up:
        for what, fn in runs:
            guarded(f"{what} (warm-up)", fn)

    def once(what: str, fn: Callable[[], Sequence[float]], out: list[Sequence[float]]) -> float:
        figures = guarded(what, fn)
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


def _rows(
    scenario: str,
    figures: Sequence[float],
    *,
    unit: str,
    base: str,
    note: str,
    higher_is_better: bool = True,
    asyncio_name: str = "asyncio streams",
) -> list[Result]:
    """jfsocket's row and asyncio's row, both against raw trio: *figures* in _KINDS order."""
    ours, theirs, other = figures
    return [
        Result(
            scenario=scenario,
            jfsocket=ours,
            baseline=theirs,
            unit=unit,
            baseline_name=base,
            higher_is_better=higher_is_better,
            note=note,
        ),
        Result(
            scenario=f"{scenario} ({asyncio_name})",
            jfsocket=other,
            baseline=theirs,
            unit=unit,
            baseline_name=base,
            higher_is_better=higher_is_better,
            note=f"{asyncio_name} in the jfsocket column",
        ),
    ]


@contextlib.asynccontextmanager
async def _trio_pair(
    timeout: float, what: str
) -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A raw trio connection on loopback: (client end, server end); both closed after."""
    listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
    try:
        port = listeners[0].socket.getsockname()[1]
        with _limit(timeout, f"{what}: connecting"):
            client = await trio.open_tcp_stream(LOOPBACK, port)
            try:
                server = await listeners[0].accept()
            except BaseException:
                await trio.aclose_forcefully(client)
                raise
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    try:
        yield client, server
    finally:
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(server)


# -- bulk --------------------------------------------------------------------


async def _bulk_jfsocket(total: int, timeout: float) -> float:
    """Seconds from a TcpClient's first 64 KiB send to the TcpServer counting every byte."""
    what = "bulk, jfsocket"
    chunk = bytes(CHUNK)
    arrived = trio.Event()
    tally = Tally(total, arrived.set)
    async with (
        TcpServer(
            LOOPBACK, 0, {EventTypes.RECEIVED: tally.on_received}, encoding=None, recv_buffer=CHUNK
        ) as server,
        TcpClient(encoding=None) as client,
    ):
        with _limit(timeout, f"{what}: connecting"):
            await client.connect(LOOPBACK, server.host[1])
        send = client.send
        with _limit(timeout, f"{what}: sending {total} bytes"):
            start = perf_counter()
            for _ in range(total // CHUNK):
                await send(chunk)
            await arrived.wait()
            elapsed = perf_counter() - start
    check(what, tally.got, total)
    return elapsed


async def _bulk_trio(total: int, timeout: float) -> float:
    """The same with ``send_all`` and a reader task's ``receive_some(65536)``."""
    what = "bulk, raw trio"
    chunk = bytes(CHUNK)
    arrived = trio.Event()
    tally = Tally(total, arrived.set)
    async with _trio_pair(timeout, what) as (client, server), trio.open_nursery() as nursery:

        async def read() -> None:
            receive, add = server.receive_some, tally.add
            while data := await receive(CHUNK):
                add(len(data))

        nursery.start_soon(read)
        send_all = client.send_all
        with _limit(timeout, f"{what}: sending {total} bytes"):
            start = perf_counter()
            for _ in range(total // CHUNK):
                await send_all(chunk)
            await arrived.wait()
            elapsed = perf_counter() - start
        nursery.cancel_scope.cancel()
    check(what, tally.got, total)
    return elapsed


def _bulk(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    total = max(CHUNK, sizes.bulk_bytes // CHUNK * CHUNK)

    def rate(kind: str) -> tuple[float]:
        if kind == "asyncio":
            seconds = asyncio.run(bulk_streams(total, timeout))
        else:
            seconds = trio.run(_bulk_jfsocket if kind == "jfsocket" else _bulk_trio, total, timeout)
        return (total / _MIB / seconds,)

    medians = _medians(n, [(f"bulk, {kind}", functools.partial(rate, kind)) for kind in _KINDS])
    figures = [m[0] for m in medians]
    return _rows(
        "bulk, 64 KiB sends",
        figures,
        unit="MiB/s",
        base="raw trio send_all / receive_some",
        note=f"{total / _MIB:g} MiB; {verdict(figures[0] / figures[1], 0.85)}",
    )


# -- ping-pong ---------------------------------------------------------------


async def _ping_jfsocket(rounds: int, timeout: float) -> float:
    """Seconds for *rounds* round trips, driven by async RECEIVED callbacks on both sides."""
    what = "ping-pong, jfsocket"
    request = bytes(range(PING_SIZE))
    done = trio.Event()
    volley = Volley(rounds, request, done.set)
    async with (
        TcpServer(
            LOOPBACK, 0, {EventTypes.RECEIVED: echo}, encoding=None, recv_buffer=PING_RECV
        ) as server,
        TcpClient(
            None, {EventTypes.RECEIVED: volley.on_received}, encoding=None, recv_buffer=PING_RECV
        ) as client,
    ):
        with _limit(timeout, f"{what}: connecting"):
            await client.connect(LOOPBACK, server.host[1])
        with _limit(timeout, f"{what}: {rounds} round trips"):
            start = perf_counter()
            await client.send(request)
            await done.wait()
            elapsed = perf_counter() - start
    return elapsed


async def _ping_trio(rounds: int, timeout: float) -> float:
    """The same with an echo task and a ``send_all`` + ``receive_some`` loop."""
    what = "ping-pong, raw trio"
    request = bytes(range(PING_SIZE))
    async with _trio_pair(timeout, what) as (client, server), trio.open_nursery() as nursery:

        async def echo() -> None:
            receive, send_all = server.receive_some, server.send_all
            while data := await receive(PING_RECV):
                await send_all(data)

        nursery.start_soon(echo)
        send_all, receive = client.send_all, client.receive_some
        with _limit(timeout, f"{what}: {rounds} round trips"):
            start = perf_counter()
            for _ in range(rounds):
                await send_all(request)
                got = 0
                while got < PING_SIZE:
                    data = await receive(PING_RECV)
                    if not data:
                        raise RuntimeError(f"{what}: the echo task closed early")
                    got += len(data)
            elapsed = perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


def _ping_pong(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    rounds = max(1, sizes.round_trips)

    def rate(kind: str) -> tuple[float]:
        if kind == "asyncio":
            seconds = asyncio.run(ping_streams(rounds, timeout))
        else:
            seconds = trio.run(
                _ping_jfsocket if kind == "jfsocket" else _ping_trio, rounds, timeout
            )
        return (rounds / seconds,)

    medians = _medians(
        n, [(f"ping-pong, {kind}", functools.partial(rate, kind)) for kind in _KINDS]
    )
    figures = [m[0] for m in medians]
    return _rows(
        f"ping-pong, {PING_SIZE} B",
        figures,
        unit="round trips/s",
        base="raw trio echo task / send+receive loop",
        note=f"{rounds} round trips; {verdict(figures[0] / figures[1], 0.7)}",
    )


# -- connections -------------------------------------------------------------
#
# Each run starts a fresh interpreter (``python -m tests.bench.bench_trio
# --hold-connections KIND COUNT TIMEOUT``) holding the server.  It prints
# ``ready PORT``, then ``connected`` once it has COUNT connections, then
# ``rss BYTES`` (its VmRSS growth since ``ready``, after a collection), then
# stops its server and exits; meanwhile, ``have N`` each time it has HOLD_STEP
# more.  This process opens the clients, sequentially, staying at most two
# steps ahead of the server's accepts: a full accept queue would drop SYNs,
# and a dropped SYN costs its connect a one-second retransmission.


async def _hold_jfsocket(count: int, timeout: float) -> None:
    """A TcpServer (default options) holding *count* connections."""
    done = trio.Event()
    held = Held(count, done.set)
    with _limit(timeout, f"connections, jfsocket: {count} held"):
        async with TcpServer(
            LOOPBACK, 0, {EventTypes.CONNECTED: held.arrive}, backlog=BACKLOG
        ) as server:
            await report_held(server.host[1], done.wait)


async def _hold_trio(count: int, timeout: float) -> None:
    """``trio.serve_tcp``: a handler task per connection, blocked in ``receive_some``."""
    done = trio.Event()
    held = Held(count, done.set)

    async def handler(stream: trio.SocketStream) -> None:
        held.arrive()
        with contextlib.suppress(trio.BrokenResourceError):
            while await stream.receive_some(HOLD_RECV):
                pass

    with _limit(timeout, f"connections, trio: {count} held"):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(trio.serve_tcp, handler, 0, host=LOOPBACK, backlog=BACKLOG)
            listeners: list[trio.SocketListener] = await nursery.start(serve)
            await report_held(listeners[0].socket.getsockname()[1], done.wait)
            nursery.cancel_scope.cancel()


async def _hold_asyncio(count: int, timeout: float) -> None:
    """``asyncio.start_server``: a handler per connection, blocked in ``read``."""
    what = f"connections, asyncio: {count} held"
    done = asyncio.Event()
    held = Held(count, done.set)

    async def handler(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        held.arrive()
        with contextlib.suppress(ConnectionError):
            while await reader.read(HOLD_RECV):
                pass

    async with streams_server(handler, timeout, what, backlog=BACKLOG) as port:
        await report_held(port, lambda: within(done.wait(), timeout, what))


def _hold_child_main(argv: Sequence[str]) -> None:
    """The child: hold the connections with the server of the kind given."""
    kind, count, timeout = argv[0], int(argv[1]), float(argv[2])
    problem = fd_room(count + _FD_MARGIN)
    if problem is not None:
        raise SystemExit(problem)
    if kind == "asyncio":
        asyncio.run(_hold_asyncio(count, timeout))
    else:
        trio.run(_hold_jfsocket if kind == "jfsocket" else _hold_trio, count, timeout)


class _Lines:
    """Lines read from a trio receive stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        #: The latest ``have N``.
        self.have = 0

    async def expect(self, word: str) -> str:
        """The rest of the next line that starts with *word*.

        ``have N`` lines on the way are skipped, their count kept in :attr:`have`.
        """
        while True:
            while (cut := self._buffer.find(b"\n")) < 0:
                data = await self._stream.receive_some()
                if not data:
                    raise EOFError(f"the server process exited before saying {word!r}")
                self._buffer += data
            line = self._buffer[:cut].decode()
            del self._buffer[: cut + 1]
            head, _, rest = line.partition(" ")
            if head == "have":
                self.have = int(rest)
            if head == word:
                return rest
            if head != "have":
                raise RuntimeError(f"the server process said {line!r}, expected {word!r}")


async def _hold(kind: str, count: int, timeout: float) -> tuple[float, float]:
    """Seconds until a fresh *kind* server process has *count* clients; its RSS bytes each."""
    what = f"connections, {kind}"
    command = [sys.executable, "-m", __name__, _CHILD_FLAG, kind, str(count), str(timeout)]
    socks: list[trio.socket.SocketType] = []
    with tempfile.TemporaryFile() as errors:

        def failed(why: str) -> RuntimeError:
            errors.seek(0)
            tail = errors.read()[-2000:].decode(errors="replace")
            return RuntimeError(f"{what}: {why} (status {process.returncode}):\n{tail}")

        process = await trio.lowlevel.open_process(
            command, cwd=_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        stdout = process.stdout
        try:
            assert stdout is not None
            lines = _Lines(stdout)
            with _limit(timeout, f"{what}: {count} connections"):
                port = int(await lines.expect("ready"))
                start = perf_counter()
                for i in range(count):
                    while lines.have < i - 2 * HOLD_STEP:
                        await lines.expect("have")
                    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(sock)
                    await sock.connect((LOOPBACK, port))
                await lines.expect("connected")
                elapsed = perf_counter() - start
                grown = int(await lines.expect("rss"))
                await process.wait()
        except EOFError as exc:
            with trio.move_on_after(10):
                await process.wait()
            raise failed(str(exc)) from None
        finally:
            for sock in socks:
                sock.close()
            with trio.CancelScope(shield=True):
                if stdout is not None:
                    await trio.aclose_forcefully(stdout)
                if process.returncode is None:  # it failed, or we did: end it
                    process.kill()
                    await process.wait()
        if process.returncode != 0:
            raise failed("the server process failed")
    return elapsed, max(grown, _PAGE) / count


def _connections(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    count = max(1, sizes.connections)
    problem = fd_room(count + _FD_MARGIN)
    if problem is not None:
        print(f"bench_trio: connections skipped: {problem}", file=sys.stderr, flush=True)
        return []
    runs = [
        (f"connections, {kind}", functools.partial(trio.run, _hold, kind, count, timeout))
        for kind in _KINDS
    ]
    medians = _medians(n, runs, warm_up=False)  # each run is a fresh server process anyway
    base = "raw trio serve_tcp, task each"
    return [
        *_rows(
            f"connect {count} clients",
            [seconds * 1e3 for seconds, _ in medians],
            unit="ms",
            base=base,
            note=f"sequential connects until the server has all; backlog {BACKLOG}",
            higher_is_better=False,
        ),
        *_rows(
            f"memory, {count} held",
            [per_connection / 1024 for _, per_connection in medians],
            unit="KiB/conn",
            base=base,
            note="server process VmRSS growth / connections (one page at least)",
            higher_is_better=False,
        ),
    ]


# -- multicast ---------------------------------------------------------------


def _raw_receiver() -> socket.socket:
    """A receiving socket as the baselines use it: bound, joined on 127.0.0.1, RCVBUF set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind(("0.0.0.0", 0))
        membership = socket.inet_aton(GROUP) + socket.inet_aton(LOOPBACK)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError:
        sock.close()
        raise
    return sock


def _window(rcvbuf: int) -> int:
    """How far the sender may run ahead: WINDOW, less if the receive buffer is small."""
    return max(BURST, min(WINDOW, rcvbuf // DATAGRAM_COST - BURST))


async def _blast(
    port: int,
    total: int,
    window: int,
    gauge: Gauge,
    wait_for: Callable[[int, float], Awaitable[bool]],
    what: str,
    timeout: float,
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
        end = start + timeout
        while sent < total:
            for _ in range(min(BURST, total - sent)):
                sendto(payload, target)
            sent = min(total, sent + BURST)
            floor = sent - window - given_up
            if gauge.count < floor and not await wait_for(floor, PACE_WAIT):
                given_up = sent - window - gauge.count
            if perf_counter() > end:
                raise StalledError(f"{what}: sending not done within {timeout:g} s")
        seen = gauge.count
        while seen < total and not await wait_for(total, SETTLE) and gauge.count > seen:
            seen = gauge.count  # still arriving: wait on
    received = gauge.count
    if not received:
        raise RuntimeError(f"{what}: no datagram arrived")
    return received / (gauge.last - start), 1 - received / total


def _trio_waiter(gauge: Gauge) -> Callable[[int, float], Awaitable[bool]]:
    """Waits in trio until *gauge* counted a number of datagrams, at most some seconds."""

    async def wait_for(count: int, seconds: float) -> bool:
        if gauge.count < count:
            arrived = trio.Event()
            gauge.arm(count, arrived.set)
            with trio.move_on_after(seconds):
                await arrived.wait()
            gauge.disarm()
        return gauge.count >= count

    return wait_for


async def _multicast_jfsocket(total: int, timeout: float) -> tuple[float, float]:
    """A CastReceiver's RECEIVED callbacks counting the datagrams."""
    what = "multicast, jfsocket"
    gauge = Gauge()
    with _limit(timeout, f"{what}: {total} datagrams"):
        async with CastReceiver(
            ("0.0.0.0", 0),
            {EventTypes.RECEIVED: gauge.on_received},
            interface=LOOPBACK,
            encoding=None,
            recv_buffer=DATAGRAM_RECV,
        ) as receiver:
            receiver.joinGroup(GROUP)
            # Benchmark only: the private socket, to give it the baselines' SO_RCVBUF.
            sock = receiver._sock
            assert sock is not None
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            window = _window(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            return await _blast(
                receiver.host[1], total, window, gauge, _trio_waiter(gauge), what, timeout
            )


async def _multicast_trio(total: int, timeout: float) -> tuple[float, float]:
    """A task's ``recvfrom`` loop on a trio socket counting the datagrams."""
    what = "multicast, raw trio"
    gauge = Gauge()
    with (
        _limit(timeout, f"{what}: {total} datagrams"),
        trio.socket.from_stdlib_socket(_raw_receiver()) as sock,
    ):
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                recvfrom, add = sock.recvfrom, gauge.add
                while True:
                    await recvfrom(DATAGRAM_RECV)
                    add()

            nursery.start_soon(read)
            window = _window(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            port = sock.getsockname()[1]
            figures = await _blast(port, total, window, gauge, _trio_waiter(gauge), what, timeout)
            nursery.cancel_scope.cancel()
    return figures


async def _multicast_asyncio(total: int, timeout: float) -> tuple[float, float]:
    """An asyncio ``DatagramProtocol`` counting the datagrams."""
    what = "multicast, asyncio"
    gauge = Gauge()
    loop = asyncio.get_running_loop()

    async def wait_for(count: int, seconds: float) -> bool:
        if gauge.count < count:
            arrived = asyncio.Event()
            gauge.arm(count, arrived.set)
            timer = loop.call_later(seconds, arrived.set)
            await arrived.wait()
            timer.cancel()
            gauge.disarm()
        return gauge.count >= count

    sock = _raw_receiver()
    try:
        sock.setblocking(False)
        window = _window(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        port = sock.getsockname()[1]
    except BaseException:
        sock.close()
        raise
    transport, _ = await loop.create_datagram_endpoint(lambda: _GaugeProtocol(gauge), sock=sock)
    try:
        return await within(
            _blast(port, total, window, gauge, wait_for, what, timeout),
            timeout,
            f"{what}: {total} datagrams",
        )
    finally:
        transport.close()
        await asyncio.sleep(0)  # the transport closes its socket on the next loop pass


def _multicast(sizes: Sizes, n: int, timeout: float) -> list[Result]:
    total = max(1, sizes.datagrams)

    def run(kind: str) -> tuple[float, float]:
        if kind == "asyncio":
            return asyncio.run(_multicast_asyncio(total, timeout))
        return trio.run(
            _multicast_jfsocket if kind == "jfsocket" else _multicast_trio, total, timeout
        )

    medians = _medians(n, [(f"multicast, {kind}", functools.partial(run, kind)) for kind in _KINDS])
    (ours, our_loss), (theirs, their_loss), (other, other_loss) = medians
    rows = _rows(
        f"multicast, {DATAGRAM} B datagrams",
        [ours, theirs, other],
        unit="datagrams/s",
        base="raw trio recvfrom loop task",
        note=(
            f"{total} sent, loss {our_loss:.2%} / {their_loss:.2%}; {verdict(ours / theirs, 0.7)}"
        ),
        asyncio_name="asyncio DatagramProtocol",
    )
    loss = f"loss {other_loss:.2%} / {their_loss:.2%}"
    return [rows[0], attrs.evolve(rows[1], note=f"{rows[1].note}; {loss}")]


_RUNNERS: Final[dict[str, Callable[[Sizes, int, float], list[Result]]]] = {
    "bulk": _bulk,
    "ping-pong": _ping_pong,
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
