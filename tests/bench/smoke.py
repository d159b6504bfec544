"""What the binding benchmarks' smoke tests check: tiny sizes, and well-formed rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from .common import Result, format_table
from .scenarios import RUNTIMES, SCENARIOS

__all__ = ["CLIENTS", "TINY", "check_rows", "expected_rows"]

TINY: Final = {
    "ping-pong": 20,
    "multicast": 300,
    "fan-out": 3,
    "connections": 10,
    "bulk": 16,
    "tls-ping-pong": 20,
    "tls-bulk": 16,
}
CLIENTS: Final = 4


def expected_rows(
    runtime: str, loops: Sequence[str], keys: Sequence[str] | None = None
) -> list[tuple[str, str, str]]:
    """(scenario key, baseline name, row kind) of each row, in table order."""
    rows = []
    for scenario in SCENARIOS:
        if keys is not None and scenario.key not in keys:
            continue
        for loop in loops:
            _, *baselines = RUNTIMES[runtime].contenders(scenario, loop)
            for other in baselines:
                rows += [(scenario.key, other.name, "rate"), (scenario.key, other.name, "cpu")]
                if scenario.memory and other.kind == "raw":
                    rows.append((scenario.key, other.name, "memory"))
    return rows


def check_rows(results: Sequence[Result], expected: Sequence[tuple[str, str, str]]) -> None:
    """The rows are the *expected* ones, with positive finite figures and their notes."""
    assert [(r.baseline_name, kind_of(r)) for r in results] == [
        (base, kind) for _, base, kind in expected
    ]
    for r, (key, _, kind) in zip(results, expected, strict=True):
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.paired is not None
        assert "target" in r.note
        if kind == "rate":
            assert r.higher_is_better
            assert ("loss" in r.note) == (key == "multicast")
        elif kind == "cpu":
            assert not r.higher_is_better
            assert "server+client" in r.note
        else:
            assert not r.higher_is_better
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2  # header and rule
    assert all("×" in line for line in table[2:])


def kind_of(result: Result) -> str:
    """``rate``, ``cpu`` or ``memory``: which of a pair's rows *result* is."""
    if result.unit == "KiB/conn":
        return "memory"
    return "cpu" if result.unit.startswith("µs CPU/") else "rate"
