"""The runner of the binding benchmarks: every row of :data:`SCENARIOS`, for
jfsocket and for the raw code of the same runtime, in the same run.

Each repetition runs every contender once, in turn (the order rotates from one
repetition to the next); a run is a fresh pair of child processes, one per
side (:func:`tests.bench.peers.run_pair`), pinned as the scenario says (one
CPU: both on the last CPU this process may use; two: the first and the last).  One
untimed repetition comes first (on a VM the first run after an idle spell is
slower, whoever runs it).  A row's ratio is the median of the ratios taken
within each repetition; its figures are the medians of each contender's.

For each scenario and each pair (jfsocket, a baseline) three kinds of rows:

* the rate: events per second of wall time, from the start of the work on one
  side to its end on the other;
* the CPU time per event: both sides' process CPU time over the stretch each
  timed, added, per event (the note splits it: server + client, for multicast
  receiver + sender); it depends far less than wall time on where the
  scheduler puts the two sides;
* memory per idle connection, for ``connections``: the server process's RSS
  growth while it accepted them, per connection.

Ratios above 1 favour jfsocket (rates: ours / theirs; CPU and memory: theirs /
ours).  Notes give the issue's target for the ratio.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from typing import Final

import attrs

from .common import Result, median_ratio
from .peers import Job, Report, run_pair
from .plumbing import check, fd_room, verdict
from .scenarios import (
    FANOUT_CLIENTS,
    MEMORY_TARGET,
    RUNTIMES,
    SCENARIOS,
    Contender,
    Role,
    Runtime,
    Scenario,
)
from .tlsfiles import write as write_certs

__all__ = ["DEFAULT_TIMEOUT", "Sample", "loop_available", "main", "rows"]

DEFAULT_TIMEOUT: Final = 120.0
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


@attrs.frozen(kw_only=True)
class Sample:
    """One contender's run of one scenario: the figures its two reports give."""

    seconds: float
    events: int
    scale: float
    cpu: Mapping[Role, float]  # CPU seconds per side
    sent: int  # events the other side sent (lossy scenarios)
    memory: float = 0.0  # server RSS growth per connection, bytes

    @property
    def rate(self) -> float:
        """Events (scaled) per second of wall time."""
        return self.events * self.scale / self.seconds

    def cpu_us(self, role: Role | None = None) -> float:
        """µs of CPU time per event: *role*'s, or both sides' added."""
        seconds = sum(self.cpu.values()) if role is None else self.cpu[role]
        return seconds / self.events * 1e6

    @property
    def loss(self) -> float:
        """Fraction of what was sent that did not arrive."""
        return 1 - self.events / self.sent if self.sent else 0.0


def _sample(scenario: Scenario, reports: Mapping[Role, Report], expected: int, what: str) -> Sample:
    """What a run's two reports say (the work must be whole, unless events may be lost)."""
    ended = reports[scenario.ends]
    if not scenario.lossy:
        check(what, ended.events, expected)
    elif not ended.events:
        raise RuntimeError(f"{what}: nothing arrived")
    other: Role = "client" if scenario.ends == "server" else "server"
    seconds = ended.end - reports[scenario.starts].start
    if seconds <= 0:
        raise RuntimeError(f"{what}: the work took {seconds} s")
    rss = reports["server"].extra.get("rss")
    return Sample(
        seconds=seconds,
        events=ended.events,
        scale=scenario.rate_scale,
        cpu={role: report.cpu for role, report in reports.items()},
        sent=reports[other].events,
        memory=max(rss, _PAGE) / ended.events if rss is not None else 0.0,
    )


def loop_available(loop: str) -> bool:
    """Whether event loop *loop* can run here (uvloop may not be installed)."""
    return loop != "uvloop" or importlib.util.find_spec("uvloop") is not None


def _placement(scenario: Scenario) -> tuple[dict[Role, tuple[int, ...]], str]:
    """Each side's CPUs, and a note if the machine cannot give what the scenario asks."""
    if not hasattr(os, "sched_getaffinity"):
        return {"server": (), "client": ()}, "not pinned: no sched_setaffinity here"
    cpus = sorted(os.sched_getaffinity(0))
    if scenario.cpus == 1:
        return {"server": (cpus[-1],), "client": (cpus[-1],)}, ""
    if len(cpus) < 2:
        return {"server": (cpus[0],), "client": (cpus[0],)}, "one CPU only here"
    return {"server": (cpus[0],), "client": (cpus[-1],)}, ""


def _figure(sample: Sample, figure: str, role: Role | None = None) -> float:
    """``cpu`` (µs per event, of *role* or both sides), or the named property."""
    return sample.cpu_us(role) if figure == "cpu" else float(getattr(sample, figure))


def _median(samples: Sequence[Sample], figure: str, role: Role | None = None) -> float:
    return statistics.median(_figure(s, figure, role) for s in samples)


def rows(
    scenario: Scenario,
    count: int,
    clients: int,
    ours: Contender,
    theirs: Contender,
    samples: Mapping[Contender, Sequence[Sample]],
    *,
    target: float,
    placement_note: str = "",
) -> list[Result]:
    """The rows comparing *ours* with *theirs*: rate, CPU time per event, memory."""
    mine, base = samples[ours], samples[theirs]
    suffix = ""
    if ours.loop not in ("", "asyncio"):
        suffix += f" ({ours.loop})"
    if theirs.kind != "raw":
        suffix += f", vs {theirs.kind}"
    title = f"{scenario.name(count, clients)}{suffix}"
    extra = f"; {placement_note}" if placement_note else ""

    def paired(figure: str, higher_is_better: bool) -> tuple[float, str]:
        a, b = ([_figure(s, figure) for s in group] for group in (mine, base))
        ratio = median_ratio(a, b, higher_is_better=higher_is_better)
        spread = [x / y if higher_is_better else y / x for x, y in zip(a, b, strict=True)]
        reps = f"reps {min(spread):.2f}–{max(spread):.2f}" if len(spread) > 1 else "1 rep"
        return ratio, f"{reps}; {verdict(ratio, target)}{extra}"

    rate_ratio, rate_note = paired("rate", True)
    if scenario.lossy:
        loss = f"loss {_median(mine, 'loss'):.1%} / {_median(base, 'loss'):.1%}"
        rate_note = f"{loss}; {rate_note}"
    else:
        rate_note = f"{count} {scenario.counted}; {rate_note}"
    cpu_ratio, cpu_note = paired("cpu", False)
    split = "server+client {:.1f}+{:.1f} / {:.1f}+{:.1f}".format(
        *(_median(group, "cpu", role) for group in (mine, base) for role in ("server", "client"))
    )
    results = [
        Result(
            scenario=title,
            jfsocket=_median(mine, "rate"),
            baseline=_median(base, "rate"),
            unit=scenario.rate_unit,
            baseline_name=theirs.name,
            note=rate_note,
            paired=rate_ratio,
        ),
        Result(
            scenario=f"{title}: CPU time",
            jfsocket=_median(mine, "cpu"),
            baseline=_median(base, "cpu"),
            unit=f"µs CPU/{scenario.event}",
            baseline_name=theirs.name,
            higher_is_better=False,
            note=f"{split}; {cpu_note}",
            paired=cpu_ratio,
        ),
    ]
    if scenario.memory and theirs.kind == "raw":
        a, b = [s.memory for s in mine], [s.memory for s in base]
        ratio = median_ratio(a, b, higher_is_better=False)
        results.append(
            Result(
                scenario=f"memory per idle connection, {count} held{suffix}",
                jfsocket=statistics.median(a) / 1024,
                baseline=statistics.median(b) / 1024,
                unit="KiB/conn",
                baseline_name=theirs.name,
                higher_is_better=False,
                note=(
                    "server VmRSS growth / connections; target ≤ 1.5× the raw code's: "
                    f"{'ok' if ratio >= MEMORY_TARGET else 'BELOW TARGET'}"
                ),
                paired=ratio,
            )
        )
    return results


def _run_scenario(
    runtime: Runtime,
    scenario: Scenario,
    loops: Sequence[str],
    *,
    count: int,
    clients: int,
    runs: int,
    timeout: float,
    warm_up: bool,
) -> list[Result]:
    if scenario.tls:
        with tempfile.TemporaryDirectory(prefix="jfsocket-bench-tls-") as folder:
            return _run_scenario_in(
                runtime, scenario, loops, count=count, clients=clients, runs=runs,
                timeout=timeout, warm_up=warm_up, certs=write_certs(folder),
            )  # fmt: skip
    return _run_scenario_in(
        runtime, scenario, loops, count=count, clients=clients, runs=runs,
        timeout=timeout, warm_up=warm_up, certs="",
    )  # fmt: skip


def _run_scenario_in(
    runtime: Runtime,
    scenario: Scenario,
    loops: Sequence[str],
    *,
    count: int,
    clients: int,
    runs: int,
    timeout: float,
    warm_up: bool,
    certs: str,
) -> list[Result]:
    contenders = [c for loop in loops for c in runtime.contenders(scenario, loop)]
    cpus, placement_note = _placement(scenario)
    samples: dict[Contender, list[Sample]] = {c: [] for c in contenders}
    expected = count * clients if scenario.key == "fan-out" else count

    def once(contender: Contender) -> Sample:
        jobs: dict[Role, Job] = {
            role: Job(
                runtime=runtime.name,
                kind=contender.kind,
                loop=contender.loop,
                scenario=scenario.key,
                role=role,
                count=count,
                clients=clients,
                timeout=timeout,
                cpus=cpus[role],
                fds=scenario.descriptors(count, clients),
                certs=certs,
            )
            for role in ("server", "client")
        }
        what = jobs["server"].what.rpartition(",")[0]
        return _sample(scenario, run_pair(jobs), expected, what)

    for rep in range(-1 if warm_up else 0, runs):
        turn = rep % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            sample = once(contender)
            if rep >= 0:
                samples[contender].append(sample)
    results: list[Result] = []
    for loop in loops:
        jfsocket, raw, *extra = runtime.contenders(scenario, loop)
        target = scenario.targets[runtime.name]
        results += rows(
            scenario,
            count,
            clients,
            jfsocket,
            raw,
            samples,
            target=target,
            placement_note=placement_note,
        )
        for other in extra:
            results += rows(
                scenario,
                count,
                clients,
                jfsocket,
                other,
                samples,
                target=scenario.streams_target,
                placement_note=placement_note,
            )
    return results


def main(
    runtime: str,
    quick: bool = False,
    *,
    sizes: Mapping[str, int] | None = None,
    clients: int | None = None,
    runs: int | None = None,
    timeout: float | None = None,
    scenarios: Collection[str] | None = None,
    loops: Collection[str] | None = None,
    warm_up: bool = True,
) -> list[Result]:
    """Rows for *runtime*'s *scenarios* (default all, in table order).

    *sizes* maps scenario keys to their counts (default each row's, its
    ``quick`` one if *quick*); *clients* is fan-out's (default 200); *runs*
    the repetitions per median (default 5, 3 if *quick*); *timeout* each
    side's time limit in seconds; *loops* the event loops where the runtime
    has several (default all; uvloop's rows are left out, with a note on
    stderr, where it is not installed).
    """
    spec = RUNTIMES[runtime]
    table = {s.key: s for s in SCENARIOS}
    chosen = list(table) if scenarios is None else list(scenarios)
    unknown = [name for name in chosen if name not in table]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; available: {', '.join(table)}")
    wanted = spec.loops if loops is None else tuple(loops)
    strange = [loop for loop in wanted if loop not in spec.loops]
    if strange:
        raise ValueError(f"unknown loops {strange}; available: {', '.join(spec.loops)}")
    usable = [loop for loop in spec.loops if loop in wanted]
    for loop in list(usable):
        if not loop_available(loop):
            print(f"bench {runtime}: {loop} rows skipped: it is not installed", file=sys.stderr)
            usable.remove(loop)
    n = runs if runs is not None else (3 if quick else 5)
    if n < 1:
        raise ValueError(f"runs must be at least 1, got {n}")
    width = clients if clients is not None else FANOUT_CLIENTS
    results: list[Result] = []
    for key in (key for key in table if key in chosen):
        scenario = table[key]
        count = (sizes or {}).get(key, scenario.quick if quick else scenario.count)
        problem = fd_room(scenario.descriptors(count, width))
        if problem is not None:
            print(f"bench {runtime}: {key} skipped: {problem}", file=sys.stderr, flush=True)
            continue
        if not usable:
            break
        print(f"bench {runtime}: {scenario.name(count, width)}", file=sys.stderr, flush=True)
        results += _run_scenario(
            spec,
            scenario,
            usable,
            count=count,
            clients=width,
            runs=n,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            warm_up=warm_up,
        )
    return results
