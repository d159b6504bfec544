"""The core's per-message cost, with no sockets, and the threaded path's, in Python calls.

Two parts, each beside raw code doing the same work in the same run:

* **pump** (no sockets, no threads): two :class:`jfsocket.core.Connection`
  objects A and B, "connected" by plain calls, each with a
  :class:`Dispatcher` and a :class:`CallbackRegistry`, driven the way
  ``bindings/threaded.py`` drives them (``TcpClient.send``, one turn of
  ``_read_loop``, ``Dispatcher.run_all``), minus its locks.  One message is a
  round trip: ``A.send`` -> bytes -> B's RECEIVED callback, which replies with
  ``B.send`` -> bytes -> A's RECEIVED callback, which counts it; every send is
  settled (``sent(ticket)``) and its events dispatched.  That is two *hops*,
  each receive -> dispatch -> callback -> send -> settle.  The "wire" is a
  deque per direction (``append`` stands for ``sendall``, ``popleft`` for
  ``recv``: one C call each, as on a socket).  The baseline is the same loop as
  raw code writes it: bytes in, a direct call of a handler per message, bytes
  out.  Rows per variant: µs per message (best of several runs, after a
  warm-up) and Python ``'call'`` / C ``'c_call'`` events per message counted
  with :func:`sys.setprofile` (deterministic: the counts of K and 2K messages,
  differenced, divided by K);
* **threaded ping-pong**: a :mod:`jfsocket.bindings.threaded` ``TcpServer``
  echoing and a ``TcpClient`` on 127.0.0.1, callback-driven on both sides (each
  whole echo sends the next request), against raw ``socket`` code (an echo
  thread, a client doing ``sendall``/``recv``; each calls a handler function per
  message, as the pump's baseline does).  Events of every thread are counted
  (:func:`threading.setprofile` before any thread starts, plus
  :func:`sys.setprofile` around the main thread's own part), between two
  moments when every other thread is blocked in ``recv``/``accept``.

Variants are bytes (``encoding=None``) unless named: raw framing, line framing,
raw with a SENDED callback bound on both sides, and raw with ``str``
(utf-8, the default encoding).  Without a SENDED callback, SENDED is settled and
pushed as a typical app sees it: nothing listens.
"""

from __future__ import annotations

import contextlib
import gc
import math
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Final

import attrs
from jfsocket.bindings.threaded import TcpClient, TcpServer
from jfsocket.core import (
    CallbackRegistry,
    Connection,
    ConnectionOptions,
    Data,
    Dispatcher,
    EventTypes,
    Role,
)

from .common import Result
from .plumbing import StalledError, check

__all__ = [
    "FULL",
    "PUMP_VARIANTS",
    "QUICK",
    "PumpVariant",
    "Sizes",
    "count_calls",
    "main",
    "pump_results",
    "threaded_results",
]

LOOPBACK: Final = "127.0.0.1"
MESSAGE_SIZE: Final = 64
PING_RECV: Final = 1024
DEFAULT_TIMEOUT: Final = 30.0
_A_ADDR: Final = (LOOPBACK, 40001)  # made up: the pump has no sockets
_B_ADDR: Final = (LOOPBACK, 40002)
# Where a thread waits for the peer: the last profile event of a quiet thread.
_BLOCKING: Final = frozenset({"recv", "_accept"})
_QUIET_POLL: Final = 0.0005

RunN = Callable[[int], None]


@attrs.frozen(kw_only=True)
class Sizes:
    """How much work each part does."""

    #: Timed runs per contender (the best counts), and messages per run.
    runs: int
    messages: int
    #: Untimed messages first, so lazy set-up is not measured.
    warmup: int
    #: K: messages counted under the profiler (K and 2K are run).
    profiled: int
    #: Round trips counted on the threaded path.
    round_trips: int


FULL: Final = Sizes(runs=7, messages=5_000, warmup=500, profiled=1_000, round_trips=2_000)
QUICK: Final = Sizes(runs=5, messages=800, warmup=200, profiled=100, round_trips=200)


@attrs.frozen
class PumpVariant:
    """One pump configuration."""

    name: str
    framing: str | None = None
    encoding: str | None = None
    sended_callback: bool = False


PUMP_VARIANTS: Final = (
    PumpVariant("raw 64 B"),
    PumpVariant("line 64 B", framing="line"),
    PumpVariant("raw 64 B + SENDED cb", sended_callback=True),
    PumpVariant("raw 64 B str (utf-8)", encoding="utf-8"),
)


# -- counting and timing ----------------------------------------------------------


def count_calls(run: RunN, k: int) -> tuple[float, float]:
    """Python ``'call'`` and C ``'c_call'`` profile events per message of *run*.

    Runs K and 2K messages under :func:`sys.setprofile` and divides the
    difference by K, so the fixed cost around the loop (the call of *run*,
    its checks, removing the profiler) cancels out.
    """
    counts = {"call": 0, "c_call": 0}

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        if event in counts:
            counts[event] += 1

    def measure(n: int) -> tuple[int, int]:
        counts["call"] = counts["c_call"] = 0
        was_enabled = gc.isenabled()
        gc.disable()  # a collection must not land in one count only
        sys.setprofile(profile)
        try:
            run(n)
        finally:
            sys.setprofile(None)
            if was_enabled:
                gc.enable()
        return counts["call"], counts["c_call"]

    calls_k, c_calls_k = measure(k)
    calls_2k, c_calls_2k = measure(2 * k)
    return (calls_2k - calls_k) / k, (c_calls_2k - c_calls_k) / k


def _best_us(runs: Sequence[RunN], sizes: Sizes) -> list[float]:
    """µs per message of each of *runs*: the best of ``sizes.runs`` timed runs each.

    The contenders take turns, so a slow spell of the machine hits all alike;
    as in ``timeit``, a collection runs first and the collector is off meanwhile.
    """
    for run in runs:
        run(sizes.warmup)
    best = [math.inf] * len(runs)
    was_enabled = gc.isenabled()
    for _ in range(sizes.runs):
        for i, run in enumerate(runs):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter_ns()
                run(sizes.messages)
                elapsed = time.perf_counter_ns() - start
            finally:
                if was_enabled:
                    gc.enable()
            best[i] = min(best[i], elapsed)
    return [ns / sizes.messages / 1000 for ns in best]


# -- the pump ---------------------------------------------------------------------


def _drain(queue: Dispatcher) -> None:
    """``Dispatcher.run_all`` as the threaded binding calls it, minus its lock."""
    queue.run_all(threading.get_ident())


class _Side:
    """One end of the pump: what a threaded ``TcpClient`` does around the core.

    This and :func:`_drain` are the only places that know how a binding drives
    the core: when that changes, they follow it (the loop in
    :func:`_jfsocket_pump` inlines one turn of a reader's loop).
    """

    __slots__ = ("conn", "queue", "registry", "wire")

    def __init__(self, options: ConnectionOptions, wire: deque[bytes]) -> None:
        self.registry = CallbackRegistry(Role.CLIENT)
        self.queue = Dispatcher(self.registry)
        self.conn = Connection(self, options, self.queue)
        #: Bytes this side writes (the peer reads them).
        self.wire = wire

    def connect(self, host: tuple[str, int], remote: tuple[str, int]) -> None:
        """``_adopt``: CONNECTED (no callback for it here)."""
        if self.queue.push(self.conn.connection_made(host, remote)):
            _drain(self.queue)

    def send(self, data: Data) -> None:
        """``TcpClient.send``: frame, write, settle, dispatch SENDED."""
        conn = self.conn
        ticket, payload = conn.send(data)
        self.wire.append(payload)  # sendall
        if conn.settle(ticket):
            _drain(self.queue)


def _jfsocket_pump(variant: PumpVariant) -> RunN:
    """A connected pair; the returned function pumps *n* messages and checks them."""
    options = ConnectionOptions(encoding=variant.encoding, framing=variant.framing)
    a_to_b: deque[bytes] = deque()
    b_to_a: deque[bytes] = deque()
    a = _Side(options, a_to_b)
    b = _Side(options.copy(), b_to_a)
    a.connect(_A_ADDR, _B_ADDR)
    b.connect(_B_ADDR, _A_ADDR)
    got = sent = 0

    def echo(side: _Side, data: Data) -> None:
        side.send(data)

    def count(_side: _Side, _data: Data) -> None:
        nonlocal got
        got += 1

    def count_sent(_side: _Side, _data: Data) -> None:
        nonlocal sent
        sent += 1

    b.registry.bind(EventTypes.RECEIVED, echo)
    a.registry.bind(EventTypes.RECEIVED, count)
    if variant.sended_callback:
        a.registry.bind(EventTypes.SENDED, count_sent)
        b.registry.bind(EventTypes.SENDED, count_sent)
    message: Data = "x" * MESSAGE_SIZE if variant.encoding else b"x" * MESSAGE_SIZE

    def run(n: int) -> None:
        got_before, sent_before = got, sent
        a_send = a.send
        a_conn, a_queue, b_conn, b_queue = a.conn, a.queue, b.conn, b.queue
        read_ab, read_ba = a_to_b.popleft, b_to_a.popleft
        me = threading.get_ident
        for _ in range(n):
            a_send(message)
            # One turn of each side's _read_loop.
            if b_conn.feed(read_ab()):
                b_queue.run_all(me())
            if a_conn.feed(read_ba()):
                a_queue.run_all(me())
        check(f"pump {variant.name}, jfsocket", got - got_before, n)
        if variant.sended_callback:
            check(f"pump {variant.name}, jfsocket SENDED", sent - sent_before, 2 * n)

    return run


def _raw_pump(variant: PumpVariant) -> RunN:
    """The same round trips as raw code writes them; returns the pump like
    :func:`_jfsocket_pump`."""
    a_to_b: deque[bytes] = deque()
    b_to_a: deque[bytes] = deque()
    write_ab, write_ba = a_to_b.append, b_to_a.append  # sendall
    read_ab, read_ba = a_to_b.popleft, b_to_a.popleft  # recv
    got = sent = 0

    def count(_data: object) -> None:
        nonlocal got
        got += 1

    def count_sent(_data: object) -> None:
        nonlocal sent
        sent += 1

    def echo(data: bytes) -> None:
        write_ba(data)

    def echo_and_count(data: bytes) -> None:
        write_ba(data)
        count_sent(data)

    def echo_line(line: bytes) -> None:
        write_ba(line + b"\n")

    def echo_text(text: str) -> None:
        write_ba(text.encode("utf-8", "surrogateescape"))

    message = b"x" * MESSAGE_SIZE
    text = "x" * MESSAGE_SIZE

    def run_raw(n: int) -> None:
        for _ in range(n):
            write_ab(message)
            echo(read_ab())
            count(read_ba())

    def run_sended(n: int) -> None:
        for _ in range(n):
            write_ab(message)
            count_sent(message)
            echo_and_count(read_ab())
            count(read_ba())

    def run_line(n: int) -> None:
        pending_b = pending_a = b""
        for _ in range(n):
            write_ab(message + b"\n")
            *lines, pending_b = (pending_b + read_ab()).split(b"\n")
            for line in lines:
                echo_line(line)
            *lines, pending_a = (pending_a + read_ba()).split(b"\n")
            for line in lines:
                count(line)

    def run_text(n: int) -> None:
        for _ in range(n):
            write_ab(text.encode("utf-8", "surrogateescape"))
            echo_text(read_ab().decode("utf-8", "surrogateescape"))
            count(read_ba().decode("utf-8", "surrogateescape"))

    if variant.sended_callback:
        loop = run_sended
    elif variant.framing == "line":
        loop = run_line
    elif variant.encoding:
        loop = run_text
    else:
        loop = run_raw

    def run(n: int) -> None:
        got_before, sent_before = got, sent
        loop(n)
        check(f"pump {variant.name}, raw", got - got_before, n)
        if variant.sended_callback:
            check(f"pump {variant.name}, raw SENDED", sent - sent_before, 2 * n)

    return run


def pump_results(quick: bool, sizes: Sizes | None = None) -> list[Result]:
    """The pump rows (three per variant); opens no socket and starts no thread."""
    sizes = sizes if sizes is not None else QUICK if quick else FULL
    results = []
    for variant in PUMP_VARIANTS:
        ours, theirs = _jfsocket_pump(variant), _raw_pump(variant)
        us_ours, us_theirs = _best_us([ours, theirs], sizes)
        (calls_ours, c_ours), (calls_theirs, c_theirs) = (
            count_calls(ours, sizes.profiled),
            count_calls(theirs, sizes.profiled),
        )
        where, k = "no sockets; msg = A→B→A, 2 hops", sizes.profiled
        results += [
            Result(
                scenario=f"pump {variant.name}: time",
                jfsocket=us_ours,
                baseline=us_theirs,
                unit="µs/msg",
                baseline_name="raw code, no core",
                higher_is_better=False,
                note=f"{where}; best of {sizes.runs}×{sizes.messages}; {us_ours / 2:.2f}/hop",
            ),
            Result(
                scenario=f"pump {variant.name}: Python calls",
                jfsocket=calls_ours,
                baseline=calls_theirs,
                unit="calls/msg",
                baseline_name="raw code, no core",
                higher_is_better=False,
                note=f"{where}; 'call' events, (2K−K)/K, K={k}; {calls_ours / 2:.4g}/hop",
            ),
            Result(
                scenario=f"pump {variant.name}: C calls",
                jfsocket=c_ours,
                baseline=c_theirs,
                unit="c_calls/msg",
                baseline_name="raw code, no core",
                higher_is_better=False,
                note=f"{where}; 'c_call' events, as above; {c_ours / 2:.4g}/hop",
            ),
        ]
    return results


# -- the threaded path ----------------------------------------------------------------


class _Record:
    """One thread's counts, and its latest event (written by that thread only)."""

    __slots__ = ("arg", "c_calls", "calls", "event")

    def __init__(self) -> None:
        self.calls = 0
        self.c_calls = 0
        self.event = ""
        self.arg: object = None


class _ThreadCounter:
    """Profile events of every thread, each thread counting into its own record.

    Only its own thread writes a record, so no lock is needed; its latest event
    tells whether the thread is blocked waiting for the peer.
    """

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[int, _Record] = {}

    def profile(self, _frame: FrameType, event: str, arg: object) -> None:
        """The profile function (``sys.setprofile``/``threading.setprofile``)."""
        ident = threading.get_ident()
        record = self._records.get(ident)
        if record is None:
            record = self._records[ident] = _Record()
        if event == "call":
            record.calls += 1
        elif event == "c_call":
            record.c_calls += 1
        record.event = event
        record.arg = arg

    def totals(self) -> tuple[int, int]:
        """Calls and C calls of every thread so far."""
        records = list(self._records.values())
        return sum(r.calls for r in records), sum(r.c_calls for r in records)

    def wait_quiet(self, timeout: float) -> None:
        """Wait until every thread but this one is blocked in ``recv``/``accept``."""
        me = threading.get_ident()
        deadline = time.monotonic() + timeout
        while True:
            if all(
                record.event == "c_call" and getattr(record.arg, "__name__", None) in _BLOCKING
                for ident, record in list(self._records.items())
                if ident != me
            ):
                return
            if time.monotonic() > deadline:
                raise StalledError(f"threads still busy after {timeout:g} s")
            time.sleep(_QUIET_POLL)  # polling a condition, bounded by the deadline


@contextlib.contextmanager
def _profiling_new_threads(counter: _ThreadCounter) -> Iterator[None]:
    """Threads started inside the block run under *counter*."""
    threading.setprofile(counter.profile)
    try:
        yield
    finally:
        threading.setprofile(None)


class _Volley:
    """The client's RECEIVED callback: each whole echo sends the next request."""

    __slots__ = ("_expected", "_got", "_left", "_request", "done")

    def __init__(self, rounds: int, request: bytes) -> None:
        self._request = request
        self._left = rounds
        self._got = 0
        self._expected = len(request)
        self.done = threading.Event()

    def on_received(self, client: TcpClient, data: bytes) -> None:
        """Count bytes, not callbacks: the stream may cut an echo in two."""
        self._got += len(data)
        if self._got < self._expected:
            return
        self._left -= 1
        if self._left <= 0:
            self.done.set()
            return
        self._expected += len(self._request)
        client.send(self._request)


def _echo(client: TcpClient, data: bytes) -> None:
    """The server's RECEIVED callback."""
    client.send(data)


Volley = Callable[[int], None]


def _per_round_trip(
    counter: _ThreadCounter, volley: Volley, rounds: int, timeout: float
) -> tuple[float, float]:
    """Calls and C calls per round trip, every thread: the counts of N and 2N
    round trips, each between two quiet moments, differenced and divided by N,
    so what happens once per volley (its first request, its end) cancels out."""

    def measure(n: int) -> tuple[int, int]:
        counter.wait_quiet(timeout)
        calls_before, c_before = counter.totals()
        volley(n)
        counter.wait_quiet(timeout)
        calls_after, c_after = counter.totals()
        return calls_after - calls_before, c_after - c_before

    calls_n, c_n = measure(rounds)
    calls_2n, c_2n = measure(2 * rounds)
    return (calls_2n - calls_n) / rounds, (c_2n - c_n) / rounds


def _jfsocket_ping(rounds: int, warmup: int, timeout: float) -> tuple[float, float]:
    """Calls and C calls per round trip of threaded jfsocket, all threads."""
    counter = _ThreadCounter()
    request = bytes(range(MESSAGE_SIZE))
    with _profiling_new_threads(counter), contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TcpServer(LOOPBACK, 0, {EventTypes.RECEIVED: _echo}, encoding=None)
        )
        server.start()
        client = stack.enter_context(TcpClient(None, encoding=None, recv_buffer=PING_RECV))
        client.connect(LOOPBACK, server.host[1], timeout=timeout)

        def volley(n: int) -> None:
            player = _Volley(n, request)
            client.bind(EventTypes.RECEIVED, player.on_received)
            # The main thread's part, the first request, is counted too.
            sys.setprofile(counter.profile)
            try:
                client.send(request)
            finally:
                sys.setprofile(None)
            if not player.done.wait(timeout):
                raise StalledError(f"threaded ping-pong: {n} round trips not done in {timeout} s")

        volley(warmup)
        return _per_round_trip(counter, volley, rounds, timeout)


def _raw_ping(rounds: int, warmup: int, timeout: float) -> tuple[float, float]:
    """The same with raw sockets: an echo thread, a ``sendall``/``recv`` client."""
    counter = _ThreadCounter()
    request = bytes(range(MESSAGE_SIZE))
    size = len(request)
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0)))
        listener.settimeout(timeout)
        client = stack.enter_context(
            socket.create_connection(listener.getsockname()[:2], timeout=timeout)
        )
        conn = stack.enter_context(listener.accept()[0])
        conn.settimeout(timeout)
        for sock in (client, conn):  # as jfsocket sets it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def echo() -> None:
            recv, sendall = conn.recv, conn.sendall

            def handle(data: bytes) -> None:
                sendall(data)

            with contextlib.suppress(OSError):
                while data := recv(PING_RECV):
                    handle(data)

        with _profiling_new_threads(counter):
            thread = threading.Thread(target=echo, name="bench_core raw echo", daemon=True)
            thread.start()
        stack.callback(thread.join, timeout)
        stack.callback(_shut_write, client)  # the echo thread sees EOF and ends
        got = 0

        def on_reply(data: bytes) -> None:
            nonlocal got
            got += len(data)

        def volley(n: int) -> None:
            sendall, recv = client.sendall, client.recv
            expected = got + n * size
            sys.setprofile(counter.profile)
            try:
                for _ in range(n):
                    sendall(request)
                    target = got + size
                    while got < target:
                        data = recv(PING_RECV)
                        if not data:
                            raise RuntimeError("raw ping-pong: the echo thread closed early")
                        on_reply(data)
            finally:
                sys.setprofile(None)
            check("raw ping-pong bytes", got, expected)

        volley(warmup)
        return _per_round_trip(counter, volley, rounds, timeout)


def _shut_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def threaded_results(
    quick: bool, sizes: Sizes | None = None, timeout: float = DEFAULT_TIMEOUT
) -> list[Result]:
    """The threaded ping-pong rows: Python and C calls per round trip, all threads."""
    sizes = sizes if sizes is not None else QUICK if quick else FULL
    rounds, warmup = sizes.round_trips, max(10, sizes.round_trips // 10)
    calls_ours, c_ours = _jfsocket_ping(rounds, warmup, timeout)
    calls_theirs, c_theirs = _raw_ping(rounds, warmup, timeout)
    where = f"binding + core, all threads; rt = request + echo, 2 hops; (2N−N)/N, N={rounds}"
    baseline = "raw socket threads"
    return [
        Result(
            scenario=f"threaded ping-pong {MESSAGE_SIZE} B: Python calls",
            jfsocket=calls_ours,
            baseline=calls_theirs,
            unit="calls/rt",
            baseline_name=baseline,
            higher_is_better=False,
            note=(
                f"{where}; 'call' events; {calls_ours / 2:.4g}/hop; raw calls a handler per message"
            ),
        ),
        Result(
            scenario=f"threaded ping-pong {MESSAGE_SIZE} B: C calls",
            jfsocket=c_ours,
            baseline=c_theirs,
            unit="c_calls/rt",
            baseline_name=baseline,
            higher_is_better=False,
            note=f"{where}; 'c_call' events; {c_ours / 2:.4g}/hop",
        ),
    ]


def main(quick: bool, sizes: Sizes | None = None) -> list[Result]:
    """Every row: the pump's, then the threaded path's."""
    return pump_results(quick, sizes) + threaded_results(quick, sizes)


if __name__ == "__main__":  # pragma: no cover - use ``python -m tests.bench.run core``
    from .common import print_table

    print_table(main(quick="--quick" in sys.argv))
