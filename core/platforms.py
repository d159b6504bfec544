"""Multicast socket options by operating system: numbers and byte layouts.

Python's ``socket`` module names only some of these (before 3.12 it has no
``IP_ADD_SOURCE_MEMBERSHIP``, ``IP_PKTINFO`` or ``MCAST_JOIN_SOURCE_GROUP`` on
Linux), and the structures behind them differ by OS: Linux's
``ip_mreq_source`` puts the interface before the source, the BSDs', macOS's
and Windows' the source first; ``group_source_req`` is padded after its index
except on macOS (``#pragma pack(4)``) and on 32-bit Linux; the BSDs' socket
addresses start with a length byte.  So what to set is computed here, as
``(level, option, value)``, and a binding only calls ``setsockopt`` with it.

The numbers come from each OS's headers (Linux ``<linux/in.h>``,
``<linux/in6.h>``; XNU and FreeBSD ``<netinet/in.h>``, ``<netinet6/in6.h>``;
Windows ``ws2ipdef.h``); a test compares them with Python's names where the
running Python has them.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final, TypeAlias

import attrs

__all__ = ["ANCILLARY_SIZE", "MulticastOS", "SocketOption", "multicast_os"]

#: ``(level, option, value)`` for ``setsockopt``.
SocketOption: TypeAlias = tuple[int, int, int | bytes]

IPPROTO_IP: Final = 0
IPPROTO_IPV6: Final = 41


@attrs.frozen(kw_only=True)
class MulticastOS:
    """One OS's multicast option numbers and structure layouts."""

    name: str
    af_inet6: int
    #: Socket addresses start with a length byte (the BSDs, macOS).
    sa_len: bool
    #: ``ip_mreq_source`` is (group, source, interface), not (group, interface, source).
    source_first: bool
    #: Bytes between ``group_source_req``'s index and its first address.
    gsr_pad: int
    #: ``ip_mreqn`` (with an index) is accepted where ``ip_mreq`` is (Linux).
    mreqn: bool
    #: ``in_pktinfo`` is Windows' ``{address, index}`` (8 bytes), not POSIX's
    #: ``{index, local address, destination}`` (12).
    pktinfo_address_first: bool = False
    ip_multicast_if: int
    ip_add_membership: int
    ip_drop_membership: int
    ip_add_source_membership: int
    ip_drop_source_membership: int
    #: Receive ``in_pktinfo`` (0: the OS has no such option).
    ip_pktinfo: int
    ipv6_multicast_if: int
    ipv6_join_group: int
    ipv6_leave_group: int
    mcast_join_source_group: int
    mcast_leave_source_group: int
    ipv6_recvpktinfo: int
    ipv6_pktinfo: int

    # -- joining and leaving ---------------------------------------------------------

    def membership(
        self, join: bool, group: str, address: str, index: int, source: str | None
    ) -> SocketOption:
        """The option that joins (or leaves) *group* on the interface with
        *index* (IPv4: also its *address*), from *source* only if given."""
        packed = ipaddress.ip_address(group).packed
        if len(packed) == 4:
            local = ipaddress.IPv4Address(address).packed
            if source is not None:
                origin = ipaddress.IPv4Address(source).packed
                body = packed + (origin + local if self.source_first else local + origin)
                option = self.ip_add_source_membership if join else self.ip_drop_source_membership
                return IPPROTO_IP, option, body
            # Linux's ip_mreqn also names the interface by index: exact, and
            # possible for one with no IPv4 address.
            body = packed + local + (struct.pack("=i", index) if self.mreqn else b"")
            return IPPROTO_IP, self.ip_add_membership if join else self.ip_drop_membership, body
        if source is not None:
            body = (
                struct.pack("=I", index)
                + bytes(self.gsr_pad)
                + self._storage(packed, index)
                + self._storage(ipaddress.IPv6Address(source).packed, 0)
            )
            option = self.mcast_join_source_group if join else self.mcast_leave_source_group
            return IPPROTO_IPV6, option, body
        body = packed + struct.pack("=I", index)
        return IPPROTO_IPV6, self.ipv6_join_group if join else self.ipv6_leave_group, body

    def _storage(self, packed: bytes, scope: int) -> bytes:
        """A ``sockaddr_in6`` in a 128-byte ``sockaddr_storage``."""
        if self.sa_len:
            head = struct.pack("=BB", 28, self.af_inet6)
        else:
            head = struct.pack("=H", self.af_inet6)
        address = head + struct.pack("!HI", 0, 0) + packed + struct.pack("=I", scope)
        return address + bytes(128 - len(address))

    # -- sending ---------------------------------------------------------------------

    def multicast_if(self, version: int, address: str, index: int) -> SocketOption:
        """The option that sends through the interface with *index* (IPv4: *address*)."""
        if version == 6:
            return IPPROTO_IPV6, self.ipv6_multicast_if, index
        local = ipaddress.IPv4Address(address).packed
        if self.mreqn and index:
            return IPPROTO_IP, self.ip_multicast_if, bytes(4) + local + struct.pack("=i", index)
        return IPPROTO_IP, self.ip_multicast_if, local

    # -- where a datagram arrived ----------------------------------------------------

    def pktinfo(self, version: int) -> tuple[int, int] | None:
        """``(level, option)`` that asks for where each datagram arrived, if any."""
        if version == 6:
            return IPPROTO_IPV6, self.ipv6_recvpktinfo
        return (IPPROTO_IP, self.ip_pktinfo) if self.ip_pktinfo else None

    def arrival(self, ancdata: object) -> tuple[int, str] | None:
        """``(interface index, destination address)`` from ``recvmsg``'s
        ancillary data, if it holds a packet-info message."""
        if not isinstance(ancdata, list):
            return None
        for item in ancdata:
            if not isinstance(item, tuple) or len(item) != 3:
                continue
            level, kind, data = item
            if not isinstance(data, bytes):
                continue
            if level == IPPROTO_IP and self.ip_pktinfo and kind == self.ip_pktinfo:
                if self.pktinfo_address_first and len(data) >= 8:
                    (index,) = struct.unpack_from("=I", data, 4)
                    return index, str(ipaddress.IPv4Address(data[:4]))
                if not self.pktinfo_address_first and len(data) >= 12:
                    (index,) = struct.unpack_from("=i", data, 0)
                    return index, str(ipaddress.IPv4Address(data[8:12]))
            if level == IPPROTO_IPV6 and kind == self.ipv6_pktinfo and len(data) >= 20:
                (index,) = struct.unpack_from("=I", data, 16)
                return index, str(ipaddress.IPv6Address(data[:16]))
        return None


#: Ancillary buffer ``recvmsg`` needs for one packet-info message of either family.
ANCILLARY_SIZE: Final = 64


def _bsd(name: str, af_inet6: int, gsr_pad: int, ip_pktinfo: int, recv6: int) -> MulticastOS:
    return MulticastOS(
        name=name,
        af_inet6=af_inet6,
        sa_len=True,
        source_first=True,
        gsr_pad=gsr_pad,
        mreqn=False,
        ip_multicast_if=9,
        ip_add_membership=12,
        ip_drop_membership=13,
        ip_add_source_membership=70,
        ip_drop_source_membership=71,
        ip_pktinfo=ip_pktinfo,
        ipv6_multicast_if=9,
        ipv6_join_group=12,
        ipv6_leave_group=13,
        mcast_join_source_group=82,
        mcast_leave_source_group=83,
        ipv6_recvpktinfo=recv6,
        ipv6_pktinfo=46,
    )


def multicast_os(platform: str, word: int) -> MulticastOS:
    """The table for ``sys.platform`` *platform* on a machine of *word*-byte
    pointers; Linux's for an OS not known here (most that are not BSD follow it)."""
    if platform == "darwin":
        # XNU packs group_source_req to 4 bytes; it calls IP_PKTINFO's
        # receiving side IP_RECVPKTINFO, the same number.
        return _bsd("darwin", 30, 0, 26, 61)
    if platform.startswith(("freebsd", "openbsd", "netbsd", "dragonfly")):
        # No IP_PKTINFO (they have IP_RECVDSTADDR/IP_RECVIF instead): the
        # interface of an IPv4 datagram is not reported there.  AF_INET6 is
        # 28 on FreeBSD and DragonFly, 24 on OpenBSD and NetBSD;
        # sockaddr_storage is int64-aligned: padded on 64-bit only.
        af_inet6 = 24 if platform.startswith(("openbsd", "netbsd")) else 28
        return _bsd(platform, af_inet6, 4 if word == 8 else 0, 0, 36)
    if platform == "win32":
        return MulticastOS(
            name="win32",
            af_inet6=23,
            sa_len=False,
            source_first=True,
            gsr_pad=4,  # SOCKADDR_STORAGE is 8-byte aligned on 32-bit Windows too
            mreqn=False,
            ip_multicast_if=9,
            ip_add_membership=12,
            ip_drop_membership=13,
            ip_add_source_membership=15,
            ip_drop_source_membership=16,
            ip_pktinfo=19,
            ipv6_multicast_if=9,
            ipv6_join_group=12,
            ipv6_leave_group=13,
            mcast_join_source_group=45,
            mcast_leave_source_group=46,
            ipv6_recvpktinfo=19,
            ipv6_pktinfo=19,
            pktinfo_address_first=True,
        )
    return MulticastOS(
        name="linux",
        af_inet6=10,
        sa_len=False,
        source_first=False,
        gsr_pad=4 if word == 8 else 0,  # sockaddr_storage is aligned to a long
        mreqn=True,
        ip_multicast_if=32,
        ip_add_membership=35,
        ip_drop_membership=36,
        ip_add_source_membership=39,
        ip_drop_source_membership=40,
        ip_pktinfo=8,
        ipv6_multicast_if=17,
        ipv6_join_group=20,
        ipv6_leave_group=21,
        mcast_join_source_group=46,
        mcast_leave_source_group=47,
        ipv6_recvpktinfo=49,
        ipv6_pktinfo=50,
    )
