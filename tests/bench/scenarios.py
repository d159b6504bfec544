"""The binding benchmarks' scenarios, one table row each, and who runs them.

Every scenario runs on every runtime, for jfsocket and for the raw code of the
same runtime (and extra baselines where a row names them), both sides of it
in child processes of their own (:mod:`tests.bench.peers`): a *server* side,
which listens (for multicast: the receiver) and starts first, and a *client*
side (the sender).  Both sides are the contender's code: jfsocket against
jfsocket, raw against raw.  The code of each side, per runtime, is in
``sides_<runtime>.py`` (jfsocket's async sides once, in ``sides_async.py``).

What the sides do, the same way for every contender:

* ping-pong: 64-byte request, echoed back; the next request leaves once the
  whole response is in (callbacks on both sides for jfsocket);
* multicast: 200-byte datagrams to a group in 239.255.0.0/16, TTL 0,
  interface 127.0.0.1; the sender sends bursts of 256, then waits (briefly,
  bounded) until the receiver is within its window, 1 024 datagrams or what
  its receive buffer (1 MiB asked for every receiver) holds;
* fan-out: once every client is connected, the server sends each message to
  every client (jfsocket: ``server.send``; raw: a loop over the connections);
* connections: the client side opens the connections one after the other,
  never more than two HOLD_STEPs ahead of the server's accepts, each able to
  receive (jfsocket's ``TcpClient``, raw: a reader thread or task each; raw
  asyncio: a protocol each), and the server holds them, reading;
* bulk: 64 KiB writes, read 64 KiB at a time (256 KiB on asyncio, what its
  transports read at most);
* TLS ping-pong and TLS bulk: the same over TLS, both contenders with the
  same contexts (:mod:`tests.bench.tlsfiles`): raw code is Python's ssl
  sockets (threads), ``trio.SSLStream``, asyncio's ``ssl=`` (Protocol and
  streams).

The bulk writer and the fan-out server keep timing until the other side has
everything, so a writer that buffers pays for its flushing; a side that waits
for the other times from when it is ready (waiting costs no CPU time).  The
children run with the garbage collector on, as applications do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

__all__ = [
    "BACKLOG",
    "CHUNK",
    "DATAGRAM",
    "DATAGRAM_RECV",
    "FANOUT_CLIENTS",
    "FANOUT_SIZE",
    "HOLD_RECV",
    "HOLD_STEP",
    "MEMORY_TARGET",
    "PING_RECV",
    "PING_SIZE",
    "RUNTIMES",
    "SCENARIOS",
    "Contender",
    "Role",
    "Runtime",
    "Scenario",
]

Role = Literal["server", "client"]

PING_SIZE: Final = 64
PING_RECV: Final = 1024
DATAGRAM: Final = 200
DATAGRAM_RECV: Final = 2048
FANOUT_SIZE: Final = 256
FANOUT_CLIENTS: Final = 200
CHUNK: Final = 64 << 10  # bulk write size, and the bulk readers' buffer
HOLD_RECV: Final = 256  # the held connections' reads (jfsocket's default recvBuffer)
HOLD_STEP: Final = 1024  # connecting clients stay within two steps of the server's accepts
BACKLOG: Final = 4096  # every server: the connects come in a burst
MEMORY_TARGET: Final = 1 / 1.5  # memory per idle connection at most 1.5 times the raw code's
_MIB: Final = float(1 << 20)


@attrs.frozen(kw_only=True)
class Scenario:
    """One row of the table: a piece of work, measured from both sides.

    ``count`` events are asked for (``quick`` with ``--quick``): round trips,
    datagrams, messages (each to every fan-out client), connections, writes.
    The work starts at the ``starts`` side's mark and ends at the ``ends``
    side's, whose count of events the rates and CPU times are per.  ``cpus``:
    1, both sides pinned to one CPU (a wake-up costs little, the library's cost
    shows); 2, each side on a CPU of its own.
    """

    key: str
    title: str  # "{count}" and "{clients}" stand for the sizes
    counted: str  # what ``count`` counts, for the notes
    cpus: Literal[1, 2]
    starts: Role
    ends: Role
    event: str
    rate_unit: str
    count: int
    quick: int
    targets: Mapping[str, float]
    rate_scale: float = 1.0  # rate = events * rate_scale / seconds
    lossy: bool = False  # events may be lost (datagrams): the ends side's count is what arrived
    streams: bool = False  # asyncio streams join as an extra baseline
    #: jfsocket / asyncio streams at least: 1.5 on plaintext, where streams pay
    #: for their coroutines; over TLS, whose work both sides share, the row's own.
    streams_target: float = 1.5
    memory: bool = False  # the server side reports its RSS growth per connection
    holds: Literal["one", "count", "clients"] = "one"  # connections each side holds at once
    tls: bool = False  # over TLS: both contenders' sides get the same contexts

    def descriptors(self, count: int, clients: int) -> int:
        """File descriptors each side may need at once."""
        held = {"one": 1, "count": count, "clients": clients}[self.holds]
        return held + 64

    def name(self, count: int, clients: int) -> str:
        """The title, with where the two sides run: ``ping-pong 64 B, one CPU``."""
        placement = "one CPU" if self.cpus == 1 else "two CPUs"
        return f"{self.title.format(count=count, clients=clients)}, {placement}"


def _targets(threaded: float, others: float) -> Mapping[str, float]:
    return {"threaded": threaded, "trio": others, "asyncio": others}


_PING_PONG: Final = Scenario(
    key="ping-pong",
    counted="round trips",
    title=f"ping-pong {PING_SIZE} B",
    cpus=1,
    starts="client",
    ends="client",
    event="round trip",
    rate_unit="round trips/s",
    count=20_000,
    quick=2_000,
    targets=_targets(0.7, 0.8),
    streams=True,
)
_BULK: Final = Scenario(
    key="bulk",
    counted="writes",
    title="bulk 64 KiB writes",
    cpus=2,
    starts="client",
    ends="server",
    event="64 KiB write",
    rate_unit="MiB/s",
    rate_scale=CHUNK / _MIB,
    count=16384,  # 1 GiB: a shorter run is at the mercy of the scheduler
    quick=1024,
    targets=_targets(0.85, 0.85),
)


def _over_tls(
    plain: Scenario,
    targets: Mapping[str, float],
    count: int | None = None,
    quick: int | None = None,
) -> Scenario:
    """*plain* with both contenders over TLS (same contexts), its own targets
    (and sizes, where given)."""
    return attrs.evolve(
        plain,
        key=f"tls-{plain.key}",
        title=f"TLS {plain.title}",
        targets=targets,
        streams_target=targets["asyncio"],
        tls=True,
        count=plain.count if count is None else count,
        quick=plain.quick if quick is None else quick,
    )


SCENARIOS: Final = (
    _PING_PONG,
    Scenario(
        key="multicast",
        counted="datagrams sent",
        title=f"multicast {{count}} × {DATAGRAM} B",
        cpus=1,
        starts="client",
        ends="server",
        event="datagram",
        rate_unit="datagrams/s",
        count=200_000,
        quick=10_000,
        targets=_targets(0.7, 0.8),
        lossy=True,
    ),
    Scenario(
        key="fan-out",
        counted="messages to each client",
        title=f"fan-out {FANOUT_SIZE} B to {{clients}} clients",
        cpus=1,
        starts="server",
        ends="client",
        event="delivery",
        rate_unit="deliveries/s",
        count=200,
        quick=20,
        targets=_targets(0.7, 0.8),
        holds="clients",
    ),
    Scenario(
        key="connections",
        counted="clients",
        title="connects, {count} clients",
        cpus=1,
        starts="client",
        ends="server",
        event="connection",
        rate_unit="connects/s",
        count=5_000,
        quick=500,
        targets=_targets(0.7, 0.7),
        memory=True,
        holds="count",
    ),
    _BULK,
    # The same two over TLS (the targets: 0.7 and 0.85 on every runtime).
    _over_tls(_PING_PONG, _targets(0.7, 0.7)),
    _over_tls(_BULK, _targets(0.85, 0.85), count=8192, quick=512),  # 512 MiB each way
)


@attrs.frozen(kw_only=True)
class Contender:
    """Who does a scenario's work: ``kind`` (jfsocket, raw, streams) on ``loop``."""

    kind: str
    loop: str = ""  # the asyncio runtime's event loop: "asyncio" or "uvloop"
    name: str

    @property
    def label(self) -> str:
        """``raw on uvloop``: how errors name it."""
        return f"{self.kind} on {self.loop}" if self.loop else self.kind


@attrs.frozen(kw_only=True)
class Runtime:
    """A binding, the raw code it is measured against, and its event loops."""

    name: str
    raw: Mapping[str, str]  # loop -> the raw baseline's name
    streams: bool = False  # asyncio streams are an extra baseline (where a scenario asks)

    @property
    def loops(self) -> tuple[str, ...]:
        """The event loops, in table order (``("",)``: the runtime has one)."""
        return tuple(self.raw)

    def contenders(self, scenario: Scenario, loop: str) -> tuple[Contender, ...]:
        """jfsocket first, then the raw code, then the extra baselines."""
        suffix = f" on {loop}" if loop not in ("", "asyncio") else ""
        extra = (
            (Contender(kind="streams", loop=loop, name=f"asyncio streams{suffix}"),)
            if self.streams and scenario.streams
            else ()
        )
        return (
            Contender(kind="jfsocket", loop=loop, name=f"jfsocket{suffix}"),
            Contender(kind="raw", loop=loop, name=self.raw[loop]),
            *extra,
        )


RUNTIMES: Final = {
    "threaded": Runtime(name="threaded", raw={"": "raw blocking sockets, threads"}),
    "trio": Runtime(name="trio", raw={"": "raw trio streams"}),
    "asyncio": Runtime(
        name="asyncio",
        raw={"asyncio": "raw asyncio Protocol", "uvloop": "raw uvloop Protocol"},
        streams=True,
    ),
}
