"""The threaded benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import math
import os
import threading
import time

import pytest

from tests.bench import bench_threaded, run
from tests.bench.common import Result, format_table

TINY = bench_threaded.Sizes(
    bulk_bytes=1 << 20,
    round_trips=50,
    fanout_clients=5,
    fanout_messages=5,
    connections=10,
    datagrams=300,
)
SCENARIO_ROWS = {
    "bulk": ["bulk, 64 KiB sends"],
    "ping-pong": ["ping-pong, 64 B"],
    "fan-out": ["fan-out, 5 clients × 256 B"],
    "connections": ["connect 10 clients", "memory, 10 held"],
    "multicast": ["multicast, 200 B datagrams"],
}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(60)
def test_threaded_rows_are_well_formed() -> None:
    """Every scenario gives its rows, with positive finite figures; nothing is left open."""
    threads, fds = threading.active_count(), _fds()
    results = bench_threaded.main(sizes=TINY, runs=3, timeout=20)
    assert [r.scenario for r in results] == [
        row for name in bench_threaded.SCENARIOS for row in SCENARIO_ROWS[name]
    ]
    for r in results:
        assert isinstance(r, Result)
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.unit
        assert r.baseline_name
    assert {r.higher_is_better for r in results if r.unit in ("ms", "KiB/conn")} == {False}
    assert "loss" in results[-1].note
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2
    assert threading.active_count() == threads
    assert _fds() == fds


def test_scenarios_can_be_picked() -> None:
    """``scenarios`` runs only those named; an unknown name is refused."""
    results = bench_threaded.main(sizes=TINY, runs=3, timeout=20, scenarios=["ping-pong"])
    assert [r.scenario for r in results] == SCENARIO_ROWS["ping-pong"]
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_threaded.main(sizes=TINY, scenarios=["no-such-scenario"])


def _wait_forever(deadline: bench_threaded.Deadline) -> None:
    with deadline:
        deadline.wait(threading.Event(), "the event")


def _block_until_aborted(deadline: bench_threaded.Deadline) -> None:
    woken = threading.Event()
    with deadline:
        deadline.on_expiry(woken.set)
        assert woken.wait(5)  # as a blocked call is woken by the abort


def test_deadline_fails_clearly_instead_of_hanging() -> None:
    """A wait past the limit, or an expiry, raises StalledError naming the run."""
    started = time.perf_counter()
    with pytest.raises(bench_threaded.StalledError, match="demo: the event not done within"):
        _wait_forever(bench_threaded.Deadline("demo", 0.05))
    with pytest.raises(bench_threaded.StalledError, match="demo: not done within"):
        _block_until_aborted(bench_threaded.Deadline("demo", 0.05))
    assert time.perf_counter() - started < 5


def test_harness_finds_the_threaded_benchmark() -> None:
    """``run`` discovers bench_threaded and loads its ``main``."""
    modules = run.discover()
    assert modules["threaded"] == "tests.bench.bench_threaded"
    assert run.load(modules["threaded"]) is bench_threaded.main
