"""``jfsocket cast probe``: numbered datagrams, and the tally of what arrived.

Nothing here does I/O or reads a clock: the command line sends what
:meth:`ProbeRun.datagram` makes and feeds what arrives to :class:`ProbeTally`,
handing over the times. A probe datagram is a 32-byte header (network order),
then zero bytes up to the size asked for::

    magic 'JFPR' | version 1 | 3 bytes 0 | session u64 | sequence u32 | count u32 | sent f64

*session* is random per run of the sender, *sequence* runs from 1 to *count*
(the number of datagrams the run numbers, skipped ones included), *sent* is
the sender's wall clock (seconds since the epoch).

What a listener reports, per source (the sender's address and its session):

* received: distinct sequence numbers that arrived;
* lost: sequence numbers from 1 up to the highest seen that did not arrive
  (so far). Nothing after the highest can be known lost: the report says
  ``highest H of N``, and the ones after H may be lost or still on their way;
  one that arrives late stops counting as lost and counts as reordered;
* duplicated: datagrams whose sequence number had arrived already;
* reordered: datagrams that arrived after a higher sequence number (and are
  not duplicates);
* the interfaces they arrived on.

Anything else that arrives (not a probe datagram, or a header that makes no
sense) is counted apart, by sender.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Final

from jfsocket.core import Address, Interface

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_COUNT",
    "Probe",
    "ProbeRun",
    "ProbeTally",
    "SourceTally",
    "decode",
    "encode",
]

MAGIC: Final = b"JFPR"
_VERSION: Final = 1
_HEADER: Final = struct.Struct("!4sB3xQIId")
#: Bytes of a probe datagram's header: the smallest probe datagram.
HEADER_SIZE: Final = _HEADER.size
#: The most sequence numbers one run can have (they are 32-bit).
MAX_COUNT: Final = 2**32 - 1
#: Lost sequence numbers a report line lists before it says "...".
_LISTED: Final = 8
#: Other senders a report line names.
_NAMED: Final = 3


@dataclasses.dataclass(frozen=True)
class Probe:
    """A probe datagram's header."""

    session: int
    sequence: int
    count: int
    #: The sender's wall clock when it sent the datagram.
    sent: float


def encode(probe: Probe, size: int = HEADER_SIZE) -> bytes:
    """The datagram of *probe*, padded with zero bytes to *size* (at least the header)."""
    header = _HEADER.pack(MAGIC, _VERSION, probe.session, probe.sequence, probe.count, probe.sent)
    return header + bytes(max(0, size - HEADER_SIZE))


def decode(data: bytes) -> Probe | None:
    """The probe of *data*, or ``None`` if *data* is not a probe datagram that makes sense."""
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        return None
    _, version, session, sequence, count, sent = _HEADER.unpack_from(data)
    if version != _VERSION or not 1 <= sequence <= count or not math.isfinite(sent):
        return None
    return Probe(session, sequence, count, sent)


@dataclasses.dataclass(frozen=True)
class ProbeRun:
    """One sender run: which sequence numbers it sends, and their datagrams."""

    session: int
    count: int = 10
    #: Sequence numbers skipped (``--gap``), which the listener must report lost.
    gaps: frozenset[int] = frozenset()
    size: int = HEADER_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"count must be in 1-{MAX_COUNT}, got {self.count}")
        if not 0 <= self.session < 2**64:
            raise ValueError(f"session must be a 64-bit number, got {self.session}")
        outside = sorted(k for k in self.gaps if not 1 <= k <= self.count)
        if outside:
            raise ValueError(f"--gap {outside[0]} is not a sequence number (1-{self.count})")

    def schedule(self, interval: float) -> Iterator[tuple[int, float]]:
        """``(sequence, due)``: each number sent, *due* seconds after the first
        was due (each number, skipped ones too, has its own slot)."""
        for sequence in range(1, self.count + 1):
            if sequence not in self.gaps:
                yield sequence, (sequence - 1) * interval

    def datagram(self, sequence: int, now: float) -> bytes:
        """The datagram numbered *sequence*, sent at wall-clock time *now*."""
        return encode(Probe(self.session, sequence, self.count, now), self.size)

    def describe(self, target: Address) -> str:
        """What the run sends, for the sender's first line."""
        skipped = f", skipping {_numbers(sorted(self.gaps))}" if self.gaps else ""
        return (
            f"session {self.session:016x}: {self.count} datagrams of {self.size} bytes "
            f"to {target[0]}:{target[1]}{skipped}"
        )


class _Runs:
    """A set of positive integers as sorted, disjoint, non-adjacent runs
    (``[first, last]``): as small as the gaps between them, however many."""

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []

    def add(self, number: int) -> bool:
        """Add *number*; ``False`` if it was there already."""
        firsts, lasts = self._firsts, self._lasts
        i = bisect.bisect_right(firsts, number)  # runs [0, i) start at or before it
        if i and number <= lasts[i - 1]:
            return False
        left = bool(i) and lasts[i - 1] == number - 1
        right = i < len(firsts) and firsts[i] == number + 1
        if left and right:  # it fills the hole between two runs
            lasts[i - 1] = lasts[i]
            del firsts[i], lasts[i]
        elif left:
            lasts[i - 1] = number
        elif right:
            firsts[i] = number
        else:
            firsts.insert(i, number)
            lasts.insert(i, number)
        return True

    def holes(self, start: int) -> Iterator[tuple[int, int]]:
        """The runs missing from *start* up to the largest number held."""
        expected = start
        for first, last in zip(self._firsts, self._lasts, strict=True):
            if first > expected:
                yield expected, first - 1
            expected = last + 1


def _numbers(numbers: Iterable[int] | Iterable[tuple[int, int]]) -> str:
    """``3, 5-7, 9``, for numbers or ``(first, last)`` runs, the first few then ``...``."""
    shown: list[str] = []
    for item in numbers:
        if len(shown) == _LISTED:
            shown.append("...")
            break
        first, last = item if isinstance(item, tuple) else (item, item)
        shown.append(str(first) if first == last else f"{first}-{last}")
    return ", ".join(shown)


def _interface_name(interface: Interface | None) -> str:
    if interface is None:
        return "?"  # the OS did not say
    return interface.name or f"index {interface.index}"


class SourceTally:
    """What arrived from one source: one sender's address and session."""

    def __init__(self, remote: Address, session: int, count: int) -> None:
        self.remote = remote
        self.session = session
        #: How many sequence numbers the run has (as its datagrams say).
        self.count = count
        self.received = 0
        self.duplicated = 0
        self.reordered = 0
        #: The highest sequence number seen.
        self.highest = 0
        #: Datagrams per interface name (``'?'``: not known).
        self.interfaces: Counter[str] = Counter()
        self._seen = _Runs()
        self._delays: list[float] = []

    def add(self, probe: Probe, interface: Interface | None, now: float) -> None:
        """One datagram of this source arrived at wall-clock time *now*."""
        self.interfaces[_interface_name(interface)] += 1
        if not self._seen.add(probe.sequence):
            self.duplicated += 1
            return
        self.received += 1
        if probe.sequence < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, probe.sequence)
        self.count = max(self.count, probe.count)
        self._delays.append(now - probe.sent)

    @property
    def lost(self) -> int:
        """Sequence numbers up to the highest seen that have not arrived."""
        return self.highest - self.received

    @property
    def complete(self) -> bool:
        """The run's last datagram has arrived."""
        return self.highest >= self.count

    def line(self) -> str:
        """The report line of this source."""
        lost = f"{self.lost} lost"
        if self.lost:
            lost += f" ({_numbers(self._seen.holes(1))})"
        on = ", ".join(
            name if len(self.interfaces) == 1 else f"{name} ({n})"
            for name, n in self.interfaces.most_common()
        )
        delays = self._delays
        delay = (
            f"; delay {1000 * sum(delays) / len(delays):.3f} ms avg, {1000 * max(delays):.3f} max"
            if delays
            else ""
        )
        return (
            f"{self.remote[0]}:{self.remote[1]} session {self.session:016x}: "
            f"{self.received} received, {lost}, {self.duplicated} duplicated, "
            f"{self.reordered} reordered; highest {self.highest} of {self.count}; "
            f"interface {on}{delay}"
        )


class ProbeTally:
    """Every source's :class:`SourceTally`, and the datagrams that were not probes."""

    def __init__(self) -> None:
        self.sources: dict[tuple[Address, int], SourceTally] = {}
        #: Probe datagrams that arrived, duplicates included.
        self.probes = 0
        #: Datagrams that were not probe datagrams, by sender.
        self.others: Counter[Address] = Counter()

    def feed(self, data: bytes, remote: Address, interface: Interface | None, now: float) -> None:
        """One datagram from *remote* arrived on *interface* at wall-clock time *now*."""
        probe = decode(data)
        if probe is None:
            self.others[remote] += 1
            return
        self.probes += 1
        key = (remote, probe.session)
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = SourceTally(remote, probe.session, probe.count)
        source.add(probe, interface, now)

    @property
    def finished(self) -> bool:
        """A source has been heard, and every source's last datagram has arrived."""
        return bool(self.sources) and all(s.complete for s in self.sources.values())

    def lines(self) -> list[str]:
        """The report: a line per source, then one for what was not a probe."""
        lines = [source.line() for source in self.sources.values()]
        if self.others:
            total = sum(self.others.values())
            senders = [f"{ip}:{port}" for (ip, port), _ in self.others.most_common(_NAMED)]
            more = ", ..." if len(self.others) > _NAMED else ""
            lines.append(
                f"{total} other datagram{'s' if total > 1 else ''} (not probes) "
                f"from {', '.join(senders)}{more}"
            )
        if not lines:
            lines.append("nothing arrived")
        return lines
