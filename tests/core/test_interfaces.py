"""Naming an interface (:mod:`jfsocket.core.interfaces`) on made-up tables.

The tables are written here by hand (or generated), never read from the host:
by name, index and address; unknown ones (1007); wrong types; :data:`ALL`; the
unspecified address and index 0, which need no table; a host whose addresses
the binding cannot read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jfsocket.core import ALL, Interface, SocketError
from jfsocket.core.interfaces import Resolved, resolve_interfaces, validate_interface_spec

LO = Interface(name="lo", index=1, addresses=("127.0.0.1", "::1"), loopback=True)
#: Two addresses of each family: "the first" and "its own" differ.
ETH0 = Interface(
    name="eth0",
    index=2,
    addresses=("127.0.2.10", "fd00:db8::10", "127.0.2.11", "fe80::10"),
)
V6ONLY = Interface(name="v6", index=3, addresses=("fd00:db8:1::3",))
V4ONLY = Interface(name="v4", index=4, addresses=("127.51.100.4",))
DOWN = Interface(name="down", index=5, addresses=("127.203.113.5", "fd00:db8:2::5"), up=False)
NOMC = Interface(
    name="nomc", index=7, addresses=("127.203.113.7", "fd00:db8:3::7"), multicast=False
)
BARE = Interface(name="bare", index=9)
TABLE: tuple[Interface, ...] = (LO, ETH0, V6ONLY, V4ONLY, DOWN, NOMC, BARE)


def table() -> Sequence[Interface]:
    """The made-up host's interfaces."""
    return TABLE


def unread() -> Sequence[Interface]:
    """A table that must not be read."""
    raise AssertionError("the table was read")


def resolve(spec: object, version: int, source: object = table) -> list[Resolved]:
    """``resolve_interfaces`` of *spec* after validating it, as the models do."""
    assert callable(source)
    return resolve_interfaces(validate_interface_spec(spec), version, source)


# -- naming one ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("interface", "version", "address"),
    [
        (LO, 4, "127.0.0.1"),
        (LO, 6, "::1"),
        (ETH0, 4, "127.0.2.10"),
        (ETH0, 6, "fd00:db8::10"),
        (V6ONLY, 6, "fd00:db8:1::3"),
        (V6ONLY, 4, "0.0.0.0"),  # no IPv4 address: the record still says which one
        (V4ONLY, 6, "::"),
        (DOWN, 4, "127.203.113.5"),  # named explicitly: up or not is the OS's business
        (NOMC, 6, "fd00:db8:3::7"),
        (BARE, 4, "0.0.0.0"),
    ],
)
@pytest.mark.parametrize("by", ["name", "index"])
def test_by_name_and_index(interface: Interface, version: int, address: str, by: str) -> None:
    """A name or an index gives that record and its first address of the family."""
    spec: object = interface.name if by == "name" else interface.index
    (found,) = resolve(spec, version)
    assert found == Resolved(interface, address)
    assert found.key == interface.name
    assert found.index == interface.index


@pytest.mark.parametrize(
    ("spec", "version", "interface", "address"),
    [
        ("127.0.2.11", 4, ETH0, "127.0.2.11"),  # its own address, not the first
        ("127.0.2.10", 4, ETH0, "127.0.2.10"),
        ("fe80::10", 6, ETH0, "fe80::10"),
        ("FD00:DB8::10", 6, ETH0, "fd00:db8::10"),  # normalised
        ("fe80::10%eth0", 6, ETH0, "fe80::10"),  # the scope is dropped
        ("fe80::10", 4, ETH0, "127.0.2.10"),  # the other family: its first IPv4 address
        ("::1", 4, LO, "127.0.0.1"),
        ("127.0.0.1", 6, LO, "::1"),
        ("fd00:db8:1::3", 4, V6ONLY, "0.0.0.0"),
        ("127.203.113.5", 4, DOWN, "127.203.113.5"),
    ],
)
def test_by_address(spec: str, version: int, interface: Interface, address: str) -> None:
    """An address names the interface that has it; IPv4 keeps that very address."""
    (found,) = resolve(spec, version)
    assert found == Resolved(interface, address)
    assert (found.key, found.index) == (interface.name, interface.index)


def test_one_interface_with_both_families() -> None:
    """Every name of an interface with both families gives the same record in each family."""
    for version, first in ((4, "127.0.2.10"), (6, "fd00:db8::10")):
        results = {resolve(spec, version)[0].interface for spec in ("eth0", 2, "127.0.2.11")}
        assert results == {ETH0}
        assert resolve("eth0", version)[0].address == first
    assert ETH0.has_family(4) and ETH0.has_family(6)
    assert not V6ONLY.has_family(4) and not V4ONLY.has_family(6) and not BARE.has_family(4)


def test_table_is_read_once_per_resolution() -> None:
    """Naming an interface reads the table exactly once (it is I/O)."""
    calls: list[int] = []

    def counted() -> Sequence[Interface]:
        calls.append(1)
        return TABLE

    resolve("eth0", 4, counted)
    resolve(ALL, 6, counted)
    resolve("127.0.2.11", 4, counted)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("eth9", "'eth9'"),
        (42, "42"),
        ("127.0.2.99", "'127.0.2.99'"),
        ("fd00:db8::99", "'fd00:db8::99'"),
        ("LO", "'LO'"),  # names are case-sensitive
    ],
)
@pytest.mark.parametrize("version", [4, 6])
def test_unknown_is_1007_naming_it(spec: object, shown: str, version: int) -> None:
    """A name, index or address the table lacks is 1007, and the message names it."""
    with pytest.raises(SocketError) as info:
        resolve(spec, version)
    assert info.value.errno == 1007
    assert shown in str(info.value)


@pytest.mark.parametrize(
    "spec", [1.5, b"eth0", None, True, False, ["eth0"], ("eth0",), object(), 2j]
)
def test_wrong_types_are_type_errors_naming_the_argument(spec: object) -> None:
    """Anything but a str, an int (not bool) or ALL is a TypeError naming the argument."""
    with pytest.raises(TypeError, match="interface"):
        validate_interface_spec(spec)
    with pytest.raises(TypeError, match="through"):
        validate_interface_spec(spec, name="through")


@pytest.mark.parametrize("spec", [-1, ""])
def test_bad_values_are_value_errors(spec: object) -> None:
    """A negative index or an empty name is a ValueError naming the argument."""
    with pytest.raises(ValueError, match="interface"):
        validate_interface_spec(spec)


def test_validation_normalises_addresses_only() -> None:
    """Addresses come back normalised, names and indexes as they are, ALL as ALL."""
    assert validate_interface_spec("FD00:0DB8:0::10") == "fd00:db8::10"
    assert validate_interface_spec("fe80::1%2") == "fe80::1"
    assert validate_interface_spec("eth0") == "eth0"
    assert validate_interface_spec("1") == "1"  # a name that looks like a number
    assert validate_interface_spec(7) == 7
    assert validate_interface_spec(ALL) is ALL
    assert repr(ALL) == "ALL"


# -- the OS's choice, and a table with no addresses ----------------------------


@pytest.mark.parametrize(
    ("spec", "version", "address"),
    [(0, 4, "0.0.0.0"), (0, 6, "::"), ("0.0.0.0", 4, "0.0.0.0"), ("::", 6, "::")],
)
def test_unspecified_needs_no_table(spec: object, version: int, address: str) -> None:
    """Index 0 and the unspecified address are the OS's choice: no record, no table read."""
    (found,) = resolve(spec, version, unread)
    assert found == Resolved(None, address)
    assert (found.key, found.index) == (address, 0)


def test_a_table_with_no_addresses_takes_an_address_as_is() -> None:
    """Where the binding reads no addresses, an address is used as given; names still work."""
    names_only = (BARE, Interface(name="wlan0", index=12))

    def source() -> Sequence[Interface]:
        return names_only

    (found,) = resolve("127.0.2.200", 4, source)
    assert found == Resolved(None, "127.0.2.200")
    assert (found.key, found.index) == ("127.0.2.200", 0)
    (found,) = resolve("fd00:db8::200", 6, source)
    assert found == Resolved(None, "fd00:db8::200")
    assert resolve("wlan0", 4, source) == [Resolved(names_only[1], "0.0.0.0")]
    with pytest.raises(SocketError) as info:
        resolve("eth0", 4, source)
    assert info.value.errno == 1007


def test_the_empty_table_knows_no_name() -> None:
    """With no table at all, a name or an index is 1007."""
    for spec in ("lo", 1):
        with pytest.raises(SocketError) as info:
            resolve(spec, 4, tuple)
        assert info.value.errno == 1007


# -- ALL -----------------------------------------------------------------------

_NAMES = ["lo", "eth0", "eth1", "wlan0", "tun0", "br-x"]
_ADDRESSES = [
    *["127.0.0.1", "127.0.2.1", "127.0.2.2", "127.51.100.7", "127.100.0.1"],
    *["::1", "fd00:db8::1", "fd00:db8::2", "fe80::1", "fe80::2"],
]


@st.composite
def tables(draw: st.DrawFn) -> list[Interface]:
    """A table of up to five interfaces: unique names and indexes, random
    flags, each address of a small pool on at most one of them."""
    count = draw(st.integers(0, 5))
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=count, max_size=count, unique=True))
    indexes = draw(st.lists(st.integers(1, 64), min_size=count, max_size=count, unique=True))
    owners = {a: draw(st.integers(-1, count - 1)) for a in _ADDRESSES} if count else {}
    return [
        Interface(
            name=name,
            index=index,
            addresses=tuple(a for a, owner in owners.items() if owner == position),
            up=draw(st.booleans()),
            multicast=draw(st.booleans()),
            loopback=draw(st.booleans()),
        )
        for position, (name, index) in enumerate(zip(names, indexes, strict=True))
    ]


def _of_family(interface: Interface, version: int) -> list[str]:
    return [a for a in interface.addresses if ipaddress.ip_address(a).version == version]


@settings(max_examples=150, deadline=None)
@given(tables(), st.sampled_from([4, 6]))
def test_all_is_every_up_multicast_interface_of_the_family(
    interfaces: list[Interface], version: int
) -> None:
    """ALL is exactly the up, multicast-capable interfaces with an address of the family."""
    expected = [
        Resolved(i, _of_family(i, version)[0])
        for i in interfaces
        if i.up and i.multicast and _of_family(i, version)
    ]
    if not expected:
        with pytest.raises(SocketError) as info:
            resolve(ALL, version, lambda: interfaces)
        assert info.value.errno == 1007
        assert "ALL" in str(info.value)
        return
    found = resolve(ALL, version, lambda: interfaces)
    assert found == expected
    assert [r.key for r in found] == [r.interface.name for r in expected if r.interface]


@pytest.mark.parametrize("version", [4, 6])
def test_all_with_none_is_1007(version: int) -> None:
    """ALL on a host whose interfaces are down, not multicast or addressless is 1007."""
    dead = (DOWN, NOMC, BARE, Interface(name="x", index=11, addresses=(), up=True))
    with pytest.raises(SocketError) as info:
        resolve(ALL, version, lambda: dead)
    assert info.value.errno == 1007
    with pytest.raises(SocketError):
        resolve(ALL, version, tuple)


def test_all_on_the_fixed_table() -> None:
    """On the fixed table, ALL is lo and eth0 in both families, plus v4 or v6 in its own."""
    assert [r.key for r in resolve(ALL, 4)] == ["lo", "eth0", "v4"]
    assert [r.key for r in resolve(ALL, 6)] == ["lo", "eth0", "v6"]
    assert [r.address for r in resolve(ALL, 4)] == ["127.0.0.1", "127.0.2.10", "127.51.100.4"]


# -- the records ---------------------------------------------------------------


def test_interface_records_answer_by_family() -> None:
    """A record's first address and families come from its addresses, in their order."""
    record = Interface(name="e", index=3, addresses=("fe80::1", "127.0.2.1", "fd00:db8::1"))
    assert record.first_address(4) == "127.0.2.1"
    assert record.first_address(6) == "fe80::1"
    assert record.has_family(4) and record.has_family(6)
    assert Interface(name="e", index=3).first_address(4) is None
    assert Interface(name="e", index=3).first_address(6) is None
