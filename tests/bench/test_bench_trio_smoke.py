"""The trio benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import resource

import pytest

from tests.bench import bench_trio, run
from tests.bench.plumbing import open_fds
from tests.bench.smoke import CLIENTS, TINY, check_rows, expected_rows


@pytest.mark.timeout(60)
def test_trio_rows_are_well_formed() -> None:
    """Every scenario gives its rows, with positive finite figures; nothing is left open."""
    fds = open_fds()
    results = bench_trio.main(sizes=TINY, clients=CLIENTS, runs=1, warm_up=False, timeout=20)
    check_rows(results, expected_rows("trio", [""]))
    assert all(r.baseline_name == "raw trio streams" for r in results)
    assert open_fds() == fds


def test_scenarios_can_be_picked() -> None:
    """``scenarios`` runs only those named; an unknown name is refused."""
    results = bench_trio.main(sizes=TINY, runs=1, warm_up=False, timeout=20, scenarios=["bulk"])
    check_rows(results, expected_rows("trio", [""], ["bulk"]))
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_trio.main(sizes=TINY, scenarios=["no-such-scenario"])


def test_connections_skip_when_descriptors_run_short(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Too low a hard RLIMIT_NOFILE skips the scenario, saying why."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (16, 16))
    assert bench_trio.main(sizes={"connections": 100}, scenarios=["connections"]) == []
    assert "connections skipped" in capsys.readouterr().err


def test_harness_finds_the_trio_benchmark() -> None:
    """``run`` discovers bench_trio and loads its ``main``."""
    modules = run.discover()
    assert modules["trio"] == "tests.bench.bench_trio"
    assert run.load(modules["trio"]) is bench_trio.main
