"""The asyncio benchmark still runs, with tiny sizes (no speed is asserted)."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time

import pytest

from tests.bench import bench_asyncio, run, streams
from tests.bench.common import Result, format_table

TINY = bench_asyncio.Sizes(bulk_bytes=1 << 20, round_trips=50, connections=20, datagrams=300)
LOOPS = [loop for loop in bench_asyncio.LOOPS if loop != "uvloop" or bench_asyncio._uvloop()]


def _suffix(loop: str, *more: str) -> str:
    parts = [*([] if loop == "asyncio" else [loop]), *more]
    return f" ({', '.join(parts)})" if parts else ""


def _rows(name: str, loop: str) -> list[str]:
    """The scenario column of *name*'s rows on *loop*."""
    plain, streams = _suffix(loop), _suffix(loop, "vs streams")
    return {
        "bulk": [f"bulk, 64 KiB sends{plain}", f"bulk, 64 KiB sends{streams}"],
        "ping-pong": [f"ping-pong, 64 B{plain}", f"ping-pong, 64 B{streams}"],
        "connections": [f"connect 20 clients{plain}", f"memory, 20 held{plain}"],
        "multicast": [f"multicast, 200 B datagrams{plain}"],
    }[name]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(90)
def test_asyncio_rows_are_well_formed() -> None:
    """Every scenario gives its rows on every loop, with positive finite figures.

    Nothing is left open.
    """
    bench_asyncio._uvloop()  # its first loop's process-wide descriptors are not a leak
    fds = _fds()
    results = bench_asyncio.main(sizes=TINY, runs=3, timeout=20, loops=LOOPS)
    assert [r.scenario for r in results] == [
        row for name in bench_asyncio.SCENARIOS for loop in LOOPS for row in _rows(name, loop)
    ]
    for r in results:
        assert isinstance(r, Result)
        for figure in (r.jfsocket, r.baseline, r.ratio):
            assert math.isfinite(figure)
            assert figure > 0
        assert r.unit
        if "vs streams" in r.scenario:
            assert r.baseline_name.startswith("asyncio streams")
            assert "jfsocket faster by" in r.note or "jfsocket slower by" in r.note
        else:
            assert r.baseline_name.startswith("raw ")
            assert any(loop in r.baseline_name for loop in LOOPS)
    assert {r.higher_is_better for r in results if r.unit in ("ms", "KiB/conn")} == {False}
    assert all("loss" in r.note for r in results if r.unit == "datagrams/s")
    table = format_table(results).splitlines()
    assert len(table) == len(results) + 2
    assert _fds() == fds


def test_scenarios_and_loops_can_be_picked() -> None:
    """``scenarios`` and ``loops`` run only those named; unknown names are refused."""
    results = bench_asyncio.main(
        sizes=TINY, runs=3, timeout=20, scenarios=["ping-pong"], loops=["asyncio"]
    )
    assert [r.scenario for r in results] == _rows("ping-pong", "asyncio")
    with pytest.raises(ValueError, match="unknown scenarios"):
        bench_asyncio.main(sizes=TINY, scenarios=["no-such-scenario"])
    with pytest.raises(ValueError, match="unknown loops"):
        bench_asyncio.main(sizes=TINY, loops=["no-such-loop"])


def test_uvloop_rows_skip_without_uvloop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where uvloop cannot be imported, its rows are left out, saying so."""
    monkeypatch.setattr(bench_asyncio, "_uvloop", lambda: None)
    results = bench_asyncio.main(sizes=TINY, runs=3, timeout=20, scenarios=["multicast"])
    assert [r.scenario for r in results] == _rows("multicast", "asyncio")
    assert "uvloop rows skipped" in capsys.readouterr().err
    assert bench_asyncio.main(sizes=TINY, loops=["uvloop"]) == []


def test_connections_skip_when_descriptors_run_short(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Too low a hard RLIMIT_NOFILE skips the scenario, saying why."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (16, 16))
    assert bench_asyncio.main(sizes=TINY, scenarios=["connections"]) == []
    assert "connections skipped" in capsys.readouterr().err


async def _forever() -> None:
    await streams.within(asyncio.Event().wait(), 0.05, "demo")


async def _straying() -> None:
    asyncio.get_running_loop().create_task(asyncio.sleep(60))


def test_stalls_and_strays_fail_clearly() -> None:
    """A wait past its limit raises StalledError naming it; a task left behind fails the run."""
    started = time.perf_counter()
    for loop in LOOPS:
        with pytest.raises(bench_asyncio.StalledError, match="demo: not done within"):
            bench_asyncio._run(loop, _forever, 5)
        with pytest.raises(bench_asyncio.StalledError, match=f"{loop} run: not done within"):
            bench_asyncio._run(loop, asyncio.Event().wait, 0.05)
        with pytest.raises(RuntimeError, match="task\\(s\\) left running"):
            bench_asyncio._run(loop, _straying, 5)
    assert time.perf_counter() - started < 5


def test_harness_finds_the_asyncio_benchmark() -> None:
    """``run`` discovers bench_asyncio and loads its ``main``."""
    modules = run.discover()
    assert modules["asyncio"] == "tests.bench.bench_asyncio"
    assert run.load(modules["asyncio"]) is bench_asyncio.main
