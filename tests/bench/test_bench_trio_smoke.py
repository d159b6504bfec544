"""The trio benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time

import pytest
import trio

from tests.bench import bench_trio, run, streams
from tests.bench.common import Result, format_table

TINY = bench_trio.Sizes(bulk_bytes=1 << 20, round_trips=50, connections=20, datagrams=300)
SCENARIO_ROWS = {
    "bulk": ["bulk, 64 KiB sends", "bulk, 64 KiB sends (asyncio streams)"],
    "ping-pong": ["ping-pong, 64 B", "ping-pong, 64 B (asyncio streams)"],
    "connections": [
        "connect 20 clients",
        "connect 20 clients (asyncio streams)",
        "memory, 20 held",
        "memory, 20 held (asyncio streams)",
    ],
    "multicast": [
        "multicast, 200 B datagrams",
        "multicast, 200 B datagrams (asyncio DatagramProtocol)",
    ],
}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(60)
def test_trio_rows_are_well_formed() -> None:
    """Every scenario gives its rows, with positive finite figures; nothing is left open."""
    fds = _fds()
    results = bench_trio.main(sizes=TINY, runs=3, timeout=20)
    assert [r.scenario for r in results] == [
        row for name in bench_trio.SCENARIOS for row in SCENARIO_ROWS[name]
    ]
    for r in results:
        assert isinstance(r, Result)
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.unit
        assert r.baseline_name.startswith("raw trio")
    assert {r.higher_is_better for r in results if r.unit in ("ms", "KiB/conn")} == {False}
    assert all("loss" in r.note for r in results[-2:])
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2
    assert _fds() == fds


def test_scenarios_can_be_picked() -> None:
    """``scenarios`` runs only those named; an unknown name is refused."""
    results = bench_trio.main(sizes=TINY, runs=3, timeout=20, scenarios=["ping-pong"])
    assert [r.scenario for r in results] == SCENARIO_ROWS["ping-pong"]
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_trio.main(sizes=TINY, scenarios=["no-such-scenario"])


def test_connections_skip_when_descriptors_run_short(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Too low a hard RLIMIT_NOFILE skips the scenario, saying why."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (16, 16))
    assert bench_trio.main(sizes=TINY, scenarios=["connections"]) == []
    assert "connections skipped" in capsys.readouterr().err


async def _trio_forever() -> None:
    with bench_trio._limit(0.05, "demo"):
        await trio.sleep_forever()


async def _asyncio_forever() -> None:
    await streams.within(asyncio.Event().wait(), 0.05, "demo")


def test_stalls_fail_clearly_instead_of_hanging() -> None:
    """A wait past its limit raises StalledError naming it, in trio and in asyncio."""
    started = time.perf_counter()
    with pytest.raises(bench_trio.StalledError, match="demo: not done within"):
        trio.run(_trio_forever)
    with pytest.raises(bench_trio.StalledError, match="demo: not done within"):
        asyncio.run(_asyncio_forever())
    assert time.perf_counter() - started < 5


def test_harness_finds_the_trio_benchmark() -> None:
    """``run`` discovers bench_trio and loads its ``main``."""
    modules = run.discover()
    assert modules["trio"] == "tests.bench.bench_trio"
    assert run.load(modules["trio"]) is bench_trio.main
