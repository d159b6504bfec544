"""The core benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import math
import os
import socket
import threading

import pytest

from tests.bench import bench_core, run
from tests.bench.common import Result, format_table

TINY = bench_core.Sizes(runs=3, messages=50, warmup=20, profiled=20, round_trips=30)
ROW_KINDS = ("time", "Python calls", "C calls")
UNITS = {"time": "µs/msg", "Python calls": "calls/msg", "C calls": "c_calls/msg"}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _forbidden(*args: object, **kwargs: object) -> object:
    raise AssertionError("the core pump must not open a socket or start a thread")


def _check_rows(results: list[Result]) -> None:
    for r in results:
        assert isinstance(r, Result)
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.unit
        assert r.baseline_name
        assert r.note
        assert not r.higher_is_better  # times and counts: fewer is better
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2  # header and rule
    assert all("×" in line for line in table[2:])


def test_pump_rows_are_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variant gives its three rows; call counts are whole (deterministic);
    no socket is opened and no thread started."""
    for name in ("socket", "socketpair", "create_connection", "create_server", "getaddrinfo"):
        monkeypatch.setattr(socket, name, _forbidden)
    monkeypatch.setattr(threading.Thread, "start", _forbidden)
    results = bench_core.pump_results(quick=True, sizes=TINY)
    assert [r.scenario for r in results] == [
        f"pump {variant.name}: {kind}" for variant in bench_core.PUMP_VARIANTS for kind in ROW_KINDS
    ]
    _check_rows(results)
    for r in results:
        assert r.unit == UNITS[r.scenario.rpartition(": ")[2]]
        if "calls" in r.scenario:
            assert r.jfsocket == int(r.jfsocket)
            assert r.baseline == int(r.baseline)
            # The core does more than a direct call per message.
            assert r.jfsocket > r.baseline


def test_count_calls_counts_both_kinds() -> None:
    """Per message: Python frames as 'call', builtins as 'c_call'; the loop's own
    cost around the messages is not counted."""

    def python_function() -> None:
        pass

    def messages(n: int) -> None:
        for _ in range(n):
            python_function()
            python_function()
            len("abc")

    assert bench_core.count_calls(messages, 10) == (2.0, 1.0)
    assert bench_core.count_calls(lambda n: None, 10) == (0.0, 0.0)


@pytest.mark.timeout(60)
def test_threaded_rows_are_well_formed() -> None:
    """Two rows of counts per round trip; no thread or descriptor is left behind."""
    threads, fds = threading.active_count(), _fds()
    results = bench_core.threaded_results(quick=True, sizes=TINY, timeout=20)
    assert [r.scenario for r in results] == [
        "threaded ping-pong 64 B: Python calls",
        "threaded ping-pong 64 B: C calls",
    ]
    _check_rows(results)
    assert [r.unit for r in results] == ["calls/rt", "c_calls/rt"]
    for r in results:
        assert r.jfsocket > r.baseline
    assert threading.active_count() == threads
    assert _fds() == fds
    assert threading.getprofile() is None


def test_harness_finds_the_core_benchmark() -> None:
    """``python -m tests.bench.run core`` runs this module's ``main``."""
    modules = run.discover()
    assert modules["core"] == "tests.bench.bench_core"
    assert run.load(modules["core"]) is bench_core.main
