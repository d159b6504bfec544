"""Helpers of the trio binding's suite: event logs, raw peers and the leak check.

Every test here runs under pytest-trio (``pytestmark = pytest.mark.trio`` in
each module).  The autouse :func:`no_leaks` fixture fails a test that leaves a
file descriptor open or a task of jfsocket's running when it ends.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import trio
import trio.testing
from jfsocket.bindings.trio import TcpClient, TcpServer
from jfsocket.core import EventTypes

from ..eventlog import Args, RecordLog
from ..ownership import is_jfsocket_task

#: Positional arguments a callback received.

#: The most seconds one wait of a test may take before the test fails.
WAIT = 5.0
#: Loopback only (SPEC §8).
LOCALHOST = "127.0.0.1"
#: The checkout, where ``python -m tests.trio.isolated`` finds the scenarios.
ROOT = pathlib.Path(__file__).resolve().parents[2]

E = EventTypes
CLIENT_KEYS: tuple[EventTypes, ...] = (E.CONNECTED, E.DISCONNECT, E.RECEIVED, E.SENDED, E.SENDFAIL)
SERVER_KEYS: tuple[EventTypes, ...] = (E.STARTED, E.STOPED, *CLIENT_KEYS)
RECEIVER_KEYS: tuple[EventTypes, ...] = (E.STARTED, E.STOPED, E.RECEIVED)
SENDER_KEYS: tuple[EventTypes, ...] = (E.SENDED, E.SENDFAIL)


class EventLog(RecordLog):
    """:class:`RecordLog` for trio.  Callbacks may run in trio or, for the
    threaded binding, in other threads; :meth:`wait_for` is awaited in trio.
    Create it inside ``trio.run``."""

    def __init__(self) -> None:
        super().__init__()
        self._event = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()

    def _changed(self) -> None:
        if threading.get_ident() == self._trio_thread:
            self._wake()
        else:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._wake)

    def _wake(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def _pause(self) -> None:
        await trio.lowlevel.checkpoint()

    async def wait_for(self, name: str, count: int = 1, timeout: float = WAIT) -> list[Args]:
        """Wait until *name* was recorded *count* times (fail after *timeout* s)."""
        with trio.fail_after(timeout):
            while self.count(name) < count:
                await self._event.wait()
        return self.args(name)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until *predicate()* holds, checked after each record."""
        with trio.fail_after(timeout):
            while not predicate():
                await self._event.wait()


# -- peers -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(
    server_log: EventLog,
    client_log: EventLog,
    *,
    use_async: bool = False,
    encoding: str | None = "utf-8",
    framing: str | None = None,
    max_message_size: int = 1 << 20,
    recv_buffer: int = 256,
) -> AsyncIterator[tuple[TcpServer, TcpClient, TcpClient]]:
    """A server and a client connected to it: ``(server, client, server's side)``.

    The data options are given to both.  Both logs see every event of their
    object (the server's includes its side of the connection).
    """
    server = TcpServer(
        LOCALHOST,
        0,
        evts=server_log.evts(*SERVER_KEYS, use_async=use_async),
        encoding=encoding,
        framing=framing,
        max_message_size=max_message_size,
        recv_buffer=recv_buffer,
    )
    client = TcpClient(
        evts=client_log.evts(*CLIENT_KEYS, use_async=use_async),
        encoding=encoding,
        framing=framing,
        max_message_size=max_message_size,
        recv_buffer=recv_buffer,
    )
    async with server, client:
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        (side,) = server.clients.values()
        yield server, client, side


@contextlib.asynccontextmanager
async def raw_listener(*, rcvbuf: int | None = None) -> AsyncIterator[trio.socket.SocketType]:
    """A plain trio socket listening on 127.0.0.1 (port 0); accepted sockets
    inherit *rcvbuf*, so a peer that never reads fills up quickly."""
    with trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.bind((LOCALHOST, 0))
        sock.listen(8)
        yield sock


async def blocked() -> None:
    """Return once every other task is blocked (I/O included): no sleeping."""
    await trio.testing.wait_all_tasks_blocked()


async def run_isolated(scenario: str, timeout: float = 20.0) -> subprocess.CompletedProcess[bytes]:
    """Run a scenario of :mod:`tests.trio.isolated` in a child interpreter.

    For failures that hang under a shield (uninterruptible in this process).
    The child is killed if it takes longer than *timeout* seconds.
    """
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "tests.trio.isolated", scenario],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


# -- leak check ----------------------------------------------------------------------


def _walk(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield child
            yield from _walk(child)


def jfsocket_tasks() -> list[trio.lowlevel.Task]:
    """Every task, under the root task (system tasks too), running jfsocket's code."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    return [task for task in _walk(root) if is_jfsocket_task(task)]


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a jfsocket task alive or a file descriptor open.

    pytest-trio does not run autouse ``async`` fixtures, so the task check
    wraps the test function itself: once its body has returned, no task under
    the root task (system tasks included) may still run jfsocket's code.  The
    fd count is compared around the whole ``trio.run``.
    """
    item = request.node
    assert isinstance(item, pytest.Function)
    test: Callable[..., Awaitable[None]] = item.obj

    @functools.wraps(test)
    async def checked(**kwargs: object) -> None:
        await test(**kwargs)
        tasks = jfsocket_tasks()
        assert not tasks, f"tasks left behind: {[t.name for t in tasks]}"

    item.obj = checked
    before = open_fds()
    try:
        yield
    finally:
        item.obj = test
    assert open_fds() == before, "file descriptors leaked"
