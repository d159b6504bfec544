"""Shared pieces of the benchmarks: the result record, the timing helper, the table."""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import attrs

__all__ = [
    "Result",
    "format_table",
    "median_of",
    "median_ratio",
    "medians_of",
    "print_table",
]

_HEADER = ("scenario", "jfsocket", "baseline", "baseline name", "unit", "ratio", "note")


@attrs.frozen(kw_only=True)
class Result:
    """One benchmark row: jfsocket's figure beside a baseline measured in the same run.

    ``ratio`` is ``jfsocket / baseline`` when higher is better (throughputs) and
    ``baseline / jfsocket`` otherwise (times), so above 1 always favours jfsocket.
    Rows that check a property against a target (e.g. linearity) put the target in
    ``baseline`` and use ``higher_is_better=True``: their ratio is measured/target.
    ``paired``, when given, is the ratio instead: the median of ratios taken within
    each repetition (see :func:`median_ratio`), which a slow spell shared by both
    contenders of a repetition does not move.
    """

    scenario: str
    jfsocket: float
    baseline: float
    unit: str
    baseline_name: str
    higher_is_better: bool = True
    note: str = ""
    paired: float | None = None

    @property
    def ratio(self) -> float:
        """jfsocket relative to the baseline (see the class docstring)."""
        if self.paired is not None:
            return self.paired
        if self.higher_is_better:
            return self.jfsocket / self.baseline
        return self.baseline / self.jfsocket


def median_of(n: int, fn: Callable[[], float]) -> float:
    """The median of *n* (at least 3) calls of *fn*, each returning one measurement.

    *fn* times itself (``time.perf_counter`` around the work, setup left out).
    As ``timeit`` does, a collection runs before each call and the cyclic garbage
    collector is off during it, so no call pays for another's garbage.
    """
    return medians_of(n, [fn])[0]


def medians_of(n: int, fns: Sequence[Callable[[], float]]) -> list[float]:
    """:func:`median_of` for each of *fns*, run interleaved: round after round, each once.

    On a shared or throttled machine a slow spell then hits every contender
    alike instead of landing on whichever happened to be running.
    """
    if n < 3:
        raise ValueError(f"median_of needs n >= 3 runs, got {n}")
    samples: list[list[float]] = [[] for _ in fns]
    was_enabled = gc.isenabled()
    for _ in range(n):
        for fn, measured in zip(fns, samples, strict=True):
            gc.collect()
            gc.disable()
            try:
                measured.append(fn())
            finally:
                if was_enabled:
                    gc.enable()
    return [statistics.median(measured) for measured in samples]


def median_ratio(
    ours: Sequence[float], theirs: Sequence[float], *, higher_is_better: bool = True
) -> float:
    """The median of same-repetition ratios, oriented as :attr:`Result.ratio` is.

    ``ours[i]`` and ``theirs[i]`` were measured in the same repetition.
    """
    if not ours or len(ours) != len(theirs):
        raise ValueError(f"paired samples needed, got {len(ours)} and {len(theirs)}")
    if higher_is_better:
        return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    return statistics.median(b / a for a, b in zip(ours, theirs, strict=True))


def _figure(value: float) -> str:
    """A figure with an SI prefix for large values: ``12.35 M``, ``2.03``."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:.2f}"


def format_table(results: Sequence[Result]) -> str:
    """The rows as aligned text columns (numbers right-aligned), header first."""
    rows = [
        (
            r.scenario,
            _figure(r.jfsocket),
            _figure(r.baseline),
            r.baseline_name,
            r.unit,
            f"{r.ratio:.2f}×",
            r.note,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER))]
    right = {1, 2, 5}
    lines = []
    for row in [_HEADER, *rows]:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(results: Sequence[Result], file: TextIO | None = None) -> None:
    """Print :func:`format_table` of *results* (to stdout by default)."""
    print(format_table(results), file=file if file is not None else sys.stdout, flush=True)
