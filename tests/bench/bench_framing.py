"""The core's framers on a pre-built stream, in messages/s, beside plain-Python baselines.

The stream (64 MiB, 8 MiB with ``quick``) is fed in 64 KiB chunks, as reads
from a socket would bring it; no socket is involved.  Each figure is the median
of several runs, the contenders of a row taking turns.  Every run checks its
message count, and frees the messages it made inside the timed region (the
framers' per-chunk lists are freed as they go, so the baselines pay for freeing
theirs too).

Rows:

* line framer (~100-byte ASCII lines ending in ``b'\\n'``) against
  ``bytes.split`` of the whole buffer at once, against a naive incremental loop
  (a ``bytearray`` buffer, ``find`` and slicing per chunk), and against
  ``bytes.split`` of each chunk alone: not a framer (lines cut by a chunk
  boundary come out in two pieces) but the floor any chunked framer stands on;
  the framer's figure is one measurement shown in the three rows;
* ``MessageReader(Framing.LINE, 'utf-8')`` against ``bytes.split`` of the whole
  buffer and a ``decode`` of each line (same ``surrogateescape`` handler);
* length framer (100-byte payloads, 4-byte big-endian prefixes) against a
  hand-written ``Struct('>I').unpack_from`` loop over the whole buffer;
* linearity: each jfsocket variant's time at 2N bytes over its time at N
  (N is half the size; the median of back-to-back pairs), target 2.0 ± 20%.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Callable, Sized
from time import perf_counter
from typing import Final, Protocol

import attrs
from jfsocket.core import Framing, LengthFramer, LineFramer, MessageReader

from .common import Result, median_of, medians_of

__all__ = ["CHUNK", "FULL_TOTAL", "QUICK_TOTAL", "main"]

FULL_TOTAL: Final = 64 << 20
QUICK_TOTAL: Final = 8 << 20
CHUNK: Final = 64 << 10
_MIN_TOTAL: Final = 1 << 10
_BLOCK: Final = 1 << 20  # distinct messages are generated for this much, then repeated
_PAYLOAD: Final = 100
_LINEARITY_TARGET: Final = 2.0
_LINEARITY_TOLERANCE: Final = 0.2
_MSG_PER_S: Final = "msg/s"
_ALPHABET: Final = bytes(range(0x20, 0x7F))  # printable ASCII: no b'\n'
_U32: Final = struct.Struct(">I")


class _Feeder(Protocol):
    """What the jfsocket runs drive: a framer or a :class:`MessageReader`."""

    def feed(self, data: bytes) -> Sized: ...

    def end(self) -> Sized: ...


@attrs.frozen
class _Stream:
    """One pre-built byte stream, whole and as the chunks a reader would receive."""

    data: bytes
    chunks: list[bytes]
    messages: int

    @classmethod
    def pair(cls, block: bytes, per_block: int, total: int) -> tuple[_Stream, _Stream]:
        """Streams of N and exactly 2N bytes (2N >= *total*), repeating *block*.

        *block* holds *per_block* messages.
        """
        times = max(1, -(-total // (2 * len(block))))
        return cls.of(block * times, per_block * times), cls.of(
            block * (2 * times), per_block * 2 * times
        )

    @classmethod
    def of(cls, data: bytes, messages: int) -> _Stream:
        """*data* (holding *messages* messages) and its chunks."""
        return cls(data, [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)], messages)


def _line_streams(total: int, seed: int = 1) -> tuple[_Stream, _Stream]:
    """ASCII lines of 60-138 bytes plus b'\\n' (100 bytes on average): N and 2N."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    size = 0
    while size < min(total // 2, _BLOCK):
        line = bytes(rng.choices(_ALPHABET, k=rng.randrange(60, 139))) + b"\n"
        lines.append(line)
        size += len(line)
    return _Stream.pair(b"".join(lines), len(lines), total)


def _length_streams(total: int, seed: int = 2) -> tuple[_Stream, _Stream]:
    """100-byte random payloads, each after its 4-byte big-endian length: N and 2N."""
    rng = random.Random(seed)
    header = _U32.pack(_PAYLOAD)
    count = -(-min(total // 2, _BLOCK) // (4 + _PAYLOAD))
    block = b"".join(header + rng.randbytes(_PAYLOAD) for _ in range(count))
    return _Stream.pair(block, count, total)


def _check(name: str, got: int, stream: _Stream) -> None:
    if got != stream.messages:
        raise RuntimeError(f"{name}: {got} messages, expected {stream.messages}")


def _feeding(make: Callable[[], _Feeder], stream: _Stream) -> float:
    """Seconds for a fresh feeder to take the whole stream chunk by chunk, then end."""
    feeder = make()
    feed = feeder.feed
    count = 0
    start = perf_counter()
    for chunk in stream.chunks:
        count += len(feed(chunk))
    count += len(feeder.end())
    elapsed = perf_counter() - start
    _check(type(feeder).__name__, count, stream)
    return elapsed


def _split_whole(stream: _Stream) -> float:
    """Baseline: ``bytes.split(b'\\n')`` on the whole buffer at once."""
    start = perf_counter()
    lines = stream.data.split(b"\n")
    lines.pop()  # the empty tail after the last b'\n'
    count = len(lines)
    del lines
    elapsed = perf_counter() - start
    _check("split", count, stream)
    return elapsed


def _split_chunks(stream: _Stream) -> float:
    """Floor: ``bytes.split(b'\\n')`` of each chunk alone, cut lines left cut."""
    count = 0
    start = perf_counter()
    for chunk in stream.chunks:
        count += len(chunk.split(b"\n")) - 1
    elapsed = perf_counter() - start
    _check("split per chunk", count, stream)
    return elapsed


def _find_loop(stream: _Stream) -> float:
    """Baseline: a naive incremental loop, bytearray buffer with find and slicing."""
    count = 0
    start = perf_counter()
    buffer = bytearray()
    for chunk in stream.chunks:
        buffer += chunk
        messages: list[bytes] = []
        pos = 0
        while (cut := buffer.find(b"\n", pos)) >= 0:
            messages.append(bytes(buffer[pos:cut]))
            pos = cut + 1
        del buffer[:pos]
        count += len(messages)
    if buffer:
        count += 1
    elapsed = perf_counter() - start
    _check("find loop", count, stream)
    return elapsed


def _split_decode(stream: _Stream) -> float:
    """Baseline: split the whole buffer, then decode each line as the reader does."""
    start = perf_counter()
    lines = stream.data.split(b"\n")
    lines.pop()
    texts = [line.decode("utf-8", "surrogateescape") for line in lines]
    count = len(texts)
    del lines, texts
    elapsed = perf_counter() - start
    _check("split+decode", count, stream)
    return elapsed


def _unpack_loop(stream: _Stream) -> float:
    """Baseline: a hand-written ``unpack_from`` loop over the whole buffer at once."""
    data = stream.data
    unpack_from = _U32.unpack_from
    start = perf_counter()
    messages: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        (size,) = unpack_from(data, pos)
        pos += 4
        messages.append(data[pos : pos + size])
        pos += size
    count = len(messages)
    del messages
    elapsed = perf_counter() - start
    _check("unpack_from loop", count, stream)
    return elapsed


def _linearity(scenario: str, ratio: float, n_bytes: int) -> Result:
    """A row for the time at 2N over the time at N, against the 2.0 target."""
    within = abs(ratio / _LINEARITY_TARGET - 1) <= _LINEARITY_TOLERANCE
    return Result(
        scenario=scenario,
        jfsocket=ratio,
        baseline=_LINEARITY_TARGET,
        unit="t(2N)/t(N)",
        baseline_name=f"target ±{_LINEARITY_TOLERANCE:.0%}",
        note=f"N = {n_bytes / (1 << 20):.3g} MiB, {'ok' if within else 'OUTSIDE TARGET'}",
    )


def main(quick: bool = False, *, total: int | None = None, runs: int | None = None) -> list[Result]:
    """Framing rows: 64 MiB streams (8 MiB if *quick*; *total* bytes if given).

    *runs* is how many runs each rate's median takes (default 7, or 3 if *quick*);
    linearity ratios, noisier, take the median of ``2 * runs - 1`` pairs.
    """
    size = total if total is not None else (QUICK_TOTAL if quick else FULL_TOTAL)
    if size < _MIN_TOTAL:
        raise ValueError(f"total must be at least {_MIN_TOTAL} bytes, got {size}")
    n = runs if runs is not None else (3 if quick else 7)

    def rates(stream: _Stream, *fns: Callable[[_Stream], float]) -> list[float]:
        seconds = medians_of(n, [functools.partial(fn, stream) for fn in fns])
        return [stream.messages / s for s in seconds]

    def growth(half: _Stream, whole: _Stream, fn: Callable[[_Stream], float]) -> float:
        # Back-to-back pairs: a slow spell of the machine hits both sizes alike.
        return median_of(2 * n - 1, lambda: fn(whole) / fn(half))

    def line_framer(stream: _Stream) -> float:
        return _feeding(LineFramer, stream)

    def line_reader(stream: _Stream) -> float:
        return _feeding(lambda: MessageReader(Framing.LINE, "utf-8"), stream)

    def length_framer(stream: _Stream) -> float:
        return _feeding(LengthFramer, stream)

    half_lines, lines = _line_streams(size)
    line_rate, split_rate, chunk_split_rate, find_rate = rates(
        lines, line_framer, _split_whole, _split_chunks, _find_loop
    )
    reader_rate, decode_rate = rates(lines, line_reader, _split_decode)
    line_growth = growth(half_lines, lines, line_framer)
    reader_growth = growth(half_lines, lines, line_reader)
    line_half = len(half_lines.data)
    del lines, half_lines

    half_frames, frames = _length_streams(size)
    length_rate, unpack_rate = rates(frames, length_framer, _unpack_loop)
    length_growth = growth(half_frames, frames, length_framer)
    length_half = len(half_frames.data)
    del frames, half_frames

    def row(scenario: str, ours: float, theirs: float, baseline_name: str) -> Result:
        return Result(
            scenario=scenario,
            jfsocket=ours,
            baseline=theirs,
            unit=_MSG_PER_S,
            baseline_name=baseline_name,
        )

    return [
        row("line framer vs split", line_rate, split_rate, "bytes.split, whole buffer"),
        row("line framer vs find loop", line_rate, find_rate, "bytearray find loop, per chunk"),
        row(
            "line framer vs chunk split",
            line_rate,
            chunk_split_rate,
            "bytes.split per chunk (floor)",
        ),
        row("line reader utf-8", reader_rate, decode_rate, "bytes.split + decode, whole"),
        row("length framer", length_rate, unpack_rate, "unpack_from loop, whole buffer"),
        _linearity("line framer 2N/N time", line_growth, line_half),
        _linearity("line reader 2N/N time", reader_growth, line_half),
        _linearity("length framer 2N/N time", length_growth, length_half),
    ]
