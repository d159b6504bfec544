"""The benchmark harness and the framing benchmark still run (no speed is asserted)."""

from __future__ import annotations

import math
import socket

import pytest

from tests.bench import bench_framing, run
from tests.bench.common import Result, format_table, median_of, medians_of

FRAMING_SCENARIOS = [
    "line framer vs split",
    "line framer vs find loop",
    "line framer vs chunk split",
    "line reader utf-8",
    "length framer",
    "line framer 2N/N time",
    "line reader 2N/N time",
    "length framer 2N/N time",
]


def _forbidden(*args: object, **kwargs: object) -> object:
    raise AssertionError("the framing benchmark must not touch the network")


def test_framing_rows_are_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MiB run gives every expected row, with positive finite figures."""
    for name in ("socket", "socketpair", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, _forbidden)
    results = bench_framing.main(quick=True, total=1 << 20)
    assert [r.scenario for r in results] == FRAMING_SCENARIOS
    for r in results:
        assert isinstance(r, Result)
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.unit
        assert r.baseline_name
    assert {r.unit for r in results if "2N/N" in r.scenario} == {"t(2N)/t(N)"}
    assert {r.baseline for r in results if "2N/N" in r.scenario} == {2.0}
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2  # header and rule
    assert all("×" in line for line in table[2:])


def test_harness_finds_the_framing_benchmark() -> None:
    """``run`` discovers bench_framing and loads its ``main``; unknown names are refused."""
    modules = run.discover()
    assert modules["framing"] == "tests.bench.bench_framing"
    assert run.load(modules["framing"]) is bench_framing.main
    with pytest.raises(SystemExit):
        run.main(["no-such-benchmark"])


def test_median_of() -> None:
    """Medians of the measurements; fewer than 3 runs is refused; ratios favour jfsocket."""
    samples = iter([3.0, 1.0, 2.0])
    assert median_of(3, lambda: next(samples)) == 2.0
    with pytest.raises(ValueError, match="n >= 3"):
        median_of(2, lambda: 1.0)
    assert medians_of(3, [lambda: 1.0, lambda: 2.0]) == [1.0, 2.0]
    assert Result(
        scenario="s",
        jfsocket=2.0,
        baseline=4.0,
        unit="s",
        baseline_name="b",
        higher_is_better=False,
    ).ratio == pytest.approx(2.0)
