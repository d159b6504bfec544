"""Helpers of the asyncio binding's suite: event logs, bounded waits, raw peers,
cancellation at every step, and the leak check's parts.

No pytest here: :mod:`tests.asyncio.isolated` imports this module in child
interpreters, which start faster without it.  Nothing waits by sleeping: waits
are for a condition and bounded by :data:`WAIT` seconds (:meth:`EventLog.wait_for`,
:func:`within`).  :func:`quiesce` yields to the loop (``asyncio.sleep(0)``) and is
used only where the claim is that something does *not* happen, and a correct
binding passes however early it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from jfsocket.bindings.asyncio import TcpClient, TcpServer
from jfsocket.core import EventTypes

from ..eventlog import Args, RecordLog

#: Positional arguments a callback received.
T = TypeVar("T")

#: The most seconds one wait of a test may take before the test fails.
WAIT = 5.0
#: Loopback only (SPEC §8).
LOCALHOST = "127.0.0.1"
#: The checkout, where ``python -m tests.asyncio.isolated`` finds the scenarios.
ROOT = pathlib.Path(__file__).resolve().parents[2]

E = EventTypes
CLIENT_KEYS: tuple[EventTypes, ...] = (E.CONNECTED, E.DISCONNECT, E.RECEIVED, E.SENDED, E.SENDFAIL)
SERVER_KEYS: tuple[EventTypes, ...] = (E.STARTED, E.STOPED, *CLIENT_KEYS)
RECEIVER_KEYS: tuple[EventTypes, ...] = (E.STARTED, E.STOPED, E.RECEIVED)
SENDER_KEYS: tuple[EventTypes, ...] = (E.SENDED, E.SENDFAIL)


def loop_name() -> str:
    """The running loop's kind: ``'uvloop'`` or ``'asyncio'`` (its test id)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.split(".")[0] == "uvloop" else "asyncio"


# -- waiting ------------------------------------------------------------------------------


async def within(
    awaitable: Awaitable[T], timeout: float = WAIT, what: str | Callable[[], str] = ""
) -> T:
    """Await *awaitable*, failing the test (AssertionError) after *timeout* seconds.

    A TimeoutError of the awaitable's own propagates as itself.
    """
    if sys.version_info >= (3, 11):
        # Not wait_for: before 3.12 it swallows a cancellation that arrives as
        # the awaitable completes, which the cancellation tests would blame on
        # the binding.
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise
    else:  # pragma: no cover - Python 3.10: no asyncio.timeout; cancel ourselves
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not expired:
                raise
        finally:
            handle.cancel()
    message = what() if callable(what) else what
    raise AssertionError(f"not done within {timeout} s: {message}")


async def quiesce(
    probe: Callable[[], object] = lambda: None, *, steady: int = 30, limit: int = 3000
) -> None:
    """Yield to the loop until ``probe()`` was the same *steady* iterations in a row.

    Each ``asyncio.sleep(0)`` lets the loop run what is ready and poll I/O
    without blocking, so a binding that can still make progress does.  Use it
    only to show that something does *not* happen.  Fails if *probe* still
    changes after *limit* iterations.
    """
    last, same = probe(), 0
    for _ in range(limit):
        await asyncio.sleep(0)
        now = probe()
        same = same + 1 if now == last else 0
        if same >= steady:
            return
        last = now
    raise AssertionError(f"still changing after {limit} loop iterations: {last!r}")


class EventLog(RecordLog):
    """:class:`RecordLog` for asyncio.  Create it in the running loop;
    :meth:`record` may be called from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._waiters: list[asyncio.Future[None]] = []

    def _changed(self) -> None:
        if threading.get_ident() == self._thread:
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _pause(self) -> None:
        await asyncio.sleep(0)

    async def wait_for(
        self, what: str | Callable[[], bool], count: int = 1, timeout: float = WAIT
    ) -> list[Args]:
        """Wait until *what* was recorded *count* times, or until the predicate
        *what* holds (checked after each record); fail after *timeout* s.

        Returns the records of *what* (a name), else all of them.
        """
        if isinstance(what, str):
            name = what

            def predicate() -> bool:
                return self.count(name) >= count

            wanted = f"{count} x {name}"
        else:
            predicate, wanted = what, getattr(what, "__name__", repr(what))
        await within(self._until(predicate), timeout, lambda: f"{wanted}; got {self.names()}")
        return self.args(what) if isinstance(what, str) else [a for _, a in self.records]

    async def _until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter


def settled(log: EventLog, data: object) -> int:
    """How many SENDED and SENDFAIL *log* has for the object *data* (by identity)."""
    return sum(1 for s in log.data("SENDED") + log.data("SENDFAIL") if s is data)


def settled_once(log: EventLog, sent: Sequence[object]) -> bool:
    """Every object in *sent* got exactly one SENDED or SENDFAIL, by identity."""
    return all(settled(log, data) == 1 for data in sent)


# -- cancellation ------------------------------------------------------------------


class Outcome:
    """How a task that was cancelled after some steps ended."""

    def __init__(self, task: asyncio.Task[None], cancel_landed: bool) -> None:
        self.task = task
        #: ``task.cancel()`` found the task still running.
        self.cancel_landed = cancel_landed

    @property
    def completed(self) -> bool:
        """It ran to the end: the cancel came too late."""
        return not self.cancel_landed


async def cancel_after(steps: int, work: Callable[[], Awaitable[None]]) -> Outcome:
    """Run *work* in a task, cancel it after *steps* loop iterations, wait for its end.

    A task that caught the cancellation and returned normally fails the test:
    asyncio code must not swallow CancelledError.
    """
    task = asyncio.ensure_future(work())
    for _ in range(steps):
        await asyncio.sleep(0)
    landed = task.cancel()
    await within(asyncio.wait({task}), what=f"a cancelled task did not end after {steps} steps")
    if not task.cancelled():
        error = task.exception()
        if error is not None:
            raise error
        assert not landed, f"CancelledError swallowed (cancelled after {steps} steps)"
    return Outcome(task, landed)


def one_disconnect_per_connected(log: EventLog) -> None:
    """A client's log: each CONNECTED is followed by exactly one DISCONNECT before
    the next, and data events only come in between."""
    state = "idle"
    for name in log.names():
        if name == "CONNECTED":
            assert state == "idle", log.names()
            state = "open"
        elif name == "DISCONNECT":
            assert state == "open", log.names()
            state = "idle"
        elif name in ("RECEIVED", "SENDED", "SENDFAIL"):
            assert state == "open", log.names()
    assert state == "idle", log.names()


def per_connection_pairs(log: EventLog) -> None:
    """A server's log: per connection (the first argument), one DISCONNECT per
    CONNECTED, in that order."""
    open_sides: set[int] = set()
    for name, args in log.records:
        side = id(args[0])
        if name == "CONNECTED":
            assert side not in open_sides, log.names()
            open_sides.add(side)
        elif name == "DISCONNECT":
            assert side in open_sides, log.names()
            open_sides.remove(side)
    assert not open_sides, log.names()


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel *task* (if still running) and wait for it to end, whatever it raises."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await within(asyncio.wait({task}), what=f"{task!r} ignores cancellation")


# -- peers -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(
    server_log: EventLog,
    client_log: EventLog,
    *,
    use_async: bool = False,
    encoding: str | None = "utf-8",
    framing: str | None = None,
) -> AsyncIterator[tuple[TcpServer, TcpClient, TcpClient]]:
    """A server and a client connected to it: ``(server, client, server's side)``.

    Both logs see every event of their object (the server's includes its side
    of the connection).
    """
    server = TcpServer(
        LOCALHOST,
        0,
        evts=server_log.evts(*SERVER_KEYS, use_async=use_async),
        encoding=encoding,
        framing=framing,
    )
    client = TcpClient(
        evts=client_log.evts(*CLIENT_KEYS, use_async=use_async),
        encoding=encoding,
        framing=framing,
    )
    async with server, client:
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        (side,) = server.clients.values()
        yield server, client, side


@contextlib.contextmanager
def raw_listener(*, rcvbuf: int | None = None, backlog: int = 8) -> Iterator[socket.socket]:
    """A plain non-blocking socket listening on 127.0.0.1 (port 0); accepted
    sockets inherit *rcvbuf*, so a peer that does not read fills up quickly."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((LOCALHOST, 0))
        sock.listen(backlog)
        sock.setblocking(False)
        yield sock


async def accept(listener: socket.socket) -> socket.socket:
    """The next connection of *listener*, non-blocking (the caller closes it)."""
    peer, _ = await within(asyncio.get_running_loop().sock_accept(listener), what="accept")
    peer.setblocking(False)
    return peer


async def read_exactly(peer: socket.socket, size: int, timeout: float = WAIT) -> bytes:
    """Read *size* bytes from the non-blocking *peer* (fail on EOF or after *timeout* s)."""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    have = 0

    async def read() -> None:
        nonlocal have
        while have < size:
            chunk = await loop.sock_recv(peer, min(size - have, 1 << 20))
            assert chunk, f"EOF after {have} of {size} bytes"
            chunks.append(chunk)
            have += len(chunk)

    await within(read(), timeout, lambda: f"read {have} of {size} bytes")
    return b"".join(chunks)


async def read_to_eof(peer: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything *peer* receives until EOF or a reset (fail after *timeout* s)."""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionResetError):
            while chunk := await loop.sock_recv(peer, 1 << 20):
                chunks.append(chunk)

    await within(read(), timeout, lambda: f"no EOF after {sum(map(len, chunks))} bytes")
    return b"".join(chunks)


def reset(sock: socket.socket) -> None:
    """Close *sock* with an RST (``SO_LINGER`` on, zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def run_isolated(scenario: str, timeout: float = 20.0) -> subprocess.CompletedProcess[bytes]:
    """Run a scenario of :mod:`tests.asyncio.isolated` in a child interpreter, on
    the running test's loop.

    For failures that would hang this process (a deadlock that shields itself
    from cancellation).  The child is killed after *timeout* seconds.  A thread
    waits for it, not asyncio's child watcher, whose signal pipes outlive a test.
    """
    args = [sys.executable, "-m", "tests.asyncio.isolated", loop_name(), scenario]
    return await asyncio.to_thread(
        subprocess.run, args, cwd=ROOT, capture_output=True, timeout=timeout, check=False
    )


# -- leak check ----------------------------------------------------------------------


def open_fds() -> dict[int, str]:
    """This process's open file descriptors, each with what it points to."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # listdir's own descriptor, closed by now
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return fds


def new_fds(before: Mapping[int, str]) -> dict[int, str]:
    """The descriptors open now that were not open (to the same thing) *before*."""
    return {fd: what for fd, what in open_fds().items() if before.get(fd) != what}


def stray_tasks() -> list[asyncio.Task[Any]]:
    """Every unfinished task of the running loop except the current one."""
    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current]


async def warm_up() -> None:
    """Have the loop open what it opens once, lazily, and keeps until it closes:
    uvloop (libuv) reserves a descriptor on /dev/null at the first listen."""
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, LOCALHOST, 0)
    server.close()
    await server.wait_closed()


async def abandon_stuck_tasks() -> None:
    """After a failure: cancel the tasks left behind, and detach from the loop those
    that still have not ended after :data:`WAIT` s (a binding task that ignores
    cancellation would otherwise hang pytest-asyncio's loop teardown for ever,
    where no timeout of pytest-timeout runs any more)."""
    tasks = stray_tasks()
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=WAIT)
    for task in stray_tasks():
        task.cancel()  # a second cancellation ends a binding's shielded cleanup
    if tasks := stray_tasks():
        await asyncio.wait(tasks, timeout=WAIT)
    for task in stray_tasks():
        sys.stderr.write(f"abandoning a task that ignores cancellation: {task!r}\n")
        asyncio.tasks._unregister_task(task)


def check_clean(before: Mapping[int, str]) -> None:
    """Fail if a task other than the current one runs or a descriptor is new."""
    tasks = stray_tasks()
    assert not tasks, f"tasks left behind: {tasks}"
    fds = new_fds(before)
    assert not fds, f"file descriptors leaked: {fds}"
