"""The asyncio benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import pytest

from tests.bench import bench_asyncio, run, runner
from tests.bench.plumbing import open_fds
from tests.bench.scenarios import SCENARIOS
from tests.bench.smoke import CLIENTS, TINY, check_rows, expected_rows

LOOPS = [loop for loop in ("asyncio", "uvloop") if runner.loop_available(loop)]


@pytest.mark.timeout(90)
def test_asyncio_rows_are_well_formed() -> None:
    """Every scenario gives its rows on every loop (ping-pong, plain and TLS, also vs
    streams); none left open."""
    fds = open_fds()
    results = bench_asyncio.main(sizes=TINY, clients=CLIENTS, runs=1, warm_up=False, timeout=20)
    expected = expected_rows("asyncio", LOOPS)
    with_streams = sum(scenario.streams for scenario in SCENARIOS)  # ping-pong, and over TLS
    assert sum(base.startswith("asyncio streams") for _, base, _ in expected) == (
        2 * len(LOOPS) * with_streams
    )
    check_rows(results, expected)
    for r in results:
        if "streams" in r.baseline_name:
            assert "vs streams" in r.scenario
            assert ("target ≥ 0.7" if r.scenario.startswith("TLS") else "target ≥ 1.5") in r.note
    assert open_fds() == fds


def test_scenarios_and_loops_can_be_picked() -> None:
    """``scenarios`` and ``loops`` run only those named; unknown names are refused."""
    results = bench_asyncio.main(
        sizes=TINY, runs=1, warm_up=False, timeout=20, scenarios=["ping-pong"], loops=["asyncio"]
    )
    check_rows(results, expected_rows("asyncio", ["asyncio"], ["ping-pong"]))
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_asyncio.main(sizes=TINY, scenarios=["no-such-scenario"])
    with pytest.raises(ValueError, match="unknown loops"):
        bench_asyncio.main(sizes=TINY, loops=["no-such-loop"])


def test_uvloop_rows_skip_without_uvloop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where uvloop is not installed, its rows are left out, saying so."""
    monkeypatch.setattr(runner, "loop_available", lambda loop: loop != "uvloop")
    results = bench_asyncio.main(
        sizes=TINY, runs=1, warm_up=False, timeout=20, scenarios=["multicast"]
    )
    check_rows(results, expected_rows("asyncio", ["asyncio"], ["multicast"]))
    assert "uvloop rows skipped" in capsys.readouterr().err
    assert bench_asyncio.main(sizes=TINY, loops=["uvloop"]) == []


def test_harness_finds_the_asyncio_benchmark() -> None:
    """``run`` discovers bench_asyncio and loads its ``main``."""
    modules = run.discover()
    assert modules["asyncio"] == "tests.bench.bench_asyncio"
    assert run.load(modules["asyncio"]) is bench_asyncio.main
