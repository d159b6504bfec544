"""Addresses: ports, IP literals, host names, multicast groups.

Rules of this module:

* a port is an ``int`` (not ``bool``) in 0-65535, else ``TypeError``/``ValueError``;
* a local address is an IPv4 or IPv6 literal, else ``ValueError``;
* a remote address for ``connect`` may also be a host name (resolving it is
  I/O, so the binding does it and a failure becomes code 1006);
* a multicast group is an IPv4 address in 224.0.0.0/4 or an IPv6 address in
  ff00::/8; anything else, unparsable or not a string included, is
  :class:`SocketError` 1004 (the seed's rule for "not a multicast address");
* addresses are returned normalised (``ipaddress``'s compressed form), so
  ``'239.255.0.1'`` and the registry agree on one spelling.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Final

from .errors import ErrorCode, SocketError
from .events import Address

__all__ = [
    "normalize_sockaddr",
    "parse_group",
    "parse_groups",
    "validate_host",
    "validate_ip",
    "validate_port",
    "validate_remote",
]


def validate_port(port: object, *, name: str = "port") -> int:
    """Return *port* if it is an int in 0-65535; else raise naming *name*."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{name} must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{name} must be in 0-65535, got {port}")
    return int(port)


def validate_ip(ip: object, *, name: str = "ip") -> str:
    """Return the normalised IPv4/IPv6 literal *ip*; else raise naming *name*."""
    if not isinstance(ip, str):
        raise TypeError(f"{name} must be a str, not {type(ip).__name__}")
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise ValueError(f"{name} must be an IPv4 or IPv6 address, got {ip!r}") from None


def validate_host(host: object, *, name: str = "ip") -> str:
    """Return *host* for ``connect``: an IP literal (normalised) or a host name."""
    if not isinstance(host, str):
        raise TypeError(f"{name} must be a str, not {type(host).__name__}")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or len(host) > 253 or any(c.isspace() or c in "/\\@" for c in host):
        raise ValueError(f"{name} must be an IP address or a host name, got {host!r}")
    return host


def validate_remote(remote: object, *, name: str = "remote") -> Address:
    """Return the normalised ``(ip, port)`` tuple *remote*."""
    if not isinstance(remote, tuple) or len(remote) < 2:
        raise TypeError(f"{name} must be an (ip, port) tuple, got {remote!r}")
    return (validate_ip(remote[0], name=f"{name}[0]"), validate_port(remote[1], name=f"{name}[1]"))


@functools.lru_cache(maxsize=4096)  # per datagram on a receiver: parse each sender once
def normalize_sockaddr(sockaddr: object) -> Address:
    """``(ip, port)`` from an OS socket address (IPv6 ones have 4 fields)."""
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        raise TypeError(f"not an IP socket address: {sockaddr!r}")
    ip, port = sockaddr[0], sockaddr[1]
    if not isinstance(ip, str) or not isinstance(port, int):
        raise TypeError(f"not an IP socket address: {sockaddr!r}")
    normal = _NORMALIZED.get(ip)
    if normal is None:
        # A scoped IPv6 address ("fe80::1%eth0") keeps its scope: it is part of the name.
        head, sep, scope = ip.partition("%")
        address = ipaddress.ip_address(head)
        # An IPv4 client of a dual-stack socket: its own address, not the mapped one.
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        normal = str(mapped) if mapped is not None else str(address) + sep + scope
        if len(_NORMALIZED) >= _NORMALIZED_KEPT:
            _NORMALIZED.clear()
        _NORMALIZED[ip] = normal
    return (normal, port)


#: Addresses normalised lately, by the OS's spelling: every accept and datagram
#: asks, mostly about the same few peers (bounded: a scan cannot grow it).
_NORMALIZED: dict[str, str] = {}
_NORMALIZED_KEPT: Final = 1024


def parse_group(group: object) -> str:
    """Return the normalised multicast group *group*, else SocketError 1004."""
    if not isinstance(group, str):
        raise SocketError(
            ErrorCode.NOT_MULTICAST,
            TypeError(f"a multicast group must be a str, not {type(group).__name__}"),
        )
    try:
        address = ipaddress.ip_address(group)
    except ValueError as exc:
        raise SocketError(ErrorCode.NOT_MULTICAST, exc) from None
    if not address.is_multicast:
        raise SocketError(
            ErrorCode.NOT_MULTICAST, ValueError(f"{group!r} is not a multicast address")
        )
    return str(address)


def parse_groups(ips: Sequence[object]) -> list[str]:
    """Normalise ``joinGroup``/``dropGroup`` arguments: ``*ips`` or one list/tuple."""
    if len(ips) == 1 and isinstance(ips[0], (list, tuple)):
        ips = ips[0]
    return [parse_group(ip) for ip in ips]
