"""The two-process harness and the runner's arithmetic (no speed is asserted).

This module is also the sides module of the harness's tests: its children run
:func:`run` below, a side per scenario name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import attrs
import pytest

from tests.bench.common import Result
from tests.bench.peers import Job, Peer, Report, run_pair
from tests.bench.runner import Sample, rows
from tests.bench.scenarios import RUNTIMES, SCENARIOS, Role

_BURN = 0.05  # CPU seconds the "burn" server spends between its marks


def prepare(job: Job) -> None:
    """Nothing before the baseline."""


def run(peer: Peer) -> None:
    """The test sides: each scenario name is a behaviour."""
    scenario, role = peer.job.scenario, peer.job.role
    if role == "server":
        peer.announce(12345)
    if scenario == "raise":
        raise RuntimeError(f"boom from the {role}")
    if scenario == "stall" and role == "client":
        peer.wait(lambda: False, "the impossible")
    if scenario == "leak" and role == "client":
        peer.extra["fd"] = os.open(os.devnull, os.O_RDONLY)
    peer.begin()
    if role == "server":
        end = time.process_time() + _BURN
        while time.process_time() < end:
            pass
        peer.extra["cpus"] = len(os.sched_getaffinity(0))
        peer.end(1)
        peer.done()
    else:
        peer.wait(peer.peer_done, "the server burning")
        peer.end(1)


def _pair(scenario: str, cpus: tuple[int, ...] = (), timeout: float = 20) -> Mapping[Role, Report]:
    job = Job(
        runtime="fake",
        kind="test",
        loop="",
        scenario=scenario,
        role="server",
        count=1,
        clients=1,
        timeout=timeout,
        cpus=cpus,
        sides=__name__,
    )
    return run_pair({"server": job, "client": attrs.evolve(job, role="client")})


def test_both_sides_report_their_marks() -> None:
    """Each side's CPU time and clock marks come back; the client started after the server."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    reports = _pair("burn", cpus=(cpu,))
    server, client = reports["server"], reports["client"]
    assert server.cpu >= _BURN * 0.9
    assert client.cpu < server.cpu
    assert server.extra["cpus"] == 1  # pinned
    assert server.start < client.start
    assert server.end <= client.end  # the client waited for the server's "done"
    assert server.events == client.events == 1


def test_a_failing_side_is_reported_with_its_error() -> None:
    """A side that raises fails the pair, naming the side, with its traceback's end."""
    with pytest.raises(RuntimeError, match=r"(?s)fake raise, test, server.*boom from the server"):
        _pair("raise")


def test_a_stalled_side_fails_within_its_limit() -> None:
    """A wait past the time limit fails the pair soon, naming what did not finish."""
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"the impossible not done within 0\.5 s"):
        _pair("stall", timeout=0.5)
    assert time.perf_counter() - started < 10


def test_a_side_that_leaves_a_descriptor_open_fails() -> None:
    """The child checks it closed what it opened."""
    with pytest.raises(RuntimeError, match="file descriptors left open"):
        _pair("leak")


def _sample(rate: float, cpu: float, memory: float = 0.0) -> Sample:
    """A sample of *rate* events/s and *cpu* µs per event (half on each side)."""
    return Sample(
        seconds=100 / rate,
        events=100,
        scale=1.0,
        cpu={"server": cpu * 50e-6, "client": cpu * 50e-6},
        sent=100,
        memory=memory,
    )


def test_rows_take_medians_of_same_repetition_ratios() -> None:
    """A slow repetition shared by both contenders does not move the ratio."""
    scenario = next(s for s in SCENARIOS if s.key == "connections")
    ours, theirs, *_ = RUNTIMES["threaded"].contenders(scenario, "")
    samples = {
        ours: [_sample(50, 20, 3072), _sample(10, 100, 3072), _sample(60, 10, 2048)],
        theirs: [_sample(100, 10, 2048), _sample(20, 50, 2048), _sample(100, 10, 2048)],
    }
    rate, cpu, memory = rows(scenario, 3, 1, ours, theirs, samples, target=0.7)
    assert [r.unit for r in (rate, cpu, memory)] == ["connects/s", "µs CPU/connection", "KiB/conn"]
    assert rate.ratio == pytest.approx(0.5)  # 0.5, 0.5, 0.6
    assert rate.jfsocket == pytest.approx(50)
    assert rate.baseline == pytest.approx(100)
    assert cpu.ratio == pytest.approx(0.5)  # 10/20, 50/100, 10/10
    assert cpu.note.startswith("server+client 10.0+10.0 / 5.0+5.0")
    assert memory.ratio == pytest.approx(2 / 3)
    assert memory.jfsocket == pytest.approx(3)
    assert "BELOW TARGET" in rate.note
    assert "reps 0.50–0.60" in rate.note
    assert isinstance(rate, Result)
