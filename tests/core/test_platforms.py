"""Multicast options by OS (:mod:`jfsocket.core.platforms`), against the C headers.

The expected numbers are a table written here from each OS's headers (Linux
``<linux/in.h>``, ``<linux/in6.h>``, ``<linux/socket.h>``; XNU and FreeBSD
``<sys/socket.h>``, ``<netinet/in.h>``, ``<netinet6/in6.h>``; Windows
``ws2def.h``, ``ws2ipdef.h``), and the expected bytes are built here field by
field from the C structures, not by the code under test.  On the running
platform the numbers are also compared with Python's ``socket`` constants.
No socket is created (``socket.inet_pton`` only converts text).
"""

from __future__ import annotations

import socket
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jfsocket.core import (
    GroupChange,
    Interface,
    MulticastOS,
    Received,
    ReceiverModel,
    multicast_os,
)

IPPROTO_IP = 0
IPPROTO_IPV6 = 41

#: Option numbers from the headers (IP_PKTINFO 0: the OS has none; FreeBSD
#: has IP_RECVDSTADDR/IP_RECVIF instead).  Darwin's IP_RECVPKTINFO and
#: IP_PKTINFO are both 26; Windows turns IPv6 packet info on with
#: IPV6_PKTINFO itself (it has no IPV6_RECVPKTINFO).
HEADERS: dict[str, dict[str, int]] = {
    "linux": {
        "af_inet6": 10,
        "ip_multicast_if": 32,
        "ip_add_membership": 35,
        "ip_drop_membership": 36,
        "ip_add_source_membership": 39,
        "ip_drop_source_membership": 40,
        "ip_pktinfo": 8,
        "ipv6_multicast_if": 17,
        "ipv6_join_group": 20,  # IPV6_ADD_MEMBERSHIP
        "ipv6_leave_group": 21,  # IPV6_DROP_MEMBERSHIP
        "mcast_join_source_group": 46,
        "mcast_leave_source_group": 47,
        "ipv6_recvpktinfo": 49,
        "ipv6_pktinfo": 50,
    },
    "darwin": {
        "af_inet6": 30,
        "ip_multicast_if": 9,
        "ip_add_membership": 12,
        "ip_drop_membership": 13,
        "ip_add_source_membership": 70,
        "ip_drop_source_membership": 71,
        "ip_pktinfo": 26,
        "ipv6_multicast_if": 9,
        "ipv6_join_group": 12,
        "ipv6_leave_group": 13,
        "mcast_join_source_group": 82,
        "mcast_leave_source_group": 83,
        "ipv6_recvpktinfo": 61,  # RFC 3542's; 36 elsewhere, but not on XNU
        "ipv6_pktinfo": 46,
    },
    "freebsd": {
        "af_inet6": 28,
        "ip_multicast_if": 9,
        "ip_add_membership": 12,
        "ip_drop_membership": 13,
        "ip_add_source_membership": 70,
        "ip_drop_source_membership": 71,
        "ip_pktinfo": 0,
        "ipv6_multicast_if": 9,
        "ipv6_join_group": 12,
        "ipv6_leave_group": 13,
        "mcast_join_source_group": 82,
        "mcast_leave_source_group": 83,
        "ipv6_recvpktinfo": 36,
        "ipv6_pktinfo": 46,
    },
    "win32": {
        "af_inet6": 23,
        "ip_multicast_if": 9,
        "ip_add_membership": 12,
        "ip_drop_membership": 13,
        "ip_add_source_membership": 15,
        "ip_drop_source_membership": 16,
        "ip_pktinfo": 19,
        "ipv6_multicast_if": 9,
        "ipv6_join_group": 12,  # IPV6_ADD_MEMBERSHIP
        "ipv6_leave_group": 13,  # IPV6_DROP_MEMBERSHIP
        "mcast_join_source_group": 45,
        "mcast_leave_source_group": 46,
        "ipv6_recvpktinfo": 19,
        "ipv6_pktinfo": 19,
    },
}

#: ``(platform, word)`` → the key of :data:`HEADERS`, and the bytes between
#: ``group_source_req``'s ``uint32_t gsr_interface`` and its first
#: ``sockaddr_storage``: that storage is aligned to a ``long``/pointer on Linux
#: (none on 32-bit), to 8 on FreeBSD/amd64 and Windows (``__ss_align`` is
#: 64-bit), and XNU declares the struct under ``#pragma pack(4)``.
SYSTEMS: dict[str, tuple[str, int, str, int]] = {
    "linux-64": ("linux", 8, "linux", 4),
    "linux-32": ("linux", 4, "linux", 0),
    "darwin": ("darwin", 8, "darwin", 0),
    "freebsd": ("freebsd14", 8, "freebsd", 4),
    "win32": ("win32", 8, "win32", 4),
}
#: The BSDs' socket addresses open with a length byte, then a one-byte family.
BSD_SA_LEN = {"darwin", "freebsd"}
#: ip_mreq_source field order after the group: Linux (interface, source),
#: the others (source, interface).
LINUX_SOURCE_ORDER = {"linux"}

GROUP4, LOCAL4, SOURCE4 = "239.255.2.3", "127.0.2.10", "127.51.100.7"
GROUP6, SOURCE6 = "ff3e::1234", "fd00:db8::7"


def _in4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def _in6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def _system(key: str) -> tuple[MulticastOS, str, int]:
    platform, word, headers, pad = SYSTEMS[key]
    return multicast_os(platform, word), headers, pad


def _sockaddr_storage_in6(headers: str, address: str, scope: int) -> bytes:
    """``struct sockaddr_in6`` (28 bytes) at the start of a 128-byte ``sockaddr_storage``."""
    family = HEADERS[headers]["af_inet6"]
    # BSD: uint8_t sin6_len, uint8_t sin6_family; else an unsigned short family
    bsd = headers in BSD_SA_LEN
    head = struct.pack("=BB", 28, family) if bsd else struct.pack("=H", family)
    port_flow = struct.pack("!HI", 0, 0)  # in_port_t sin6_port, uint32_t sin6_flowinfo
    sin6 = head + port_flow + _in6(address) + struct.pack("=I", scope)  # sin6_scope_id
    assert len(sin6) == 28
    return sin6 + b"\0" * (128 - 28)


def _expected(
    headers: str, pad: int, join: bool, group: str, index: int, source: str | None
) -> tuple[int, int, bytes]:
    """What setsockopt must get, built from the C structures."""
    numbers = HEADERS[headers]
    if ":" not in group:
        if source is None:
            name = "ip_add_membership" if join else "ip_drop_membership"
            body = _in4(group) + _in4(LOCAL4)  # ip_mreq { imr_multiaddr; imr_interface; }
            if headers == "linux":  # ip_mreqn { ...; imr_address; int imr_ifindex; }
                body += struct.pack("=i", index)
            return IPPROTO_IP, numbers[name], body
        name = "ip_add_source_membership" if join else "ip_drop_source_membership"
        if headers in LINUX_SOURCE_ORDER:  # imr_multiaddr, imr_interface, imr_sourceaddr
            body = _in4(group) + _in4(LOCAL4) + _in4(source)
        else:  # imr_multiaddr, imr_sourceaddr, imr_interface
            body = _in4(group) + _in4(source) + _in4(LOCAL4)
        return IPPROTO_IP, numbers[name], body
    if source is None:
        name = "ipv6_join_group" if join else "ipv6_leave_group"
        # ipv6_mreq { struct in6_addr ipv6mr_multiaddr; unsigned int ipv6mr_interface; }
        return IPPROTO_IPV6, numbers[name], _in6(group) + struct.pack("=I", index)
    name = "mcast_join_source_group" if join else "mcast_leave_source_group"
    # group_source_req { uint32_t gsr_interface; [pad] sockaddr_storage gsr_group, gsr_source; }
    body = (
        struct.pack("=I", index)
        + b"\0" * pad
        + _sockaddr_storage_in6(headers, group, index)
        + _sockaddr_storage_in6(headers, source, 0)
    )
    assert len(body) == 4 + pad + 256
    return IPPROTO_IPV6, numbers[name], body


# -- the numbers ----------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_option_numbers_match_the_headers(key: str) -> None:
    """Every option number and AF_INET6 of the OS's table is the headers' value."""
    system, headers, _ = _system(key)
    got = {field: getattr(system, field) for field in HEADERS[headers]}
    assert got == HEADERS[headers]


@pytest.mark.parametrize(
    ("key", "sa_len", "source_first", "mreqn", "pad"),
    [
        ("linux-64", False, False, True, 4),
        ("linux-32", False, False, True, 0),
        ("darwin", True, True, False, 0),
        ("freebsd", True, True, False, 4),
        ("win32", False, True, False, 4),
    ],
)
def test_layout_flags(key: str, sa_len: bool, source_first: bool, mreqn: bool, pad: int) -> None:
    """Length byte, ip_mreq_source order, ip_mreqn and group_source_req padding per OS."""
    system, _, _ = _system(key)
    assert (system.sa_len, system.source_first, system.mreqn, system.gsr_pad) == (
        sa_len,
        source_first,
        mreqn,
        pad,
    )


def test_unknown_platforms_follow_linux_and_bsds_follow_freebsd() -> None:
    """An unknown platform gets Linux's numbers; the BSD family names share FreeBSD's options."""
    assert multicast_os("sunos5", 8).ip_add_membership == HEADERS["linux"]["ip_add_membership"]
    assert multicast_os("linux", 8).name == "linux"
    for platform in ("freebsd13", "dragonfly6"):
        system = multicast_os(platform, 8)
        assert system.af_inet6 == HEADERS["freebsd"]["af_inet6"]
        assert system.mcast_join_source_group == 82 and system.sa_len


@pytest.mark.parametrize("platform", ["openbsd7", "netbsd10"])
def test_openbsd_and_netbsd_af_inet6(platform: str) -> None:
    """OpenBSD's and NetBSD's sockaddr_in6 carries their own AF_INET6, 24."""
    assert multicast_os(platform, 8).af_inet6 == 24


#: Python's constant name → the field of :class:`MulticastOS` it must equal.
PYTHON_NAMES = {
    "AF_INET6": "af_inet6",
    "IP_ADD_MEMBERSHIP": "ip_add_membership",
    "IP_DROP_MEMBERSHIP": "ip_drop_membership",
    "IP_MULTICAST_IF": "ip_multicast_if",
    "IPV6_JOIN_GROUP": "ipv6_join_group",
    "IPV6_LEAVE_GROUP": "ipv6_leave_group",
    "IPV6_MULTICAST_IF": "ipv6_multicast_if",
    "IPV6_RECVPKTINFO": "ipv6_recvpktinfo",
    "IPV6_PKTINFO": "ipv6_pktinfo",
    "IP_PKTINFO": "ip_pktinfo",
    "IP_ADD_SOURCE_MEMBERSHIP": "ip_add_source_membership",
    "IP_DROP_SOURCE_MEMBERSHIP": "ip_drop_source_membership",
    "MCAST_JOIN_SOURCE_GROUP": "mcast_join_source_group",
    "MCAST_LEAVE_SOURCE_GROUP": "mcast_leave_source_group",
}


def _running() -> MulticastOS:
    return multicast_os(sys.platform, struct.calcsize("P"))


def test_numbers_match_python_on_this_platform() -> None:
    """Where the running Python names an option, the core's number for this OS is the same."""
    system = _running()
    present = {name: field for name, field in PYTHON_NAMES.items() if hasattr(socket, name)}
    assert present, "this Python names none of the options"
    assert {n: getattr(system, f) for n, f in present.items()} == {
        n: getattr(socket, n) for n in present
    }
    assert (socket.IPPROTO_IP, socket.IPPROTO_IPV6) == (IPPROTO_IP, IPPROTO_IPV6)


def test_header_table_matches_python_on_this_platform() -> None:
    """This file's own header table agrees with the running Python (it is checked too)."""
    key = next((k for k in HEADERS if sys.platform.startswith(k)), None)
    if key is None:
        pytest.skip(f"no header table here for {sys.platform}")
    present = [name for name in PYTHON_NAMES if hasattr(socket, name)]
    assert present
    assert {n: HEADERS[key][PYTHON_NAMES[n]] for n in present} == {
        n: getattr(socket, n) for n in present
    }


# -- the structures -------------------------------------------------------------

CASES = {
    "ip_mreq(n)": (GROUP4, None),
    "ip_mreq_source": (GROUP4, SOURCE4),
    "ipv6_mreq": (GROUP6, None),
    "group_source_req": (GROUP6, SOURCE6),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("join", [True, False], ids=["join", "leave"])
@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_membership_bytes(key: str, join: bool, case: str) -> None:
    """membership() is the OS's structure, byte for byte, under the right option."""
    system, headers, pad = _system(key)
    group, source = CASES[case]
    index = 0x0203  # two non-zero bytes: byte order and position both show
    expected = _expected(headers, pad, join, group, index, source)
    assert system.membership(join, group, LOCAL4, index, source) == expected
    change = GroupChange(
        join=join, group=group, interface="eth0", address=LOCAL4, index=index, source=source
    )
    assert change.option(system) == expected
    assert change.inverse().option(system)[1] != expected[1]  # leave vs join


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_structure_sizes(key: str) -> None:
    """The structures have the sizes C gives them (8/12, 12, 20, 260/264 bytes)."""
    system, headers, pad = _system(key)
    sizes = [
        len(system.membership(True, GROUP4, LOCAL4, 2, None)[2]),  # type: ignore[arg-type]
        len(system.membership(True, GROUP4, LOCAL4, 2, SOURCE4)[2]),  # type: ignore[arg-type]
        len(system.membership(True, GROUP6, "0.0.0.0", 2, None)[2]),  # type: ignore[arg-type]
        len(system.membership(True, GROUP6, "0.0.0.0", 2, SOURCE6)[2]),  # type: ignore[arg-type]
    ]
    assert sizes == [12 if headers == "linux" else 8, 12, 20, 260 + pad]


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_multicast_if(key: str) -> None:
    """IP_MULTICAST_IF takes ip_mreqn (Linux, with an index) or in_addr; IPv6 an index."""
    system, headers, _ = _system(key)
    numbers = HEADERS[headers]
    if headers == "linux":
        with_index = bytes(4) + _in4(LOCAL4) + struct.pack("=i", 5)
    else:
        with_index = _in4(LOCAL4)
    assert system.multicast_if(4, LOCAL4, 5) == (IPPROTO_IP, numbers["ip_multicast_if"], with_index)
    assert system.multicast_if(4, LOCAL4, 0) == (
        IPPROTO_IP,
        numbers["ip_multicast_if"],
        _in4(LOCAL4),
    )
    assert system.multicast_if(6, "::", 5) == (IPPROTO_IPV6, numbers["ipv6_multicast_if"], 5)


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_pktinfo_option(key: str) -> None:
    """The option that asks where datagrams arrived: none for IPv4 where the OS lacks one."""
    system, headers, _ = _system(key)
    numbers = HEADERS[headers]
    expected4 = (IPPROTO_IP, numbers["ip_pktinfo"]) if numbers["ip_pktinfo"] else None
    assert system.pktinfo(4) == expected4
    assert system.pktinfo(6) == (IPPROTO_IPV6, numbers["ipv6_recvpktinfo"])


# -- where a datagram arrived ---------------------------------------------------


def _in_pktinfo(index: int, spec_dst: str, addr: str) -> bytes:
    """POSIX ``struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }``."""
    return struct.pack("=i", index) + _in4(spec_dst) + _in4(addr)


def _in6_pktinfo(addr: str, index: int) -> bytes:
    """``struct in6_pktinfo { struct in6_addr ipi6_addr; unsigned int ipi6_ifindex; }``."""
    return _in6(addr) + struct.pack("=I", index)


@pytest.mark.parametrize("key", ["linux-64", "linux-32", "darwin"])
def test_arrival_ipv4(key: str) -> None:
    """in_pktinfo gives its index and header destination (ipi_addr, not ipi_spec_dst)."""
    system, headers, _ = _system(key)
    kind = HEADERS[headers]["ip_pktinfo"]
    data = _in_pktinfo(0x0102, LOCAL4, GROUP4)
    assert system.arrival([(IPPROTO_IP, kind, data)]) == (0x0102, GROUP4)


@pytest.mark.parametrize("key", sorted(SYSTEMS))
def test_arrival_ipv6(key: str) -> None:
    """in6_pktinfo gives its index and destination on every OS."""
    system, headers, _ = _system(key)
    kind = HEADERS[headers]["ipv6_pktinfo"]
    data = _in6_pktinfo("ff02::fb", 0x0304)
    assert system.arrival([(IPPROTO_IPV6, kind, data)]) == (0x0304, "ff02::fb")


def test_arrival_ipv4_windows_layout() -> None:
    """Windows' 8-byte IN_PKTINFO (address, then index) is read as such."""
    system, _, _ = _system("win32")
    data = _in4(GROUP4) + struct.pack("=I", 7)
    assert system.arrival([(IPPROTO_IP, 19, data)]) == (7, GROUP4)


def test_arrival_without_ip_pktinfo_reads_no_ipv4() -> None:
    """Where the OS has no IP_PKTINFO, no IPv4 ancillary message is taken for one."""
    system, _, _ = _system("freebsd")
    assert system.arrival([(IPPROTO_IP, 0, _in_pktinfo(3, LOCAL4, GROUP4))]) is None


def test_arrival_skips_other_messages_and_takes_the_first_pktinfo() -> None:
    """Unrelated, malformed and short items are skipped; the first packet info wins."""
    system, _, _ = _system("linux-64")
    v4 = _in_pktinfo(2, LOCAL4, GROUP4)
    v6 = _in6_pktinfo("ff05::1", 4)
    ancdata: list[object] = [
        (IPPROTO_IP, 2, b"\x40\0\0\0"),  # IP_TTL
        (IPPROTO_IP, 8, v4[:11]),  # short
        (IPPROTO_IPV6, 50, v6[:19]),  # short
        (IPPROTO_IP, 8),  # not a triple
        "junk",
        (IPPROTO_IP, 8, "not bytes"),
        (IPPROTO_IPV6, 8, v4),  # IP_PKTINFO's number at the IPv6 level
        (IPPROTO_IP, 50, v6),  # IPV6_PKTINFO's number at the IPv4 level
        (IPPROTO_IPV6, 50, v6),
        (IPPROTO_IP, 8, v4),
    ]
    assert system.arrival(ancdata) == (4, "ff05::1")
    assert system.arrival(ancdata[:-2]) is None
    assert system.arrival([(IPPROTO_IP, 8, v4 + b"extra")]) == (2, GROUP4)


@pytest.mark.parametrize("ancdata", [None, (), [], b"", "x", 5, ((0, 8, bytes(12)),), {}])
def test_arrival_of_non_lists(ancdata: object) -> None:
    """Anything but a list of triples says nothing."""
    assert multicast_os("linux", 8).arrival(ancdata) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 41, 1, -1]), st.integers(-1, 70), st.binary(max_size=40)),
        max_size=4,
    ),
    st.sampled_from(sorted(SYSTEMS)),
)
def test_arrival_never_raises(ancdata: list[tuple[int, int, bytes]], key: str) -> None:
    """Random ancillary data gives None or an (index, address) pair, never an exception."""
    system, _, _ = _system(key)
    result = system.arrival(list(ancdata))
    if result is not None:
        index, address = result
        assert isinstance(index, int)
        assert socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


# -- a receiver's Received ----------------------------------------------------

ETH0 = Interface(name="eth0", index=2, addresses=("127.0.2.10", "fd00:db8::10"))
LO = Interface(name="lo", index=1, addresses=("127.0.0.1", "::1"))


class CountingTable:
    """A fake table that counts its readings."""

    def __init__(self, *interfaces: Interface) -> None:
        self.interfaces = list(interfaces)
        self.reads = 0

    def __call__(self) -> list[Interface]:
        self.reads += 1
        return list(self.interfaces)


def test_received_says_where_it_arrived() -> None:
    """A datagram's in_pktinfo fills Received.interface (from the table) and .group."""
    table = CountingTable(LO, ETH0)
    model = ReceiverModel("rx", 5000, interfaces=table, system=multicast_os("linux", 8))
    ancdata = [(IPPROTO_IP, 8, _in_pktinfo(2, LOCAL4, GROUP4))]
    (event,) = model.receive_datagram(b"hi", ("127.0.2.77", 4000), ancdata=ancdata)
    assert isinstance(event, Received)
    assert (event.interface, event.group, event.data) == (ETH0, GROUP4, "hi")
    assert event.interface is not None and event.interface.name == "eth0"
    reads = table.reads
    model.receive_datagram(b"again", ("127.0.2.77", 4000), ancdata=ancdata)
    assert table.reads == reads  # a known index needs no new reading


def test_received_ipv6_on_darwin() -> None:
    """An IPv6 receiver on macOS reads in6_pktinfo under IPV6_PKTINFO 46."""
    table = CountingTable(LO, ETH0)
    model = ReceiverModel("rx", ("::", 5000), interfaces=table, system=multicast_os("darwin", 8))
    ancdata = [(IPPROTO_IPV6, 46, _in6_pktinfo("ff02::1:3", 1))]
    (event,) = model.receive_datagram(b"x", ("fe80::9", 4000), ancdata=ancdata)
    assert isinstance(event, Received)
    assert (event.interface, event.group) == (LO, "ff02::1:3")


def test_received_from_an_unknown_index() -> None:
    """An index the cache lacks reads the table once more; still unknown: a nameless record."""
    table = CountingTable(LO)
    model = ReceiverModel("rx", 5000, interfaces=table, system=multicast_os("linux", 8))
    before = table.reads
    table.interfaces.append(ETH0)  # appeared since: found by the extra reading
    (event,) = model.receive_datagram(
        b"x", ("127.0.2.1", 1), ancdata=[(IPPROTO_IP, 8, _in_pktinfo(2, LOCAL4, GROUP4))]
    )
    assert isinstance(event, Received) and event.interface == ETH0
    assert table.reads == before + 1
    (event,) = model.receive_datagram(
        b"x", ("127.0.2.1", 1), ancdata=[(IPPROTO_IP, 8, _in_pktinfo(42, LOCAL4, GROUP4))]
    )
    assert isinstance(event, Received)
    assert event.interface == Interface(name="", index=42)
    assert event.group == GROUP4
    assert table.reads == before + 2


@pytest.mark.parametrize(
    "ancdata", [None, [], [(IPPROTO_IP, 8, b"short")], [(IPPROTO_IP, 2, bytes(12))]]
)
def test_received_without_packet_info(ancdata: object) -> None:
    """No (or no usable) packet info: interface and group stay None, the table unread."""
    table = CountingTable(ETH0)
    model = ReceiverModel("rx", 5000, interfaces=table, system=multicast_os("linux", 8))
    (event,) = model.receive_datagram(b"x", ("127.0.2.1", 1), ancdata=ancdata)
    assert isinstance(event, Received)
    assert (event.interface, event.group) == (None, None)
    assert table.reads == 0
