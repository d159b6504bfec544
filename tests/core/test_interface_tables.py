"""Interfaces, socket option layouts and the multicast model's interface paths,
on made-up tables: naming an interface, what ``setsockopt`` gets on each OS,
where a datagram arrived, memberships by interface and source."""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

import pytest
from jfsocket.core import (
    ALL,
    Dispatcher,
    ErrorCode,
    Interface,
    Membership,
    ReceiverModel,
    SenderModel,
    SocketError,
    multicast_os,
)
from jfsocket.core.callbacks import CallbackRegistry, Role
from jfsocket.core.interfaces import Resolved, resolve_interfaces, validate_interface_spec

LO = Interface(name="lo", index=1, addresses=("127.0.0.1", "::1"), loopback=True)
ETH = Interface(name="eth0", index=2, addresses=("127.100.0.1", "fe80::1"))
V6 = Interface(name="v6only", index=3, addresses=("fd00:db8::1",))
DOWN = Interface(name="down", index=4, addresses=("127.109.0.1",), up=False)
TABLE = (LO, ETH, V6, DOWN)
LINUX = multicast_os("linux", 8)
DARWIN = multicast_os("darwin", 8)
FREEBSD = multicast_os("freebsd14", 8)


def table() -> tuple[Interface, ...]:
    return TABLE


def _unknown(call: object) -> None:
    with pytest.raises(SocketError) as info:
        call()  # type: ignore[operator]
    assert info.value.errno == ErrorCode.ADDRESS_UNAVAILABLE


# -- naming an interface -----------------------------------------------------------------


def test_interface_records() -> None:
    """Families and first addresses; ALL shows as ALL."""
    assert ETH.has_family(4) and ETH.has_family(6) and not V6.has_family(4)
    assert ETH.first_address(6) == "fe80::1" and V6.first_address(4) is None
    assert repr(ALL) == "ALL"


@pytest.mark.parametrize(
    ("spec", "normal"),
    [
        (ALL, ALL),
        (3, 3),
        ("eth0", "eth0"),
        ("fe80::1%eth0", "fe80::1"),
        ("127.100.0.001", "127.100.0.001"),
    ],
)
def test_specs_are_normalised(spec: object, normal: object) -> None:
    """Addresses lose their scope; names and indexes stay (a bad literal is a name)."""
    assert validate_interface_spec(spec) == normal


@pytest.mark.parametrize(
    ("spec", "error"), [(True, TypeError), (1.5, TypeError), (-1, ValueError), ("", ValueError)]
)
def test_bad_specs(spec: object, error: type[Exception]) -> None:
    """Wrong types, negative indexes and empty names are the caller's mistake."""
    with pytest.raises(error):
        validate_interface_spec(spec, name="iface")


def test_resolving_on_a_table() -> None:
    """The OS's choice needs no table; ALL is every up multicast one of the family;
    an index, an address or a name picks one; anything else is 1007."""
    (any4,) = resolve_interfaces("0.0.0.0", 4, table)
    assert (any4.interface, any4.key, any4.index) == (None, "0.0.0.0", 0)
    assert resolve_interfaces(0, 6, table) == [Resolved(None, "::")]
    assert [r.key for r in resolve_interfaces(ALL, 4, table)] == ["lo", "eth0"]
    assert [r.address for r in resolve_interfaces(ALL, 6, table)] == [
        "::1",
        "fe80::1",
        "fd00:db8::1",
    ]
    assert resolve_interfaces(2, 4, table) == [Resolved(ETH, "127.100.0.1")]
    assert resolve_interfaces(3, 4, table) == [Resolved(V6, "0.0.0.0")]
    assert resolve_interfaces("fe80::1", 4, table) == [Resolved(ETH, "127.100.0.1")]
    assert resolve_interfaces("127.100.0.1", 4, table)[0].index == 2
    assert resolve_interfaces("eth0", 6, table) == [Resolved(ETH, "fe80::1")]
    _unknown(lambda: resolve_interfaces(9, 4, table))
    _unknown(lambda: resolve_interfaces("127.107.7.7", 4, table))
    _unknown(lambda: resolve_interfaces("wlan9", 4, table))
    _unknown(lambda: resolve_interfaces(ALL, 4, lambda: (V6,)))
    # A host whose addresses cannot be read: an address is taken as given.
    assert resolve_interfaces("127.107.7.7", 4, lambda: ()) == [Resolved(None, "127.107.7.7")]


# -- what setsockopt gets ----------------------------------------------------------------


def _packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def test_ipv4_memberships_by_os() -> None:
    """Linux: ip_mreqn (with the index); BSDs: ip_mreq; source-specific: the
    interface and source in each OS's order."""
    group, local, source = _packed("239.255.1.1"), _packed("127.100.0.1"), _packed("127.100.0.9")
    assert LINUX.membership(True, "239.255.1.1", "127.100.0.1", 2, None) == (
        0,
        35,
        group + local + struct.pack("=i", 2),
    )
    assert LINUX.membership(False, "239.255.1.1", "127.100.0.1", 2, None)[1] == 36
    assert DARWIN.membership(True, "239.255.1.1", "127.100.0.1", 2, None) == (0, 12, group + local)
    assert LINUX.membership(True, "232.1.1.1", "127.100.0.1", 2, "127.100.0.9") == (
        0,
        39,
        _packed("232.1.1.1") + local + source,
    )
    assert DARWIN.membership(False, "232.1.1.1", "127.100.0.1", 2, "127.100.0.9") == (
        0,
        71,
        _packed("232.1.1.1") + source + local,
    )


def test_ipv6_memberships_by_os() -> None:
    """ipv6_mreq by index; group_source_req with each OS's padding and sockaddr form."""
    group = _packed("ff15::1")
    assert LINUX.membership(True, "ff15::1", "::", 3, None) == (
        41,
        20,
        group + struct.pack("=I", 3),
    )
    assert LINUX.membership(False, "ff15::1", "::", 3, None)[1] == 21
    level, option, body = LINUX.membership(True, "ff35::1", "::", 3, "fd00:db8::9")
    assert isinstance(body, bytes)
    assert (level, option, len(body)) == (41, 46, 4 + 4 + 128 + 128)
    assert body[:8] == struct.pack("=I", 3) + bytes(4)
    assert body[8:10] == struct.pack("=H", 10) and body[16:32] == _packed("ff35::1")
    assert body[136 + 8 : 136 + 24] == _packed("fd00:db8::9")
    level, option, body = DARWIN.membership(False, "ff35::1", "::", 3, "fd00:db8::9")
    assert isinstance(body, bytes)
    assert (option, len(body)) == (83, 4 + 128 + 128)
    assert body[4:6] == struct.pack("=BB", 28, 30)
    assert multicast_os("linux", 4).gsr_pad == 0


def test_sending_interface_and_pktinfo_by_os() -> None:
    """IP_MULTICAST_IF: ip_mreqn with an index on Linux, the address elsewhere;
    IPv6 by index; packet info where the OS has it."""
    local = _packed("127.100.0.1")
    assert LINUX.multicast_if(4, "127.100.0.1", 2) == (
        0,
        32,
        bytes(4) + local + struct.pack("=i", 2),
    )
    assert LINUX.multicast_if(4, "127.100.0.1", 0) == (0, 32, local)
    assert DARWIN.multicast_if(4, "127.100.0.1", 2) == (0, 9, local)
    assert LINUX.multicast_if(6, "::", 5) == (41, 17, 5)
    assert LINUX.pktinfo(4) == (0, 8) and LINUX.pktinfo(6) == (41, 49)
    assert FREEBSD.pktinfo(4) is None and FREEBSD.pktinfo(6) == (41, 36)
    assert multicast_os("win32", 8).ip_pktinfo == 19


def test_where_a_datagram_arrived() -> None:
    """in_pktinfo and in6_pktinfo read back; anything else is no answer."""
    v4 = struct.pack("=i", 2) + bytes(4) + _packed("239.255.1.1")
    v6 = _packed("ff15::1") + struct.pack("=I", 3)
    assert LINUX.arrival([(0, 8, v4)]) == (2, "239.255.1.1")
    assert LINUX.arrival([("junk",), (41, 1, b"x"), (41, 50, v6)]) == (3, "ff15::1")
    assert LINUX.arrival([(0, 8, "not bytes")]) is None
    assert LINUX.arrival(None) is None


@pytest.mark.skipif(sys.platform != "linux", reason="Linux's numbers, compared with Python's")
def test_linux_numbers_are_pythons() -> None:
    """Where Python names an option, its number is the table's."""
    for name, ours in (
        ("IP_ADD_MEMBERSHIP", LINUX.ip_add_membership),
        ("IP_DROP_MEMBERSHIP", LINUX.ip_drop_membership),
        ("IP_MULTICAST_IF", LINUX.ip_multicast_if),
        ("IPV6_JOIN_GROUP", LINUX.ipv6_join_group),
        ("IPV6_LEAVE_GROUP", LINUX.ipv6_leave_group),
        ("IPV6_MULTICAST_IF", LINUX.ipv6_multicast_if),
        ("IPV6_RECVPKTINFO", LINUX.ipv6_recvpktinfo),
        ("IPV6_PKTINFO", LINUX.ipv6_pktinfo),
    ):
        assert getattr(socket, name, ours) == ours, name


# -- the models on a table ---------------------------------------------------------------


def test_receiver_memberships_by_interface_and_source() -> None:
    """Joins on named interfaces and from a source; a source of the wrong kind,
    link-scoped groups without an interface, mixing any-source and
    source-specific: refused; ALL leaves a group everywhere."""
    rx = ReceiverModel("rx", 5000, interfaces=table, system=LINUX)
    plan = rx.plan_join("239.255.1.1", interface="eth0")
    assert plan.members[0][1].option(LINUX)[1] == 35
    rx.commit(plan)
    rx.commit(rx.plan_join("232.1.1.1", interface=2, source="127.100.0.9"))
    assert rx.memberships == [
        Membership("239.255.1.1", "eth0"),
        Membership("232.1.1.1", "eth0", "127.100.0.9"),
    ]
    for source, error in ((5, TypeError), ("nope", ValueError), ("::1", ValueError)):
        with pytest.raises(error):
            rx.plan_join("232.1.1.2", source=source)
    with pytest.raises(SocketError) as info:
        rx.plan_join("232.1.1.1", interface="eth0")  # any-source beside source-specific
    assert info.value.errno == ErrorCode.ADDRESS_EXISTS
    with pytest.raises(SocketError):  # all or nothing: eth0 is joined already
        rx.plan_join("239.255.1.1", interface=ALL)
    rx.commit(rx.plan_join("239.255.1.1", interface="127.0.0.1"))
    assert len(rx.memberships) == 3
    rx.commit(rx.plan_drop("239.255.1.1", interface=ALL))
    assert rx.groups == ["232.1.1.1"]
    rx6 = ReceiverModel("rx6", ("::", 5000), interfaces=table, system=LINUX)
    with pytest.raises(ValueError, match="link-scoped"):
        rx6.plan_join("ff02::1")
    with pytest.raises(ValueError, match="one interface"):
        ReceiverModel("bad", 5000, interface=ALL)


def test_receiver_says_where_datagrams_arrived() -> None:
    """From ancillary data, or from a binding that knows; an index not in the
    table is looked up again, then named ''."""
    registry = CallbackRegistry(Role.RECEIVER)
    rx = ReceiverModel("rx", 5000, interfaces=table, system=LINUX)
    assert rx.pktinfo == (0, 8)
    assert rx.ancillary(Dispatcher(registry)) == 0
    v4 = struct.pack("=i", 2) + bytes(4) + _packed("239.255.1.1")
    (got,) = rx.receive_datagram(b"x", ("127.100.0.9", 1), ancdata=[(0, 8, v4)])
    assert got.interface == ETH and got.group == "239.255.1.1"  # type: ignore[union-attr]
    (got,) = rx.receive_datagram(b"x", ("127.100.0.9", 1), arrival=(42, "239.255.1.1"))
    assert got.interface == Interface(name="", index=42)  # type: ignore[union-attr]
    (got,) = rx.receive_datagram(b"x", ("127.100.0.9", 1))
    assert got.interface is None  # type: ignore[union-attr]


def test_sender_interface_options() -> None:
    """A sender through a named interface: the option for each family (an IPv6
    address names the interface's IPv4 one); ALL is refused; validated remotes
    are remembered, a bounded number of them."""
    sender = SenderModel("tx", interface="fe80::1", interfaces=table, system=LINUX)
    assert sender.interface_option(6) == (41, 17, 2)
    assert sender.interface_option(4) == (
        0,
        32,
        bytes(4) + _packed("127.100.0.1") + struct.pack("=i", 2),
    )
    assert SenderModel("tx").interface_option(4) is None
    with pytest.raises(ValueError, match="one interface"):
        SenderModel("tx", interface=ALL)
    plain = SenderModel("tx")
    for port in range(1, 300):
        plain.send(("239.255.1.1", port), b"x")
    assert plain.send(("239.255.1.1", 1), b"y")[2] == ("239.255.1.1", 1)
