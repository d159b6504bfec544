"""Both sides of a benchmark run, each in a child process of its own.

:func:`run_pair` starts the server side (``python -m tests.bench.peers JOB``),
which listens, or binds its receiver, and prints ``ready PORT``; then the
client side, given the port.  Each side marks the stretch it times
(:meth:`Peer.begin`, :meth:`Peer.end`): this process's CPU time
(``time.process_time``: every thread of it) and the system-wide monotonic
clock at both marks, so that the parent can take the work's wall time from
one side's start to the other's end.  Its last line is ``result {json}``.

The two sides meet in a control block: a small file both map, of int64 slots
(the passive side's progress, the multicast receiver's window, the client
side's "go", each side's "done").  Writing one is a store to memory: the
per-event counters that publish progress cost both contenders the same.

Each child pins itself to the CPUs its job names (``os.sched_setaffinity``,
before any thread starts), checks after its run that it left no thread and no
file descriptor open, and ends itself, printing every thread's stack, if it
outlives its time limit by HANG_GRACE seconds; the parent kills what outlives
that.  Every wait a side makes is bounded by the job's time limit.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import importlib
import json
import mmap
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Final, Protocol, cast

import attrs

from .plumbing import StalledError, fd_room, open_fds
from .scenarios import Role

__all__ = ["HANG_GRACE", "Job", "Peer", "Report", "Sides", "child_main", "clock", "run_pair"]

HANG_GRACE: Final = 30.0
POLL: Final = 0.001  # seconds between looks at the control block
_ROOT: Final = Path(__file__).resolve().parents[2]
_PACKAGE: Final = __name__.rpartition(".")[0] or "tests.bench"
_MODULE: Final = f"{_PACKAGE}.peers"
# Control block slots.
_PROGRESS, _WINDOW, _GO, _DONE_SERVER, _DONE_CLIENT = range(5)
_SLOTS: Final = 8
_DONE: Final[Mapping[Role, int]] = {"server": _DONE_SERVER, "client": _DONE_CLIENT}
_OTHER: Final[Mapping[Role, Role]] = {"server": "client", "client": "server"}


def clock() -> float:
    """The system-wide monotonic clock: both sides' marks compare."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@attrs.frozen(kw_only=True)
class Job:
    """What one side does: its scenario, contender and role, sizes, limit, CPUs."""

    runtime: str
    kind: str
    loop: str
    scenario: str
    role: Role
    count: int
    clients: int
    timeout: float
    cpus: tuple[int, ...]
    fds: int = 256  # file descriptors it may need at once
    ctl: str = ""
    port: int = 0
    sides: str = ""  # the module of the sides (default: tests.bench.sides_<runtime>)
    certs: str = ""  # TLS rows: the folder of the certificates (tests.bench.tlsfiles)

    @property
    def what(self) -> str:
        """``ping-pong, raw on uvloop, client``: how errors name this side."""
        on = f" on {self.loop}" if self.loop else ""
        return f"{self.runtime} {self.scenario}, {self.kind}{on}, {self.role}"

    def dumps(self) -> str:
        """As JSON, for the child's command line."""
        return json.dumps(attrs.asdict(self))

    @classmethod
    def loads(cls, text: str) -> Job:
        """The job :meth:`dumps` wrote."""
        fields = json.loads(text)
        fields["cpus"] = tuple(fields["cpus"])
        return cls(**fields)


@attrs.frozen(kw_only=True)
class Report:
    """One side's marks: clock and CPU time at both, and what it counted."""

    start: float
    end: float
    cpu: float
    events: int
    extra: Mapping[str, float] = attrs.field(factory=dict)


class Peer:
    """What a side's code is handed: its job, its marks, the control block, bounded waits."""

    def __init__(self, job: Job, slots: memoryview) -> None:
        self.job = job
        self.count = job.count
        self.clients = job.clients
        self.port = job.port
        self.deadline = clock() + job.timeout
        self.extra: dict[str, float] = {}
        self._slots = slots
        self._step = "setting up"
        self._begun: tuple[float, float] | None = None
        self._report: Report | None = None

    # -- marks ---------------------------------------------------------------

    def step(self, what: str) -> None:
        """Name what this side does now (a stall names it)."""
        self._step = what

    def announce(self, port: int) -> None:
        """The server side is ready: tell the parent its port."""
        print(f"ready {port}", flush=True)

    def begin(self) -> None:
        """The timed stretch starts."""
        self._begun = (clock(), time.process_time())

    def end(self, events: int = 0, *, at: float | None = None) -> None:
        """The timed stretch ends, *events* done; *at*: when the work really ended."""
        cpu, now = time.process_time(), clock()
        if self._begun is None:
            raise RuntimeError(f"{self.job.what}: end() before begin()")
        start, cpu0 = self._begun
        self._report = Report(
            start=start, end=now if at is None else at, cpu=cpu - cpu0, events=events
        )

    def report(self) -> Report:
        """The marks, with :attr:`extra` figures."""
        if self._report is None:
            raise RuntimeError(f"{self.job.what}: the side ended without end()")
        return attrs.evolve(self._report, extra=dict(self.extra))

    # -- control block -------------------------------------------------------

    def publish(self, progress: int) -> None:
        """The passive side's count so far (datagrams, connections)."""
        self._slots[_PROGRESS] = progress

    @property
    def progress(self) -> int:
        """The other side's latest :meth:`publish`."""
        return int(self._slots[_PROGRESS])

    @property
    def window(self) -> int:
        """How far the multicast sender may run ahead (set by the receiver)."""
        return int(self._slots[_WINDOW])

    @window.setter
    def window(self, datagrams: int) -> None:
        self._slots[_WINDOW] = datagrams

    def go(self) -> None:
        """The client side is ready for the server side to start."""
        self._slots[_GO] = 1

    def going(self) -> bool:
        """Whether the client side said :meth:`go`."""
        return bool(self._slots[_GO])

    def done(self) -> None:
        """This side's part is done (the other may tear down)."""
        self._slots[_DONE[self.job.role]] = 1

    def peer_done(self) -> bool:
        """Whether the other side said :meth:`done`."""
        return bool(self._slots[_DONE[_OTHER[self.job.role]]])

    # -- waits ---------------------------------------------------------------

    def left(self) -> float:
        """Seconds left before the time limit (0 once past)."""
        return max(0.0, self.deadline - clock())

    def stalled(self, what: str | None = None) -> StalledError:
        """The error for a wait past the time limit."""
        doing = what if what is not None else self._step
        return StalledError(f"{self.job.what}: {doing} not done within {self.job.timeout:g} s")

    def wait(self, ready: Callable[[], bool], what: str, interval: float = POLL) -> None:
        """Sleep in steps of *interval* until *ready*; past the limit, StalledError."""
        self._step = what
        while not ready():
            if clock() > self.deadline:
                raise self.stalled(what)
            time.sleep(interval)

    def keep_up(self, index: int, step: int) -> None:
        """Before opening connection *index*: wait until the server is within two *step*.

        A full accept queue drops SYNs, and a dropped SYN costs its connect a
        one-second retransmission.
        """
        if index - self.progress > 2 * step:
            self.wait(lambda: index - self.progress <= step, "the server keeping up")

    async def keep_up_async(
        self, index: int, step: int, sleep: Callable[[float], Awaitable[object]]
    ) -> None:
        """:meth:`keep_up` for an event loop."""
        if index - self.progress > 2 * step:
            await self.wait_async(
                lambda: index - self.progress <= step, "the server keeping up", sleep
            )

    def wait_event(self, event: threading.Event, what: str) -> None:
        """Wait for *event*; past the limit, StalledError."""
        self._step = what
        if not event.wait(self.left()):
            raise self.stalled(what)

    async def wait_async(
        self,
        ready: Callable[[], bool],
        what: str,
        sleep: Callable[[float], Awaitable[object]],
        interval: float = POLL,
    ) -> None:
        """:meth:`wait` for an event loop: *sleep* is its ``sleep``."""
        self._step = what
        while not ready():
            if clock() > self.deadline:
                raise self.stalled(what)
            await sleep(interval)


class Sides(Protocol):
    """A ``sides_<runtime>`` module: the code of every side on that runtime."""

    def prepare(self, job: Job) -> None:
        """Whatever must happen before the leak checks' baseline is taken."""

    def run(self, peer: Peer) -> None:
        """Run the side *peer.job* names, to its end."""


# -- the child ---------------------------------------------------------------


@contextlib.contextmanager
def _mapped(path: str) -> Iterator[memoryview]:
    """The control block at *path*, as int64 slots."""
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), _SLOTS * 8) as block:
        slots = memoryview(block).cast("q")
        try:
            yield slots
        finally:
            slots.release()


def _settled(job: Job, threads: set[threading.Thread], fds: int | None) -> None:
    """Fail if the run left a thread running or a file descriptor open (after a grace)."""
    end = clock() + 10.0
    for thread in set(threading.enumerate()) - threads:
        thread.join(max(0.0, end - clock()))
        if thread.is_alive():
            raise RuntimeError(f"{job.what}: thread {thread.name!r} left running")
    end = clock() + 1.0
    while fds is not None and (now := open_fds()) is not None and now > fds:
        if clock() > end:
            raise RuntimeError(f"{job.what}: {now - fds} file descriptors left open")
        gc.collect()
        time.sleep(0.01)


def child_main(argv: list[str]) -> int:
    """A side, in this process: ``python -m tests.bench.peers JOB``."""
    job = Job.loads(argv[0])
    if job.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job.cpus)
    problem = fd_room(job.fds)
    if problem is not None:
        raise SystemExit(f"{job.what}: {problem}")
    faulthandler.dump_traceback_later(job.timeout + HANG_GRACE, exit=True)
    sides = cast(Sides, importlib.import_module(job.sides or f"{_PACKAGE}.sides_{job.runtime}"))
    sides.prepare(job)
    with _mapped(job.ctl) as slots:
        peer = Peer(job, slots)
        threads, fds = set(threading.enumerate()), open_fds()
        gc.collect()
        sides.run(peer)
        _settled(job, threads, fds)
    print(f"result {json.dumps(attrs.asdict(peer.report()))}", flush=True)
    faulthandler.cancel_dump_traceback_later()
    return 0


# -- the parent --------------------------------------------------------------


class _Child:
    """A side's process: its stdout read line by line, its stderr kept in a file."""

    def __init__(self, job: Job, errors: IO[bytes]) -> None:
        self.job = job
        self._errors = errors
        self._buffer = b""
        self.process = subprocess.Popen(
            [sys.executable, "-m", _MODULE, job.dumps()],
            cwd=_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert self.process.stdout is not None
        self._stdout = self.process.stdout
        self.result: Report | None = None
        self.port: int | None = None

    def fileno(self) -> int:
        """Its stdout's descriptor (for ``select``)."""
        return self._stdout.fileno()

    def read(self) -> bool:
        """Take what its stdout has; ``False`` at its end."""
        data = os.read(self.fileno(), 65536)
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            word, _, rest = line.decode().partition(" ")
            if word == "ready":
                self.port = int(rest)
            elif word == "result":
                self.result = Report(**json.loads(rest))
            else:
                raise self.failure(f"said {line!r}")
        return bool(data)

    def failure(self, why: str) -> RuntimeError:
        """An error naming the side, with the end of its stderr."""
        self._errors.flush()
        self._errors.seek(0)
        tail = self._errors.read()[-3000:].decode(errors="replace").rstrip()
        status = self.process.poll()
        return RuntimeError(f"{self.job.what}: {why} (status {status}):\n{tail}")

    def close(self) -> None:
        """Kill it if it still runs; reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._stdout.close()


def _until(children: list[_Child], done: Callable[[_Child], bool], deadline: float) -> None:
    """Read the children's output until *done* holds for each; fail fast if one fails."""
    waiting = [child for child in children if not done(child)]
    while waiting:
        left = deadline - clock()
        if left <= 0:
            raise StalledError(f"{waiting[0].job.what}: no answer from the child in time")
        readable, _, _ = select.select(waiting, [], [], left)
        for child in readable:
            if not child.read():
                child.process.wait(timeout=max(1.0, deadline - clock()))
                if not done(child):
                    raise child.failure("ended early")
        waiting = [child for child in waiting if not done(child)]


def run_pair(jobs: Mapping[Role, Job]) -> Mapping[Role, Report]:
    """Run the server side, then the client side given its port; both reports."""
    server_job = jobs["server"]
    limit = server_job.timeout + 2 * HANG_GRACE
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="jfsocket-bench-"))
        ctl = Path(tmp, "ctl")
        ctl.write_bytes(bytes(_SLOTS * 8))
        children: list[_Child] = []

        def start(job: Job) -> _Child:
            errors = stack.enter_context(tempfile.TemporaryFile(dir=tmp))
            child = _Child(attrs.evolve(job, ctl=str(ctl)), errors)
            children.append(child)
            return child

        def reap() -> None:
            for child in children:
                child.close()

        stack.callback(reap)
        deadline = clock() + limit
        server = start(server_job)
        _until([server], lambda child: child.port is not None, deadline)
        assert server.port is not None
        start(attrs.evolve(jobs["client"], port=server.port))
        _until(children, lambda child: child.result is not None, deadline)
        for child in children:
            if child.process.wait(timeout=max(1.0, deadline - clock())) != 0:
                raise child.failure("failed after its result")
        return {"server": _result(children[0]), "client": _result(children[1])}
    raise AssertionError("unreachable")  # pragma: no cover (mypy: ExitStack may swallow)


def _result(child: _Child) -> Report:
    assert child.result is not None
    return child.result


if __name__ == "__main__":
    # The module by its own name, not as __main__: the sides import it by that name.
    raise SystemExit(importlib.import_module(_MODULE).child_main(sys.argv[1:]))
