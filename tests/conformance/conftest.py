"""Fixtures of the conformance suite: one driver per binding, and the leak check.

Every test that takes ``d`` runs once per binding (``threaded``, ``trio``,
``asyncio``, and ``uvloop``: the asyncio binding on uvloop's loop).  A binding
that cannot be imported here is skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ..certs import Certs
from ..memory.conftest import MEMORY_OPENS_NOTHING
from ..nonet import forbid_network
from .driver import Driver
from .runtimes import AVAILABLE, BINDINGS

__all__ = ["binding", "certs", "d", "no_leaks", "open_fds", "td"]


def open_fds() -> dict[str, str]:
    """This process's open file descriptors: number -> what it points to."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return fds


def _ours(thread: threading.Thread) -> bool:
    # trio keeps idle worker threads (name resolution) for a few seconds in a
    # cache of its own; they are trio's, not a leak of ours.
    return not thread.name.startswith("Trio thread")


def _settle(check: Callable[[], bool], timeout: float) -> bool:
    """Whether *check* holds within *timeout* s, re-checked on a short timed wait."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.01)
    return True


@pytest.fixture(scope="session", autouse=True)
def _uvloop_warmed() -> None:
    """Let uvloop open its one process-wide pipe before any fd is counted."""
    if AVAILABLE["uvloop"]:
        loop = importlib.import_module("uvloop").new_event_loop()
        loop.close()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread or a file descriptor behind (tasks are the
    driver's check: a task can only be seen from inside its loop)."""
    threads = {t for t in threading.enumerate() if _ours(t)}
    fds = open_fds()
    yield

    def threads_back() -> bool:
        return {t for t in threading.enumerate() if _ours(t)} <= threads

    def fds_back() -> bool:
        return set(open_fds()) <= set(fds)

    if not _settle(threads_back, 5.0):
        extra = sorted(t.name for t in threading.enumerate() if _ours(t) and t not in threads)
        pytest.fail(f"threads left behind: {extra}", pytrace=False)
    if not _settle(fds_back, 5.0):
        now = open_fds()
        left = {fd: now[fd] for fd in set(now) - set(fds)}
        pytest.fail(f"file descriptors left open: {left}", pytrace=False)


@pytest.fixture(params=BINDINGS)
def binding(request: pytest.FixtureRequest) -> str:
    """The name of the binding under test."""
    name: str = request.param
    if not AVAILABLE[name]:
        pytest.skip(f"{name}: jfsocket.bindings.asyncio (or uvloop) cannot be imported here")
    return name


@pytest.fixture
def d(binding: str, no_leaks: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    """A :class:`Driver` for *binding*; at the end everything is closed and checked.
    On the memory binding, as in its own tests, no socket can be made."""
    if binding == "memory":
        forbid_network(monkeypatch, MEMORY_OPENS_NOTHING)
    driver = Driver(binding)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="session")
def certs() -> Certs:
    """This run's CA and server certificate (made by trustme, never stored)."""
    return Certs()


@pytest.fixture
def td(binding: str, certs: Certs, no_leaks: None) -> Iterator[Driver]:
    """A :class:`Driver` for *binding* over TLS: every server and client has
    ``ssl=``, and plain peers are Python's ssl sockets."""
    if binding == "memory":
        pytest.skip("memory: the virtual network has no TLS (it would need a virtual one)")
    driver = Driver(binding, tls=certs)
    try:
        yield driver
    finally:
        driver.close()
