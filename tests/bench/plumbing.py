"""Plumbing the benchmarks share: checks, verdicts, descriptor and memory
readings, and the loopback-only multicast sender."""

from __future__ import annotations

import gc
import os
import resource
import socket
from collections.abc import Awaitable, Callable, Sequence

__all__ = [
    "HOLD_STEP",
    "Held",
    "StalledError",
    "check",
    "fd_room",
    "guarded",
    "loopback_sender",
    "open_fds",
    "report_held",
    "rss",
    "verdict",
]

LOOPBACK = "127.0.0.1"
HOLD_STEP = 1024  # clients stay within two steps of the server's accepts


class StalledError(RuntimeError):
    """A run did not finish within its time limit."""


def check(what: str, got: int, expected: int) -> None:
    """A run must deliver exactly what was sent."""
    if got != expected:
        raise RuntimeError(f"{what}: {got} received, expected {expected}")


def verdict(ratio: float, target: float) -> str:
    """The table's note for *ratio* against the issue's *target*."""
    return f"target ≥ {target:g}: {'ok' if ratio >= target else 'BELOW TARGET'}"


def open_fds() -> int | None:
    """How many file descriptors this process has open (``None``: unknown here)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def fd_room(needed: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; why *needed* fds won't fit, or None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    if hard != resource.RLIM_INFINITY and hard < needed:
        return f"{needed} file descriptors needed per process; RLIMIT_NOFILE hard limit is {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return None


def rss() -> int:
    """This process's resident set size in bytes (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def guarded(what: str, fn: Callable[[], Sequence[float]]) -> Sequence[float]:
    """Run *fn*, then check it left no file descriptor open."""
    fds = open_fds()
    figures = fn()
    after = open_fds()
    if fds is not None and after is not None and after > fds:
        raise RuntimeError(f"{what}: {after - fds} file descriptors left open")
    return figures


def loopback_sender() -> socket.socket:
    """A raw multicast sender that cannot leave the host: TTL 0, interface 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.bind((LOOPBACK, 0))
    except OSError:
        sock.close()
        raise
    return sock


class Held:
    """The child's count of connections: ``have N`` every HOLD_STEP, *done* at *count*."""

    __slots__ = ("_count", "_done", "got")

    def __init__(self, count: int, done: Callable[[], object]) -> None:
        self._count = count
        self._done = done
        self.got = 0

    def arrive(self, *_: object) -> None:
        """One more connection (usable as a callback: its arguments are ignored)."""
        self.got += 1
        if self.got % HOLD_STEP == 0:
            print(f"have {self.got}", flush=True)
        if self.got == self._count:
            self._done()


async def report_held(port: int, connected: Callable[[], Awaitable[object]]) -> None:
    """The child's side: announce *port*, wait for *connected*, report the RSS growth."""
    gc.collect()
    before = rss()
    print(f"ready {port}", flush=True)
    await connected()
    print("connected", flush=True)
    gc.collect()
    print(f"rss {rss() - before}", flush=True)
