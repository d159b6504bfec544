"""The asyncio binding beside raw asyncio protocols doing the same work, on loopback.

Each scenario runs jfsocket (:mod:`jfsocket.bindings.asyncio`, through
callbacks as it is meant to be used) and a baseline of raw asyncio
``Protocol`` code doing the same work (``loop.create_server`` /
``create_connection`` / ``create_datagram_endpoint``), on asyncio's default
event loop and on uvloop (its rows are left out, with a note, where uvloop
cannot be imported).  bulk and ping-pong also run asyncio streams
(``start_server`` / ``open_connection``) on the same loop; their extra row puts
jfsocket against the streams.  The contenders take turns, round after round;
each figure is the median of several runs, after one untimed warm-up run of
each, every run in a fresh event loop.  A row's ratio is jfsocket against the
raw protocols of the same loop (against the streams in the "vs streams" rows).
Setup and teardown are outside the timed region; every run checks what arrived,
closes everything it opened, and leaves no task and no file descriptor behind.

Scenarios:

* ``bulk``: one client sends 64 KiB ``bytes`` (256 MiB, 32 MiB with ``quick``)
  to a server counting what arrives, until it counted every byte; MiB/s
  (target ratio 0.85).  jfsocket awaits ``send`` per chunk and counts in a
  RECEIVED callback, reading up to 256 KiB at a time (as asyncio's and uvloop's
  transports do); the raw client writes and waits while ``pause_writing`` is in
  force, the raw server counts in ``data_received``;
* ``ping-pong``: 64-byte request, echoed back; the next request leaves when the
  whole response is in (async RECEIVED callbacks on both sides for jfsocket,
  ``data_received`` writing for the raw protocols); round trips/s (target 0.8);
* ``connections``: 10 000 clients (500 with ``quick``) connect and stay; the
  time until the server has them all, and the server process's RSS growth per
  connection.  Each run's server is a fresh interpreter (so no run reuses
  another's freed memory, and each process needs one descriptor per connection,
  not two); the clients are this process's, of the same kind as the server
  (jfsocket ``TcpClient`` or raw protocol), connecting one after the other but
  never more than 2 048 ahead of the server's accepts (the backlog is 4 096: a
  full accept queue drops SYNs, which cost a 1 s retry);
* ``multicast``: 200-byte datagrams (100 000, 10 000 with ``quick``) from a
  raw sender to a receiver; received/s (target 0.7) and loss.  The sender
  runs in the receiver's event loop and paces itself, identically for every
  receiver: bursts of 256, then it waits (briefly, bounded) until the receiver
  is within 1 024 datagrams of it (fewer if the receive buffer, 1 MiB asked
  for every receiver, cannot hold that many).

Safety: TCP only on 127.0.0.1; multicast only to a group in 239.255.0.0/16,
sent with TTL 0 from interface 127.0.0.1 and joined on 127.0.0.1.  Every wait
is bounded (``asyncio.wait_for``), and so is each run as a whole: a run that
stalls raises :class:`StalledError` naming what did not finish.
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
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Sequence,
)
from pathlib import Path
from time import perf_counter
from typing import Any, Final, TypeVar, cast

import attrs
from jfsocket.bindings.asyncio import CastReceiver, EventTypes, TcpClient, TcpServer

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
from .streams import bulk_streams, ping_streams, within

__all__ = ["FULL", "LOOPS", "QUICK", "SCENARIOS", "Sizes", "StalledError", "main"]

SCENARIOS: Final = ("bulk", "ping-pong", "connections", "multicast")
LOOPS: Final = ("asyncio", "uvloop")
LOOPBACK: Final = "127.0.0.1"
GROUP: Final = "239.255.77.79"  # administratively scoped (239.255.0.0/16)
CHUNK: Final = 64 << 10  # bulk send size
BULK_RECV: Final = 256 << 10  # jfsocket's bulk reads: what asyncio's transports read at most
PING_SIZE: Final = 64
PING_RECV: Final = 1024
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
_TEARDOWN: Final = 30.0  # a run's limit is its timeout plus this, for setup and teardown
_FD_MARGIN: Final = 64
_MIB: Final = float(1 << 20)
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
_ROOT: Final = Path(__file__).resolve().parents[2]
_CHILD_FLAG: Final = "--hold-connections"
_T = TypeVar("_T")
_P = TypeVar("_P", bound="_Tracked")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@attrs.frozen(kw_only=True)
class Sizes:
    """How much work each scenario does."""

    bulk_bytes: int
    round_trips: int
    connections: int
    datagrams: int


FULL: Final = Sizes(bulk_bytes=256 << 20, round_trips=20_000, connections=10_000, datagrams=100_000)
QUICK: Final = Sizes(bulk_bytes=32 << 20, round_trips=2_000, connections=500, datagrams=10_000)


# -- event loops -------------------------------------------------------------


@functools.cache
def _uvloop() -> LoopFactory | None:
    """``uvloop.new_event_loop``, or ``None`` where uvloop cannot be imported.

    One loop is made and closed first: libuv opens process-wide descriptors
    with the first loop, which the runs' descriptor checks must not count.
    """
    try:
        import uvloop
    except ImportError:
        return None
    uvloop.new_event_loop().close()
    return uvloop.new_event_loop


def _factory(loop: str) -> LoopFactory:
    """The event loop factory named *loop* (``asyncio``: the default loop)."""
    if loop == "asyncio":
        return asyncio.new_event_loop
    if loop == "uvloop":
        factory = _uvloop()
        if factory is not None:
            return factory
    raise ValueError(f"no event loop {loop!r} here")


def _run(loop: str, main: Callable[[], Coroutine[Any, Any, _T]], limit: float) -> _T:
    """``asyncio.run(main())`` on a fresh *loop*, for at most *limit* seconds.

    Fails if *main* leaves a task behind (cancelling it first, so the loop closes).
    """
    event_loop = _factory(loop)()
    try:
        result = event_loop.run_until_complete(within(main(), limit, f"{loop} run"))
        left = [task for task in asyncio.all_tasks(event_loop) if not task.done()]
        if left:
            raise RuntimeError(f"{loop} run: {len(left)} task(s) left running: {left[:3]}")
        return result
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


# -- counting ----------------------------------------------------------------


# -- raw protocols -----------------------------------------------------------


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

    async def close(self, timeout: float, what: str) -> None:
        """Close the transport and wait until it is gone."""
        self.transport.close()
        await within(asyncio.shield(self.lost), timeout, f"{what}: closing")


class _Counter(_Tracked):
    """The raw bulk server: counts bytes in ``data_received``."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._add = tally.add

    def data_received(self, data: bytes) -> None:
        """Count."""
        self._add(len(data))


class _Pump(_Tracked):
    """The raw bulk client: its writer waits while writing is paused."""

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

    def __init__(self, rounds: int, request: bytes) -> None:
        super().__init__()
        self._request = request
        self._left = rounds
        self._got = 0
        self._expected = len(request)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport's ``write``."""
        super().connection_made(transport)
        self._write = self.transport.write

    def data_received(self, data: bytes) -> None:
        """Count bytes; a whole response sends the next request."""
        self._got += len(data)
        if self._got < self._expected:
            return
        self._left -= 1
        if self._left <= 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        self._expected += len(self._request)
        self._write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        """The end: an unfinished volley fails."""
        super().connection_lost(exc)
        if not self.done.done():
            self.done.set_exception(RuntimeError("ping-pong, raw: connection lost early"))


class _GaugeProtocol(asyncio.DatagramProtocol):
    """The raw multicast receiver: each datagram counted."""

    def __init__(self, gauge: Gauge) -> None:
        self._add = gauge.add
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """One datagram."""
        self._add()

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport closed its socket."""
        if not self.lost.done():
            self.lost.set_result(None)


class _Holder(_Tracked):
    """The raw connections server: counts arrivals, ignores data."""

    def __init__(self, held: Held, live: set[_Tracked]) -> None:
        super().__init__()
        self._held = held
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """One more connection."""
        super().connection_made(transport)
        self._live.add(self)
        self._held.arrive()

    def data_received(self, data: bytes) -> None:
        """Ignored."""

    def connection_lost(self, exc: Exception | None) -> None:
        """Gone."""
        super().connection_lost(exc)
        self._live.discard(self)


# -- plumbing ----------------------------------------------------------------


Run = tuple[str, Callable[[], Sequence[float]]]


def _medians(n: int, runs: Sequence[Run], *, warm_up: bool = True) -> dict[str, list[float]]:
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
    return {
        what: [statistics.median(column) for column in zip(*out, strict=True)]
        for (what, _), out in zip(runs, samples, strict=True)
    }


def _suffix(loop: str, *more: str) -> str:
    """`` (uvloop, vs streams)``: what tells a scenario's rows apart ('' for plain asyncio)."""
    parts = [*([] if loop == "asyncio" else [loop]), *more]
    return f" ({', '.join(parts)})" if parts else ""


def _raw_name(loop: str) -> str:
    return f"raw {loop} Protocol"


def _streams_row(
    scenario: str, loop: str, ours: float, raw: float, streams: float, *, unit: str
) -> Result:
    """jfsocket against asyncio streams on *loop* (higher is better)."""
    ratio = ours / streams
    return Result(
        scenario=f"{scenario}{_suffix(loop, 'vs streams')}",
        jfsocket=ours,
        baseline=streams,
        unit=unit,
        baseline_name="asyncio streams" + ("" if loop == "asyncio" else f" on {loop}"),
        note=(
            f"jfsocket {'faster' if ratio >= 1 else 'slower'} by {abs(ratio - 1):.0%}; "
            f"streams are {streams / raw:.2f}× the raw protocols"
        ),
    )


@contextlib.asynccontextmanager
async def _raw_pair(
    client_factory: Callable[[], _P],
    server_factory: Callable[[], _Tracked],
    timeout: float,
    what: str,
) -> AsyncIterator[_P]:
    """A raw protocol connection on loopback: the client's protocol; all closed after."""
    loop = asyncio.get_running_loop()
    accepted: list[_Tracked] = []

    def accept() -> _Tracked:
        protocol = server_factory()
        accepted.append(protocol)
        return protocol

    server = await loop.create_server(accept, LOOPBACK, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _, client = await within(
            loop.create_connection(client_factory, LOOPBACK, port), timeout, f"{what}: connecting"
        )
        try:
            while not accepted:
                await within(asyncio.sleep(0.001), timeout, f"{what}: accepting")
            peer = accepted[0]
            await within(asyncio.shield(peer.made), timeout, f"{what}: accepting")
            try:
                yield client
            finally:
                await peer.close(timeout, f"{what}, server side")
        finally:
            await client.close(timeout, f"{what}, client side")
    finally:
        server.close()
        await within(server.wait_closed(), timeout, f"{what}: server closing")


# -- bulk --------------------------------------------------------------------


async def _bulk_jfsocket(total: int, timeout: float) -> float:
    """Seconds from a TcpClient's first 64 KiB send to the TcpServer counting every byte."""
    what = "bulk, jfsocket"
    chunk = bytes(CHUNK)
    arrived = asyncio.Event()
    tally = Tally(total, arrived.set)

    async def pump(client: TcpClient) -> float:
        send = client.send
        start = perf_counter()
        for _ in range(total // CHUNK):
            await send(chunk)
        await arrived.wait()
        return perf_counter() - start

    async with (
        TcpServer(
            LOOPBACK,
            0,
            {EventTypes.RECEIVED: tally.on_received},
            encoding=None,
            recv_buffer=BULK_RECV,
        ) as server,
        TcpClient(encoding=None) as client,
    ):
        await within(client.connect(LOOPBACK, server.host[1]), timeout, f"{what}: connecting")
        elapsed = await within(pump(client), timeout, f"{what}: sending {total} bytes")
    check(what, tally.got, total)
    return elapsed


async def _bulk_raw(total: int, timeout: float) -> float:
    """The same with raw protocols: ``write``, waiting while paused; ``data_received``."""
    what = "bulk, raw"
    chunk = bytes(CHUNK)
    arrived = asyncio.Event()
    tally = Tally(total, arrived.set)

    async def pump(client: _Pump) -> float:
        write, resumed = client.transport.write, client.resumed
        start = perf_counter()
        for _ in range(total // CHUNK):
            write(chunk)
            if client.paused:
                await resumed()
        await arrived.wait()
        return perf_counter() - start

    async with _raw_pair(_Pump, functools.partial(_Counter, tally), timeout, what) as client:
        elapsed = await within(pump(client), timeout, f"{what}: sending {total} bytes")
    check(what, tally.got, total)
    return elapsed


_BULK: Final = {"jfsocket": _bulk_jfsocket, "raw": _bulk_raw, "streams": bulk_streams}


def _bulk(sizes: Sizes, n: int, timeout: float, loops: Sequence[str]) -> list[Result]:
    total = max(CHUNK, sizes.bulk_bytes // CHUNK * CHUNK)

    def rate(loop: str, kind: str) -> tuple[float]:
        seconds = _run(loop, functools.partial(_BULK[kind], total, timeout), timeout + _TEARDOWN)
        return (total / _MIB / seconds,)

    medians = _medians(
        n,
        [
            (f"bulk, {kind} on {loop}", functools.partial(rate, loop, kind))
            for loop in loops
            for kind in _BULK
        ],
    )
    scenario = "bulk, 64 KiB sends"
    results: list[Result] = []
    for loop in loops:
        ours, raw, streams = (medians[f"bulk, {kind} on {loop}"][0] for kind in _BULK)
        results += [
            Result(
                scenario=f"{scenario}{_suffix(loop)}",
                jfsocket=ours,
                baseline=raw,
                unit="MiB/s",
                baseline_name=_raw_name(loop),
                note=f"{total / _MIB:g} MiB; {verdict(ours / raw, 0.85)}",
            ),
            _streams_row(scenario, loop, ours, raw, streams, unit="MiB/s"),
        ]
    return results


# -- ping-pong ---------------------------------------------------------------


async def _ping_jfsocket(rounds: int, timeout: float) -> float:
    """Seconds for *rounds* round trips, driven by async RECEIVED callbacks on both sides."""
    what = "ping-pong, jfsocket"
    request = bytes(range(PING_SIZE))
    done = asyncio.Event()
    volley = Volley(rounds, request, done.set)
    async with (
        TcpServer(
            LOOPBACK, 0, {EventTypes.RECEIVED: echo}, encoding=None, recv_buffer=PING_RECV
        ) as server,
        TcpClient(
            None, {EventTypes.RECEIVED: volley.on_received}, encoding=None, recv_buffer=PING_RECV
        ) as client,
    ):
        await within(client.connect(LOOPBACK, server.host[1]), timeout, f"{what}: connecting")

        async def volleys() -> float:
            start = perf_counter()
            await client.send(request)
            await done.wait()
            return perf_counter() - start

        return await within(volleys(), timeout, f"{what}: {rounds} round trips")


async def _ping_raw(rounds: int, timeout: float) -> float:
    """The same with raw protocols: ``data_received`` writes the echo, or the next request."""
    what = "ping-pong, raw"
    request = bytes(range(PING_SIZE))
    async with _raw_pair(
        functools.partial(_Volleyer, rounds, request), _Echo, timeout, what
    ) as client:
        start = perf_counter()
        client.transport.write(request)
        await within(asyncio.shield(client.done), timeout, f"{what}: {rounds} round trips")
        return perf_counter() - start


_PING: Final = {"jfsocket": _ping_jfsocket, "raw": _ping_raw, "streams": ping_streams}


def _ping_pong(sizes: Sizes, n: int, timeout: float, loops: Sequence[str]) -> list[Result]:
    rounds = max(1, sizes.round_trips)

    def rate(loop: str, kind: str) -> tuple[float]:
        seconds = _run(loop, functools.partial(_PING[kind], rounds, timeout), timeout + _TEARDOWN)
        return (rounds / seconds,)

    medians = _medians(
        n,
        [
            (f"ping-pong, {kind} on {loop}", functools.partial(rate, loop, kind))
            for loop in loops
            for kind in _PING
        ],
    )
    scenario = f"ping-pong, {PING_SIZE} B"
    results: list[Result] = []
    for loop in loops:
        ours, raw, streams = (medians[f"ping-pong, {kind} on {loop}"][0] for kind in _PING)
        results += [
            Result(
                scenario=f"{scenario}{_suffix(loop)}",
                jfsocket=ours,
                baseline=raw,
                unit="round trips/s",
                baseline_name=_raw_name(loop),
                note=f"{rounds} round trips; {verdict(ours / raw, 0.8)}",
            ),
            _streams_row(scenario, loop, ours, raw, streams, unit="round trips/s"),
        ]
    return results


# -- connections -------------------------------------------------------------
#
# Each run starts a fresh interpreter (``python -m tests.bench.bench_asyncio
# --hold-connections KIND LOOP COUNT TIMEOUT``) holding the server.  It prints
# ``ready PORT``, then ``connected`` once it has COUNT connections, then
# ``rss BYTES`` (its VmRSS growth since ``ready``, after a collection), then
# stops its server and exits; meanwhile, ``have N`` each time it has HOLD_STEP
# more.  This process opens the clients, sequentially, staying at most two
# steps ahead of the server's accepts: a full accept queue would drop SYNs,
# and a dropped SYN costs its connect a one-second retransmission.


async def _serve_jfsocket(count: int, timeout: float) -> None:
    """A TcpServer (default options) holding *count* connections."""
    what = f"connections, jfsocket: {count} held"
    done = asyncio.Event()
    held = Held(count, done.set)
    async with TcpServer(
        LOOPBACK, 0, {EventTypes.CONNECTED: held.arrive}, backlog=BACKLOG
    ) as server:
        await report_held(server.host[1], lambda: within(done.wait(), timeout, what))


async def _serve_raw(count: int, timeout: float) -> None:
    """``loop.create_server`` with a protocol per connection, ignoring what it reads."""
    what = f"connections, raw: {count} held"
    done = asyncio.Event()
    held = Held(count, done.set)
    live: set[_Tracked] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        functools.partial(_Holder, held, live), LOOPBACK, 0, backlog=BACKLOG
    )
    try:
        port = server.sockets[0].getsockname()[1]
        await report_held(port, lambda: within(done.wait(), timeout, what))
    finally:
        server.close()
        closing = list(live)
        for protocol in closing:
            protocol.transport.close()
        await within(asyncio.gather(*(p.lost for p in closing)), timeout, f"{what}: closing")
        await within(server.wait_closed(), timeout, f"{what}: server closing")


def _hold_child_main(argv: Sequence[str]) -> None:
    """The child: hold the connections with the server of the kind given, on the loop given."""
    kind, loop, count, timeout = argv[0], argv[1], int(argv[2]), float(argv[3])
    problem = fd_room(count + _FD_MARGIN)
    if problem is not None:
        raise SystemExit(problem)
    serve = _serve_jfsocket if kind == "jfsocket" else _serve_raw
    _run(loop, functools.partial(serve, count, timeout), timeout + _TEARDOWN)


class _Lines:
    """Lines read from the child's stdout."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        #: The latest ``have N``.
        self.have = 0

    async def expect(self, word: str) -> str:
        """The rest of the next line that starts with *word*.

        ``have N`` lines on the way are skipped, their count kept in :attr:`have`.
        """
        while True:
            line = (await self._stream.readline()).decode().strip()
            if not line:
                raise EOFError(f"the server process exited before saying {word!r}")
            head, _, rest = line.partition(" ")
            if head == "have":
                self.have = int(rest)
            if head == word:
                return rest
            if head != "have":
                raise RuntimeError(f"the server process said {line!r}, expected {word!r}")


async def _close_all(protocols: Sequence[_Tracked], timeout: float) -> None:
    """Close the raw clients, and wait until they are gone."""
    for protocol in protocols:
        protocol.transport.close()
    await within(
        asyncio.gather(*(p.lost for p in protocols)), timeout, "connections, raw clients closing"
    )


async def _clients(
    kind: str, lines: _Lines, count: int, timeout: float, stack: contextlib.AsyncExitStack
) -> tuple[float, int]:
    """Connect *count* clients of *kind*, closed by *stack*; (seconds, the child's RSS growth)."""
    port = int(await lines.expect("ready"))
    loop = asyncio.get_running_loop()
    raw: list[_Tracked] = []
    stack.push_async_callback(_close_all, raw, timeout)
    start = perf_counter()
    for i in range(count):
        while lines.have < i - 2 * HOLD_STEP:
            await lines.expect("have")
        if kind == "jfsocket":
            client = await stack.enter_async_context(TcpClient())
            await client.connect(LOOPBACK, port)
        else:
            raw.append((await loop.create_connection(_Tracked, LOOPBACK, port))[1])
    await lines.expect("connected")
    elapsed = perf_counter() - start
    return elapsed, int(await lines.expect("rss"))


async def _hold(kind: str, loop: str, count: int, timeout: float) -> tuple[float, float]:
    """Seconds until a fresh *kind* server process has *count* clients; its RSS bytes each."""
    what = f"connections, {kind} on {loop}"
    command = [sys.executable, "-m", __name__, _CHILD_FLAG, kind, loop, str(count), str(timeout)]
    with tempfile.TemporaryFile() as errors:

        def failed(why: str) -> RuntimeError:
            errors.seek(0)
            tail = errors.read()[-2000:].decode(errors="replace")
            return RuntimeError(f"{what}: {why} (status {process.returncode}):\n{tail}")

        process = await asyncio.create_subprocess_exec(
            *command, cwd=_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            assert process.stdout is not None
            lines = _Lines(process.stdout)
            async with contextlib.AsyncExitStack() as stack:
                elapsed, grown = await within(
                    _clients(kind, lines, count, timeout, stack),
                    timeout,
                    f"{what}: {count} connections",
                )
            await within(process.stdout.read(), timeout, f"{what}: the server process ending")
            await within(process.wait(), timeout, f"{what}: the server process ending")
        except EOFError as exc:
            with contextlib.suppress(StalledError):
                await within(process.wait(), 10, what)
            raise failed(str(exc)) from None
        finally:
            if process.returncode is None:  # it failed, or we did: end it
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise failed("the server process failed")
    return elapsed, max(grown, _PAGE) / count


def _connections(sizes: Sizes, n: int, timeout: float, loops: Sequence[str]) -> list[Result]:
    count = max(1, sizes.connections)
    problem = fd_room(count + _FD_MARGIN)
    if problem is not None:
        print(f"bench_asyncio: connections skipped: {problem}", file=sys.stderr, flush=True)
        return []
    kinds = ("jfsocket", "raw")

    def hold(loop: str, kind: str) -> tuple[float, float]:
        return _run(
            loop,
            functools.partial(_hold, kind, loop, count, timeout),
            timeout + 2 * _TEARDOWN,
        )

    medians = _medians(
        n,
        [
            (f"connections, {kind} on {loop}", functools.partial(hold, loop, kind))
            for loop in loops
            for kind in kinds
        ],
        warm_up=False,  # each run is a fresh server process anyway
    )
    results: list[Result] = []
    for loop in loops:
        (ours, our_memory), (raw, raw_memory) = (
            medians[f"connections, {kind} on {loop}"] for kind in kinds
        )
        results += [
            Result(
                scenario=f"connect {count} clients{_suffix(loop)}",
                jfsocket=ours * 1e3,
                baseline=raw * 1e3,
                unit="ms",
                baseline_name=_raw_name(loop),
                higher_is_better=False,
                note=f"sequential connects until the server has all; backlog {BACKLOG}",
            ),
            Result(
                scenario=f"memory, {count} held{_suffix(loop)}",
                jfsocket=our_memory / 1024,
                baseline=raw_memory / 1024,
                unit="KiB/conn",
                baseline_name=_raw_name(loop),
                higher_is_better=False,
                note="server process VmRSS growth / connections (one page at least)",
            ),
        ]
    return results


# -- multicast ---------------------------------------------------------------


def _raw_receiver() -> socket.socket:
    """A receiving socket as the baseline uses it: bound, joined on 127.0.0.1, RCVBUF set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind(("0.0.0.0", 0))
        membership = socket.inet_aton(GROUP) + socket.inet_aton(LOOPBACK)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _window(rcvbuf: int) -> int:
    """How far the sender may run ahead: WINDOW, less if the receive buffer is small."""
    return max(BURST, min(WINDOW, rcvbuf // DATAGRAM_COST - BURST))


def _waiter(gauge: Gauge) -> Callable[[int, float], Awaitable[bool]]:
    """Waits until *gauge* counted a number of datagrams, at most some seconds."""

    async def wait_for(count: int, seconds: float) -> bool:
        if gauge.count < count:
            arrived = asyncio.Event()
            gauge.arm(count, arrived.set)
            timer = asyncio.get_running_loop().call_later(seconds, arrived.set)
            await arrived.wait()
            timer.cancel()
            gauge.disarm()
        return gauge.count >= count

    return wait_for


async def _blast(
    port: int, total: int, window: int, gauge: Gauge, what: str, timeout: float
) -> tuple[float, float]:
    """Send *total* datagrams, paced; (received/s, fraction lost).

    After each burst the sender waits (at most PACE_WAIT) until the receiver is
    within *window* datagrams; a lag it gave up on is taken as lost, so losses do
    not make every later burst wait.
    """
    payload = bytes(DATAGRAM)
    target = (GROUP, port)
    wait_for = _waiter(gauge)
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


async def _multicast_jfsocket(total: int, timeout: float) -> tuple[float, float]:
    """A CastReceiver's RECEIVED callbacks counting the datagrams."""
    what = "multicast, jfsocket"
    gauge = Gauge()
    receiver = CastReceiver(
        ("0.0.0.0", 0),
        {EventTypes.RECEIVED: gauge.on_received},
        interface=LOOPBACK,
        encoding=None,
        recv_buffer=DATAGRAM_RECV,
    )
    receiver.joinGroup(GROUP)
    async with receiver:
        # Benchmark only: the private socket, to give it the baseline's SO_RCVBUF.
        sock = receiver._sock
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        window = _window(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        return await within(
            _blast(receiver.host[1], total, window, gauge, what, timeout),
            timeout,
            f"{what}: {total} datagrams",
        )


async def _multicast_raw(total: int, timeout: float) -> tuple[float, float]:
    """A ``DatagramProtocol`` counting the datagrams."""
    what = "multicast, raw"
    gauge = Gauge()
    loop = asyncio.get_running_loop()
    sock = _raw_receiver()
    try:
        window = _window(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        port = sock.getsockname()[1]
        transport, protocol = await loop.create_datagram_endpoint(
            functools.partial(_GaugeProtocol, gauge), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    try:
        return await within(
            _blast(port, total, window, gauge, what, timeout), timeout, f"{what}: {total} datagrams"
        )
    finally:
        transport.close()
        await within(asyncio.shield(protocol.lost), timeout, f"{what}: closing")


def _multicast(sizes: Sizes, n: int, timeout: float, loops: Sequence[str]) -> list[Result]:
    total = max(1, sizes.datagrams)
    kinds = {"jfsocket": _multicast_jfsocket, "raw": _multicast_raw}

    def run(loop: str, kind: str) -> tuple[float, float]:
        return _run(loop, functools.partial(kinds[kind], total, timeout), timeout + _TEARDOWN)

    medians = _medians(
        n,
        [
            (f"multicast, {kind} on {loop}", functools.partial(run, loop, kind))
            for loop in loops
            for kind in kinds
        ],
    )
    results: list[Result] = []
    for loop in loops:
        (ours, our_loss), (raw, raw_loss) = (
            medians[f"multicast, {kind} on {loop}"] for kind in kinds
        )
        results.append(
            Result(
                scenario=f"multicast, {DATAGRAM} B datagrams{_suffix(loop)}",
                jfsocket=ours,
                baseline=raw,
                unit="datagrams/s",
                baseline_name=f"raw {loop} DatagramProtocol",
                note=(
                    f"{total} sent, loss {our_loss:.2%} / {raw_loss:.2%}; "
                    f"{verdict(ours / raw, 0.7)}"
                ),
            )
        )
    return results


_RUNNERS: Final[dict[str, Callable[[Sizes, int, float, Sequence[str]], list[Result]]]] = {
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
    loops: Collection[str] | None = None,
) -> list[Result]:
    """Rows for the *scenarios* (default all, in :data:`SCENARIOS` order).

    *sizes* defaults to :data:`FULL` (:data:`QUICK` if *quick*); *runs* per
    median to 5 (3 if *quick*); *timeout* is each wait's limit in seconds.
    *loops* (default all of :data:`LOOPS`) picks the event loops; uvloop's rows
    are left out, with a note on stderr, where it cannot be imported.
    """
    size = sizes if sizes is not None else (QUICK if quick else FULL)
    n = runs if runs is not None else (3 if quick else 5)
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    chosen = SCENARIOS if scenarios is None else tuple(scenarios)
    unknown = [name for name in chosen if name not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; available: {', '.join(SCENARIOS)}")
    wanted = LOOPS if loops is None else tuple(loops)
    strange = [loop for loop in wanted if loop not in LOOPS]
    if strange:
        raise ValueError(f"unknown loops {strange}; available: {', '.join(LOOPS)}")
    usable = [loop for loop in LOOPS if loop in wanted]
    if "uvloop" in usable and _uvloop() is None:
        print("bench_asyncio: uvloop rows skipped: uvloop cannot be imported", file=sys.stderr)
        usable.remove("uvloop")
    results: list[Result] = []
    if not usable:
        return results
    for name in SCENARIOS:
        if name in chosen:
            results += _RUNNERS[name](size, n, limit, usable)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == [_CHILD_FLAG]:
        _hold_child_main(sys.argv[2:])
    else:
        from .common import print_table

        print_table(main("--quick" in sys.argv[1:]))
