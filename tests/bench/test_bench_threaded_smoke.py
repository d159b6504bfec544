"""The threaded benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import pytest

from tests.bench import bench_threaded, run
from tests.bench.plumbing import open_fds
from tests.bench.smoke import CLIENTS, TINY, check_rows, expected_rows


@pytest.mark.timeout(60)
def test_threaded_rows_are_well_formed() -> None:
    """Every scenario gives its rows, with positive finite figures; nothing is left open."""
    fds = open_fds()
    results = bench_threaded.main(sizes=TINY, clients=CLIENTS, runs=1, warm_up=False, timeout=20)
    check_rows(results, expected_rows("threaded", [""]))
    assert open_fds() == fds


def test_ratios_are_medians_of_repetitions() -> None:
    """With 3 runs (and the untimed first), the notes give the repetitions' spread."""
    results = bench_threaded.main(sizes=TINY, runs=3, timeout=20, scenarios=["ping-pong"])
    check_rows(results, expected_rows("threaded", [""], ["ping-pong"]))
    assert all("reps " in r.note for r in results)


def test_scenarios_can_be_picked() -> None:
    """``scenarios`` runs only those named; an unknown name is refused."""
    results = bench_threaded.main(
        sizes=TINY, runs=1, warm_up=False, timeout=20, scenarios=["multicast"]
    )
    check_rows(results, expected_rows("threaded", [""], ["multicast"]))
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_threaded.main(sizes=TINY, scenarios=["no-such-scenario"])


def test_harness_finds_the_threaded_benchmark() -> None:
    """``run`` discovers bench_threaded and loads its ``main``."""
    modules = run.discover()
    assert modules["threaded"] == "tests.bench.bench_threaded"
    assert run.load(modules["threaded"]) is bench_threaded.main
