"""Socket options every binding sets the same way (TCP streams, membership,
multicast sending).

These take any object with ``setsockopt`` (a ``socket.socket`` or a
``trio.socket.SocketType``): what to set is decided here once, when to set it
is each binding's business.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from typing import Protocol

from jfsocket.core import (
    ConnectionOptions,
    GroupChange,
    Keepalive,
    ReceiverModel,
    SenderModel,
    multicast_os,
)

__all__ = [
    "MULTICAST_OS",
    "SetsOptions",
    "apply_changes",
    "configure_sender",
    "configure_stream",
    "family_of",
    "linger_zero",
    "prepare_listener",
    "prepare_receiver",
]


class SetsOptions(Protocol):
    """What these helpers need of a socket."""

    def setsockopt(self, level: int, optname: int, value: int | bytes, /) -> None:
        """Set one socket option."""


#: The keepalive options by platform name: idle time (Linux TCP_KEEPIDLE, macOS
#: TCP_KEEPALIVE), probe interval, probe count.  Absent ones are left to the OS.
_KEEPALIVE_OPTIONS: tuple[tuple[str, ...], ...] = (
    ("TCP_KEEPIDLE", "TCP_KEEPALIVE"),
    ("TCP_KEEPINTVL",),
    ("TCP_KEEPCNT",),
)


def _keepalive(sock: SetsOptions, keepalive: Keepalive) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for names, value in zip(_KEEPALIVE_OPTIONS, keepalive.whole_seconds(), strict=True):
        option = next((getattr(socket, n) for n in names if hasattr(socket, n)), None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def configure_stream(sock: SetsOptions, options: ConnectionOptions) -> None:
    """A TCP connection's options: no Nagle delay, and the OS's keepalive if asked."""
    with contextlib.suppress(OSError):  # not TCP (a Unix socket adopted): nothing to set
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if options.keepalive is not None:
        _keepalive(sock, options.keepalive)


def prepare_listener(sock: SetsOptions, v6only: bool | None) -> None:
    """A TCP listening socket's options, set before it is bound: the port may be
    taken again at once after a stop, and an IPv6 one is dual stack or not as
    the core says (``None``: IPv4), not as each OS defaults."""
    if sys.platform != "win32":  # there it would let another socket take the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))


def linger_zero(sock: SetsOptions) -> None:
    """Make the coming close a reset (RST): an abort, not a graceful end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def family_of(ip: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, else AF_INET (the core has validated it)."""
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


#: This OS's multicast option numbers and layouts (decided in the core).
MULTICAST_OS = multicast_os(sys.platform, struct.calcsize("P"))


def _apply(sock: SetsOptions, change: GroupChange) -> None:
    level, option, value = change.option(MULTICAST_OS)
    try:
        sock.setsockopt(level, option, value)
    except OSError as exc:
        if not change.done_anyway(exc):
            raise


def apply_changes(sock: SetsOptions, changes: tuple[GroupChange, ...]) -> None:
    """Apply *changes* in order; if one fails, undo those applied and re-raise."""
    done: list[GroupChange] = []
    try:
        for change in changes:
            _apply(sock, change)
            done.append(change)
    except OSError:
        for change in reversed(done):
            with contextlib.suppress(OSError):
                _apply(sock, change.inverse())
        raise


def configure_sender(sock: SetsOptions, family: int, model: SenderModel) -> None:
    """TTL (hops), loopback and outgoing interface of a multicast sending socket."""
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, model.ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(model.loopback))
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, model.ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(model.loopback))
    through = model.interface_option(6 if family == socket.AF_INET6 else 4)
    if through is not None:
        sock.setsockopt(*through)


#: Linux's IP_MULTICAST_ALL / IPV6_MULTICAST_ALL (Python has no names for them).
_MULTICAST_ALL: dict[int, tuple[int, int]] = {
    socket.AF_INET: (socket.IPPROTO_IP, 49),
    socket.AF_INET6: (socket.IPPROTO_IPV6, 29),
}


def prepare_receiver(sock: SetsOptions, family: int, model: ReceiverModel) -> None:
    """Options of a multicast receiving socket, set before it is bound.

    Several receivers may share a port.  On Linux, SO_REUSEADDR is what lets
    them; SO_REUSEPORT would instead spread each datagram to one socket by a
    hash of its source, non-members included.  And Linux by default hands a
    socket bound to a wildcard address every group *any* socket on the host
    joined on that port: MULTICAST_ALL off makes a receiver get only its own.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sys.platform.startswith("linux"):
        level, option = _MULTICAST_ALL[family]
        with contextlib.suppress(OSError):  # kernels older than 2.6.31 (v4) / 4.20 (v6)
            sock.setsockopt(level, option, 0)
    elif hasattr(socket, "SO_REUSEPORT"):  # the BSDs and macOS need it to share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    pktinfo = model.pktinfo
    if pktinfo is not None and hasattr(socket.socket, "recvmsg"):
        with contextlib.suppress(OSError):  # then datagrams just do not say where they came in
            sock.setsockopt(*pktinfo, 1)
