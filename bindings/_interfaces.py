"""The host's network interfaces, read for the core (:class:`Interface` records).

Python has no ``getifaddrs``: it is called through ``ctypes`` where libc has
it (Linux, macOS, the BSDs).  Elsewhere (Windows) only names and indexes are
known (``socket.if_nameindex``), with no addresses and no flags: every
interface counts as up and multicast-capable there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import sys
from collections.abc import Sequence

from jfsocket.core import Interface

__all__ = ["host_interfaces"]

_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
#: IFF_MULTICAST: Linux's value, and the BSDs' and macOS's.
_IFF_MULTICAST = 0x1000 if sys.platform.startswith("linux") else 0x8000
#: BSD socket addresses start with a length byte, then a one-byte family.
_SA_LEN = sys.platform == "darwin" or "bsd" in sys.platform or sys.platform == "dragonfly"


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_dstaddr", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _libc() -> ctypes.CDLL | None:
    if sys.platform == "win32":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.getifaddrs.argtypes = [ctypes.POINTER(ctypes.POINTER(_Ifaddrs))]
        libc.freeifaddrs.argtypes = [ctypes.POINTER(_Ifaddrs)]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def _address(pointer: int) -> str | None:
    """The IP address in the ``sockaddr`` at *pointer*, if it is one."""
    head = ctypes.string_at(pointer, 2)
    family = head[1] if _SA_LEN else int.from_bytes(head, sys.byteorder)
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(ctypes.string_at(pointer + 4, 4)))
    if family == socket.AF_INET6:
        return str(ipaddress.IPv6Address(ctypes.string_at(pointer + 8, 16)))
    return None


def _from_getifaddrs(libc: ctypes.CDLL) -> list[Interface]:
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs failed")
    found: dict[str, tuple[int, list[str]]] = {}
    try:
        node = head
        while node:
            entry = node.contents
            name = (entry.ifa_name or b"").decode("utf-8", "surrogateescape")
            flags, addresses = found.setdefault(name, (entry.ifa_flags, []))
            if entry.ifa_addr:
                address = _address(entry.ifa_addr)
                if address is not None and address not in addresses:
                    addresses.append(address)
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    interfaces = []
    for name, (flags, addresses) in found.items():
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue  # gone since
        interfaces.append(
            Interface(
                name=name,
                index=index,
                addresses=tuple(addresses),
                up=bool(flags & _IFF_UP),
                multicast=bool(flags & _IFF_MULTICAST),
                loopback=bool(flags & _IFF_LOOPBACK),
            )
        )
    return sorted(interfaces, key=lambda i: i.index)


def host_interfaces() -> Sequence[Interface]:
    """The host's interfaces now, by index."""
    if _LIBC is not None:
        return _from_getifaddrs(_LIBC)
    return [Interface(name=name, index=index) for index, name in socket.if_nameindex()]
