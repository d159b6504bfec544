"""Plumbing the benchmarks share: checks, verdicts, descriptor and memory
readings, and the loopback-only multicast sockets."""

from __future__ import annotations

import os
import resource
import socket
from typing import Any, Final

__all__ = [
    "GROUP",
    "LOOPBACK",
    "StalledError",
    "check",
    "fd_room",
    "loopback_sender",
    "open_fds",
    "raw_receiver",
    "rss",
    "verdict",
    "window",
]

LOOPBACK: Final = "127.0.0.1"
GROUP: Final = "239.255.77.77"  # administratively scoped (239.255.0.0/16)
RCVBUF: Final = 1 << 20  # SO_RCVBUF asked for every multicast receiver (the kernel doubles it)
DATAGRAM_COST: Final = 2048  # receive-buffer bytes one small datagram may take (Linux: ~1.3 KiB)
BURST: Final = 256  # datagrams the paced sender sends between looks at the receiver
WINDOW: Final = 1024  # most datagrams in flight, if the receive buffer holds that many


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


def raw_receiver() -> socket.socket:
    """A raw receiving socket: bound to a free port, GROUP joined on 127.0.0.1, RCVBUF set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind(("0.0.0.0", 0))
        membership = socket.inet_aton(GROUP) + socket.inet_aton(LOOPBACK)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError:
        sock.close()
        raise
    return sock


def window(receiver: object) -> int:
    """How far the sender may run ahead of *receiver* (a socket, stdlib or trio).

    WINDOW datagrams, fewer if its receive buffer cannot hold that many.  A
    jfsocket receiver's socket is private; the benchmark reaches for it to give
    it the raw receivers' SO_RCVBUF, and tells the buffer size it gets.
    """
    sock: Any = getattr(receiver, "_sock", receiver)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        size = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    except (AttributeError, OSError):
        raise RuntimeError(f"no socket to size in {receiver!r}") from None
    return max(BURST, min(WINDOW, size // DATAGRAM_COST - BURST))
