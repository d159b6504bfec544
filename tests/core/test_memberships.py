"""Interface-aware multicast membership (SPEC §11) on made-up interface tables.

Memberships are keyed ``(group, interface name, source)``: the keys, 1002 and
1003 per key, any-source against source-specific, the ``source`` rules,
link-scoped IPv6 groups, all-or-nothing calls, :data:`ALL`, interfaces that
vanish, the OS changes while listening, the sender's interface, and a
hypothesis run of random join/drop sequences on random tables against a model.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jfsocket.core import (
    ALL,
    GroupChange,
    Interface,
    InterfaceTable,
    Membership,
    MembershipPlan,
    MulticastOS,
    ReceiverModel,
    SenderModel,
    SocketError,
    multicast_os,
)

T = TypeVar("T")
LINUX = multicast_os("linux", 8)
DARWIN = multicast_os("darwin", 8)

G1, G2, G3 = "239.255.1.1", "239.255.1.2", "239.255.1.3"
S1, S2 = "127.0.2.100", "127.51.100.200"

LO = Interface(name="lo", index=1, addresses=("127.0.0.1", "::1"), loopback=True)
ETH0 = Interface(
    name="eth0", index=2, addresses=("127.0.2.10", "fd00:db8::10", "127.0.2.11", "fe80::10")
)
WLAN = Interface(name="wlan0", index=3, addresses=("127.51.100.3", "fe80::3"))
V6ONLY = Interface(name="v6", index=4, addresses=("fd00:db8:1::4",))
DOWN = Interface(name="down", index=5, addresses=("127.203.113.5", "fd00:db8:2::5"), up=False)
TABLE = (LO, ETH0, WLAN, V6ONLY, DOWN)


class Table:
    """A mutable fake table of the host's interfaces."""

    def __init__(self, *interfaces: Interface) -> None:
        self.interfaces = list(interfaces or TABLE)

    def __call__(self) -> Sequence[Interface]:
        return tuple(self.interfaces)


def unread() -> Sequence[Interface]:
    """A table that must not be read."""
    raise AssertionError("the table was read")


def receiver(
    version: int = 4,
    table: InterfaceTable | None = None,
    system: MulticastOS = LINUX,
    interface: object = "0.0.0.0",
) -> ReceiverModel:
    """A receiver of IP *version* on port 5000 with the fake table."""
    host: object = 5000 if version == 4 else ("::", 5000)
    return ReceiverModel(
        "rx",
        host,
        interface=interface,
        interfaces=Table() if table is None else table,
        system=system,
    )


def join(
    model: ReceiverModel, *ips: object, interface: object = None, source: object = None
) -> None:
    """Plan and commit a join (what a binding does once the OS took it)."""
    model.commit(model.plan_join(*ips, interface=interface, source=source))


def drop(
    model: ReceiverModel, *ips: object, interface: object = None, source: object = None
) -> None:
    """Plan and commit a drop."""
    model.commit(model.plan_drop(*ips, interface=interface, source=source))


def refused(
    code: int, model: ReceiverModel, joining: bool, *ips: object, **options: object
) -> None:
    """The plan raises SocketError *code*, and the memberships stay as they were."""
    before = model.memberships
    method = model.plan_join if joining else model.plan_drop
    with pytest.raises(SocketError) as info:
        method(*ips, **options)
    assert info.value.errno == code, info.value
    assert model.memberships == before


def attempt(call: Callable[..., T], *args: object) -> T | Exception:
    """What ``call(*args)`` returns, or the exception it raises."""
    try:
        return call(*args)
    except Exception as error:
        return error


def listening(model: ReceiverModel) -> tuple[GroupChange, ...]:
    """Start and report bound: the joins the binding applied."""
    model.start()
    joins = model.joins()
    model.listening(model.address)
    return joins


# -- keys ----------------------------------------------------------------------


def test_memberships_are_keyed_group_interface_source() -> None:
    """Each (group, interface name, source) is one record; groups lists each group once."""
    model = receiver()
    join(model, G1, G2, interface="eth0")
    join(model, G1, interface="wlan0", source=S1)
    join(model, G3)  # the receiver's own interface: the OS's choice
    assert model.memberships == [
        Membership(G1, "eth0", None),
        Membership(G2, "eth0", None),
        Membership(G1, "wlan0", S1),
        Membership(G3, "0.0.0.0", None),
    ]
    assert model.groups == [G1, G2, G3]
    assert (model.memberships[2].group, model.memberships[2].interface) == (G1, "wlan0")
    assert model.memberships[2].source == S1


@pytest.mark.parametrize("again", ["eth0", 2, "127.0.2.10", "127.0.2.11", "fd00:db8::10"])
def test_one_interface_by_name_index_or_address_is_one_key(again: object) -> None:
    """Naming eth0 again, by any of its names, is the same key: 1002."""
    model = receiver()
    join(model, G1, interface="eth0")
    refused(1002, model, True, G1, interface=again)
    join(model, G2, interface=again)
    assert model.memberships == [Membership(G1, "eth0"), Membership(G2, "eth0")]


def test_joining_a_key_twice_is_1002() -> None:
    """A key already joined, or named twice in one call, is 1002."""
    model = receiver()
    join(model, G1, interface="lo", source=S1)
    refused(1002, model, True, G1, interface="lo", source=S1)
    refused(1002, model, True, G2, G2, interface="lo")
    refused(1002, model, True, [G3, G3])


@pytest.mark.parametrize("first_source", [None, S1], ids=["any-then-ssm", "ssm-then-any"])
def test_any_source_and_source_specific_do_not_mix(first_source: str | None) -> None:
    """Any-source and source-specific on one (group, interface) is 1002, either way round."""
    model = receiver()
    second = S1 if first_source is None else None
    join(model, G1, interface="eth0", source=first_source)
    refused(1002, model, True, G1, interface="eth0", source=second)
    refused(1002, model, True, G1, interface=2, source=second)
    refused(1002, model, True, G2, G1, interface="eth0", source=second)
    # another interface, or another group, is another question
    join(model, G1, interface="wlan0", source=second)
    join(model, G2, interface="eth0", source=second)
    assert len(model.memberships) == 3


def test_mixing_on_one_interface_of_all_fails_the_call() -> None:
    """ALL any-source where one interface is source-specific is 1002, and joins none."""
    model = receiver()
    join(model, G1, interface="eth0", source=S1)
    refused(1002, model, True, G1, interface=ALL)
    assert model.memberships == [Membership(G1, "eth0", S1)]


def test_different_sources_on_one_group_and_interface() -> None:
    """Several sources of one group on one interface are several memberships."""
    model = receiver()
    join(model, G1, interface="eth0", source=S1)
    join(model, G1, interface="eth0", source=S2)
    assert model.memberships == [Membership(G1, "eth0", S1), Membership(G1, "eth0", S2)]
    assert model.groups == [G1]
    drop(model, G1, interface="eth0", source=S1)
    assert model.memberships == [Membership(G1, "eth0", S2)]
    refused(1003, model, False, G1, interface="eth0")  # no any-source membership


def test_sources_are_normalised() -> None:
    """A source is compared in its normal form."""
    model = receiver(6)
    join(model, "ff3e::1", interface="eth0", source="FD00:DB8:0::99")
    assert model.memberships == [Membership("ff3e::1", "eth0", "fd00:db8::99")]
    refused(1002, model, True, "ff3e::1", interface="eth0", source="fd00:db8::99")


@pytest.mark.parametrize(
    ("version", "source"),
    [
        (4, "239.255.1.9"),  # multicast
        (4, "224.0.0.1"),
        (4, "0.0.0.0"),  # unspecified
        (4, "fd00:db8::1"),  # the other family
        (4, "x"),
        (4, ""),
        (4, "127.0.2"),
        (4, "127.0.2.1/32"),
        (4, "127.0.2.256"),
        (6, "ff02::1"),
        (6, "ff3e::1"),
        (6, "::"),
        (6, "127.0.2.1"),
        (6, "fd00:db8::g"),
    ],
)
@pytest.mark.parametrize("joining", [True, False], ids=["join", "drop"])
def test_source_must_be_unicast_of_the_groups_family(
    version: int, source: str, joining: bool
) -> None:
    """A source that is not a unicast address of the group's family is a ValueError."""
    model = receiver(version)
    group = G1 if version == 4 else "ff3e::1"
    join(model, group, interface="eth0")
    method = model.plan_join if joining else model.plan_drop
    with pytest.raises(ValueError, match="source"):
        method(group, interface="eth0", source=source)
    assert model.memberships == [Membership(group, "eth0")]


@pytest.mark.parametrize("source", [5, b"127.0.2.1", ipaddress.IPv4Address("127.0.2.1")])
def test_source_of_another_type(source: object) -> None:
    """A source that is not a str is a TypeError naming source."""
    with pytest.raises(TypeError, match="source"):
        receiver().plan_join(G1, source=source)


def test_broadcast_is_not_a_source() -> None:
    """The limited broadcast address is no unicast source."""
    with pytest.raises(ValueError, match="source"):
        receiver().plan_join(G1, interface="eth0", source="255.255.255.255")


# -- link-scoped IPv6 groups ---------------------------------------------------


@pytest.mark.parametrize("group", ["ff02::1", "ff12::1", "ff01::1", "ff32::8000:1", "ff11::2"])
def test_link_scoped_groups_need_an_interface(group: str) -> None:
    """An interface- or link-local IPv6 group without an interface is a ValueError."""
    model = receiver(6)
    for interface in (None, "::", 0):
        with pytest.raises(ValueError, match="interface"):
            model.plan_join(group, interface=interface)
    assert model.memberships == []
    join(model, group, interface="eth0")
    assert model.memberships == [Membership(group, "eth0")]


@pytest.mark.parametrize("group", ["ff05::1", "ff0e::1", "ff15::1", "ff3e::1"])
def test_wider_scopes_need_none(group: str) -> None:
    """Site-, organisation- and global-scope groups may be left to the OS."""
    model = receiver(6)
    join(model, group)
    assert model.memberships == [Membership(group, "::")]


def test_link_scoped_group_on_all() -> None:
    """ALL joins a link-local group on each IPv6 interface that is up."""
    model = receiver(6)
    join(model, "ff02::1", interface=ALL)
    assert [m.interface for m in model.memberships] == ["lo", "eth0", "wlan0", "v6"]


def test_link_scoped_group_in_a_list_fails_the_whole_call() -> None:
    """One link-scoped group with no interface fails the call, wherever it is."""
    model = receiver(6)
    with pytest.raises(ValueError, match="interface"):
        model.plan_join("ff05::1", "ff02::2")
    assert model.memberships == []


# -- all or nothing ------------------------------------------------------------


def test_a_failing_key_anywhere_changes_nothing() -> None:
    """One refused key fails the whole call, and a plan already made stays valid."""
    model = receiver()
    join(model, G2, interface="wlan0")
    pending = model.plan_join(G3, interface="lo")
    refused(1002, model, True, G1, G2, interface=ALL)  # G2 is on wlan0 already
    refused(1002, model, True, G2, interface=ALL)
    refused(1003, model, False, G2, G1, interface="wlan0")
    refused(1003, model, False, G2, G2, interface="wlan0")
    refused(1007, model, True, G1, interface="eth9")
    refused(1004, model, True, G1, "127.100.0.1", interface="eth0")
    refused(1004, model, True, G1, "ff05::1", interface="eth0")  # the other family
    with pytest.raises(ValueError, match="source"):
        model.plan_join(G1, interface="eth0", source="ff3e::1")
    assert model.memberships == [Membership(G2, "wlan0")]
    model.commit(pending)  # failed calls made no new generation
    assert model.memberships == [Membership(G2, "wlan0"), Membership(G3, "lo")]


def test_a_plan_is_nothing_until_committed() -> None:
    """plan_join/plan_drop change nothing themselves; the plan lists what commit adopts."""
    model = receiver()
    plan = model.plan_join(G1, interface=ALL)
    assert model.memberships == [] and model.groups == []
    assert [m for m, _ in plan.members] == [
        Membership(G1, "lo"),
        Membership(G1, "eth0"),
        Membership(G1, "wlan0"),
    ]
    assert plan.groups == (G1,)
    model.commit(plan)
    drop_plan = model.plan_drop(G1, interface="eth0")
    assert len(model.memberships) == 3
    model.commit(drop_plan)
    assert model.memberships == [Membership(G1, "lo"), Membership(G1, "wlan0")]


# -- ALL, and interfaces that vanish ---------------------------------------------


def test_all_joins_every_up_multicast_interface_of_the_family() -> None:
    """ALL is lo, eth0 and wlan0 for IPv4 (v6 has no IPv4 address, down is down)."""
    model = receiver()
    join(model, G1, interface=ALL)
    assert model.memberships == [Membership(G1, n) for n in ("lo", "eth0", "wlan0")]


def test_drop_with_all_leaves_the_group_everywhere_for_that_source() -> None:
    """dropGroup(ALL) leaves the group on every interface, for the source given only."""
    model = receiver()
    join(model, G1, interface="eth0")
    join(model, G1, interface="lo")
    join(model, G1, interface="wlan0", source=S1)
    join(model, G1, interface="down", source=S1)  # named explicitly: down is allowed
    join(model, G2, interface="eth0")
    drop(model, G1, interface=ALL)
    assert model.memberships == [
        Membership(G1, "wlan0", S1),
        Membership(G1, "down", S1),
        Membership(G2, "eth0"),
    ]
    refused(1003, model, False, G1, interface=ALL)
    refused(1003, model, False, G1, interface=ALL, source=S2)
    drop(model, G1, interface=ALL, source=S1)
    assert model.memberships == [Membership(G2, "eth0")]
    refused(1003, model, False, G1, interface=ALL, source=S1)
    refused(1003, model, False, G3, interface=ALL)


def test_drop_by_name_after_the_interface_vanished() -> None:
    """A membership on an interface the host no longer lists is still left by its name."""
    table = Table()
    model = receiver(table=table)
    join(model, G1, G2, interface="eth0")
    table.interfaces.remove(ETH0)
    drop(model, G1, interface="eth0")
    assert model.memberships == [Membership(G2, "eth0")]
    drop(model, G2, interface=ALL)  # ALL finds it too
    assert model.memberships == []
    refused(1007, model, True, G1, interface="eth0")  # joining needs it to exist


def test_drop_on_an_interface_never_joined() -> None:
    """Leaving on a known interface without the key is 1003; on an unknown one 1007."""
    model = receiver()
    join(model, G1, interface="eth0")
    refused(1003, model, False, G1, interface="wlan0")
    refused(1003, model, False, G1)  # the receiver's own interface
    refused(1007, model, False, G1, interface="eth9")
    drop(model, G1, interface="127.0.2.11")  # eth0 by address
    assert model.memberships == []


def test_the_receivers_own_interface_by_name() -> None:
    """A receiver whose interface is a name joins there when joinGroup names none."""
    model = receiver(interface="wlan0")
    join(model, G1)
    assert model.memberships == [Membership(G1, "wlan0")]
    with pytest.raises(SocketError) as info:
        receiver(table=Table(LO), interface="wlan0").plan_join(G1)
    assert info.value.errno == 1007


def test_the_unspecified_interface_reads_no_table() -> None:
    """The OS's choice (default, 0, the unspecified address) never reads the table."""
    model = receiver(table=unread)
    join(model, G1)
    join(model, G2, interface=0)
    join(model, G3, interface="0.0.0.0")
    assert {m.interface for m in model.memberships} == {"0.0.0.0"}
    refused(1002, model, True, G1, interface=0)
    drop(model, G1, G2, G3, interface=0)
    assert model.memberships == []


# -- the OS changes ------------------------------------------------------------


def test_listening_plans_carry_the_os_changes() -> None:
    """While listening, a plan names each change's address, index and source."""
    model = receiver()
    listening(model)
    plan = model.plan_join(G1, interface="127.0.2.11", source=S1)
    assert plan.changes == (
        GroupChange(
            join=True, group=G1, interface="eth0", address="127.0.2.11", index=2, source=S1
        ),
    )
    model.commit(plan)
    plan = model.plan_join(G2, interface=ALL)
    assert plan.changes == (
        GroupChange(join=True, group=G2, interface="lo", address="127.0.0.1", index=1),
        GroupChange(join=True, group=G2, interface="eth0", address="127.0.2.10", index=2),
        GroupChange(join=True, group=G2, interface="wlan0", address="127.51.100.3", index=3),
    )
    model.commit(plan)
    plan = model.plan_drop(G2, interface=3)
    assert plan.changes == (
        GroupChange(join=False, group=G2, interface="wlan0", address="127.51.100.3", index=3),
    )
    model.commit(plan)
    plan = model.plan_join(G3)
    assert plan.changes == (
        GroupChange(join=True, group=G3, interface="0.0.0.0", address="0.0.0.0", index=0),
    )


def test_ipv6_changes_carry_the_index() -> None:
    """An IPv6 change names its interface by index; its option is ipv6_mreq with it."""
    model = receiver(6)
    listening(model)
    plan = model.plan_join("ff02::fb", interface="fe80::3", source="fd00:db8::5")
    (change,) = plan.changes
    assert (change.join, change.group, change.interface, change.index, change.source) == (
        True,
        "ff02::fb",
        "wlan0",
        3,
        "fd00:db8::5",
    )
    (change,) = model.plan_join("ff02::fb", interface="eth0").changes
    assert change.index == 2
    level, option, value = change.option(LINUX)
    assert (level, option) == (41, 20)
    assert value == ipaddress.IPv6Address("ff02::fb").packed + struct.pack("=I", 2)


def test_joins_on_start_and_drops_on_stop() -> None:
    """start's joins are every membership's join; stop returns their inverses; both in order."""
    model = receiver()
    join(model, G1, interface="eth0", source=S1)
    join(model, G2, interface=ALL)
    join(model, G1, interface="wlan0", source=S2)
    assert model.stop() is None  # not listening: nothing to leave
    joins = listening(model)
    keys = [(c.group, c.interface, c.source) for c in joins]
    assert keys == [(m.group, m.interface, m.source) for m in model.memberships]
    assert all(c.join for c in joins)
    assert [c.index for c in joins] == [2, 1, 2, 3, 3]
    assert model.plan_join(G3, interface="lo").changes[0].join
    drops = model.stop()
    assert drops is not None
    assert drops == tuple(
        GroupChange(
            join=False,
            group=c.group,
            interface=c.interface,
            address=c.address,
            index=c.index,
            source=c.source,
        )
        for c in joins
    )
    assert len(model.memberships) == 5  # memberships survive stop
    model.start()
    assert model.joins() == joins


def test_plans_made_while_stopped_carry_no_changes() -> None:
    """Before listening, plans hold memberships and no OS changes."""
    model = receiver()
    assert model.plan_join(G1, interface=ALL).changes == ()
    join(model, G1, interface="eth0")
    assert model.plan_drop(G1, interface="eth0").changes == ()


# -- interfaces the structures cannot name -------------------------------------


@pytest.mark.parametrize(
    ("system", "source"), [(DARWIN, None), (LINUX, S1)], ids=["darwin-asm", "linux-ssm"]
)
def test_ipv4_join_on_an_interface_without_ipv4(system: MulticastOS, source: str | None) -> None:
    """Joining IPv4 on an IPv6-only interface the OS cannot be told about is refused (1007)."""
    model = receiver(system=system)
    listening(model)
    outcome = attempt(lambda: model.plan_join(G1, interface="v6", source=source))
    if isinstance(outcome, Exception):
        assert isinstance(outcome, SocketError) and outcome.errno == 1007, outcome
        return
    (change,) = outcome.changes
    os_choice = system.membership(True, G1, "0.0.0.0", 0, source)
    assert change.option(system) != os_choice, "the interface named is lost"


def test_interface_address_of_the_other_family_on_an_addressless_table() -> None:
    """An IPv6 interface address for an IPv4 join is refused when it is planned."""
    model = receiver(table=Table(Interface(name="e", index=2)))
    listening(model)
    outcome = attempt(lambda: model.plan_join(G1, interface="fd00:db8::1"))
    if isinstance(outcome, Exception):
        assert isinstance(outcome, ValueError) and "interface" in str(outcome), outcome
        return
    for change in outcome.changes:
        encoded = attempt(change.option, LINUX)  # what the binding does with it
        assert not isinstance(encoded, Exception), f"a planned change cannot be encoded: {encoded}"


# -- the sender ----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["eth0", 2, "127.0.2.10", "fd00:db8::10", "fe80::10"])
def test_sender_interface_by_name_index_or_address(spec: object) -> None:
    """Every name of eth0 gives IP_MULTICAST_IF for its IPv4 address and IPV6_MULTICAST_IF 2."""
    linux = SenderModel("tx", interface=spec, interfaces=Table(), system=LINUX)
    local = ipaddress.IPv4Address("127.0.2.10").packed
    assert linux.interface_option(4) == (0, 32, bytes(4) + local + struct.pack("=i", 2))
    assert linux.interface_option(6) == (41, 17, 2)
    darwin = SenderModel("tx", interface=spec, interfaces=Table(), system=DARWIN)
    assert darwin.interface_option(4) == (0, 9, local)
    assert darwin.interface_option(6) == (41, 9, 2)


def test_sender_keeps_the_address_it_was_given() -> None:
    """A sender named by its second IPv4 address sends from that address."""
    sender = SenderModel("tx", interface="127.0.2.11", interfaces=Table(), system=DARWIN)
    assert sender.interface_option(4) == (0, 9, ipaddress.IPv4Address("127.0.2.11").packed)


@pytest.mark.parametrize("spec", [None, 0, "0.0.0.0", "::"])
def test_sender_left_to_the_os(spec: object) -> None:
    """No interface, index 0 or the unspecified address: no option, no table read."""
    sender = SenderModel("tx", interface=spec, interfaces=unread, system=LINUX)
    assert sender.interface_option(4) is None
    assert sender.interface_option(6) is None


@pytest.mark.parametrize("spec", ["eth9", 99, "127.0.2.99", "fd00:db8::99"])
def test_sender_unknown_interface_is_1007_at_construction(spec: object) -> None:
    """A sender's interface the table lacks is 1007 when the sender is made."""
    with pytest.raises(SocketError) as info:
        SenderModel("tx", interface=spec, interfaces=Table(), system=LINUX)
    assert info.value.errno == 1007


def test_sender_interface_all_or_wrong_type() -> None:
    """ALL is a ValueError (a sender sends through one); a float a TypeError."""
    with pytest.raises(ValueError, match="interface"):
        SenderModel("tx", interface=ALL, interfaces=Table())
    with pytest.raises(TypeError, match="interface"):
        SenderModel("tx", interface=2.0, interfaces=Table())


def test_sender_ipv4_through_an_interface_without_ipv4_on_darwin() -> None:
    """IPv4 through an IPv6-only interface on macOS is refused rather than sent elsewhere."""
    outcome = attempt(
        lambda: SenderModel(
            "tx", interface="v6", interfaces=Table(), system=DARWIN
        ).interface_option(4)
    )
    if isinstance(outcome, Exception):
        assert isinstance(outcome, SocketError) and outcome.errno == 1007, outcome
        return
    assert outcome != DARWIN.multicast_if(4, "0.0.0.0", 0), "the interface named is lost"


# -- random sequences against a model --------------------------------------------

_NAMES = ["lo", "eth0", "eth1", "wlan0"]
_ADDRESSES = {
    4: ["127.0.0.1", "127.0.2.1", "127.0.2.2", "127.51.100.1"],
    6: ["::1", "fd00:db8::1", "fe80::1", "fe80::2"],
}
_GROUPS = {4: ["239.255.1.1", "239.255.1.2", "224.0.1.9"], 6: ["ff05::1", "ff3e::2", "ff02::3"]}
_SOURCES = {4: [None, "127.0.2.100", "127.109.9.9"], 6: [None, "fd00:db8::100", "fd00:db8::200"]}
#: Interfaces are mostly up and multicast-capable, so that ALL names some.
_MOSTLY = st.sampled_from([True, True, True, False])


@st.composite
def tables(draw: st.DrawFn) -> list[Interface]:
    """Up to four interfaces with random flags; each address on at most one of them
    (or none at all: a host whose addresses the binding cannot read)."""
    count = draw(st.integers(0, 4))
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=count, max_size=count, unique=True))
    indexes = draw(st.lists(st.integers(1, 9), min_size=count, max_size=count, unique=True))
    pool = [*_ADDRESSES[4], *_ADDRESSES[6]]
    owners = {a: draw(st.integers(-1, count - 1)) for a in pool} if count else {}
    return [
        Interface(
            name=name,
            index=index,
            addresses=tuple(a for a, owner in owners.items() if owner == position),
            up=draw(_MOSTLY),
            multicast=draw(_MOSTLY),
        )
        for position, (name, index) in enumerate(zip(names, indexes, strict=True))
    ]


@dataclass(frozen=True)
class Target:
    """Where the model expects a join to go: the key's interface name, index, address."""

    name: str
    index: int
    address: str
    chosen_by_os: bool


class RefusedError(Exception):
    """The model's verdict that a call fails (code, or the exception type)."""

    def __init__(self, outcome: int | type[Exception]) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _version_of(address: str) -> int:
    return ipaddress.ip_address(address).version


@dataclass
class Model:
    """What the memberships should be, computed from the SPEC's rules."""

    version: int
    table: list[Interface]
    #: key → (index, address) of the join that made it, in join order.
    keys: dict[tuple[str, str, str | None], tuple[int, str]] = field(default_factory=dict)

    def unspecified(self) -> str:
        return "::" if self.version == 6 else "0.0.0.0"

    def first(self, interface: Interface) -> str:
        own = [a for a in interface.addresses if _version_of(a) == self.version]
        return own[0] if own else self.unspecified()

    def targets(self, spec: object) -> list[Target]:
        if spec is None or spec == 0 or spec in ("0.0.0.0", "::"):
            return [Target(self.unspecified(), 0, self.unspecified(), True)]
        if spec is ALL:
            found = [
                Target(i.name, i.index, self.first(i), False)
                for i in self.table
                if i.up and i.multicast and any(_version_of(a) == self.version for a in i.addresses)
            ]
            if not found:
                raise RefusedError(1007)
            return found
        if isinstance(spec, int):
            matches = [i for i in self.table if i.index == spec]
        elif isinstance(spec, str) and spec in _ADDRESSES[4] + _ADDRESSES[6]:
            if not any(i.addresses for i in self.table):
                if _version_of(spec) != self.version:
                    raise RefusedError(ValueError)
                return [Target(spec, 0, spec, True)]
            matches = [i for i in self.table if spec in i.addresses]
            if matches and _version_of(spec) == self.version:
                return [Target(matches[0].name, matches[0].index, spec, False)]
        else:
            matches = [i for i in self.table if i.name == spec]
        if not matches:
            raise RefusedError(1007)
        return [Target(matches[0].name, matches[0].index, self.first(matches[0]), False)]

    def join(
        self, groups: list[str], spec: object, source: str | None
    ) -> list[tuple[str, str, str | None, int, str]]:
        targets = self.targets(spec)
        for target in targets:
            # Only Linux's ip_mreqn (any-source) names an interface without its address.
            unaddressed = self.version == 4 and not target.chosen_by_os
            if unaddressed and target.address == "0.0.0.0" and source is not None:
                raise RefusedError(1007)
        new = dict(self.keys)
        changes = []
        for group in groups:
            for target in targets:
                scope = ipaddress.ip_address(group).packed[1] & 0x0F
                if target.chosen_by_os and self.version == 6 and scope in (1, 2):
                    raise RefusedError(ValueError)
                key = (group, target.name, source)
                mixed = any(
                    g == group and n == target.name and (s is None) != (source is None)
                    for g, n, s in new
                )
                if key in new or mixed:
                    raise RefusedError(1002)
                new[key] = (target.index, target.address)
                changes.append((*key, target.index, target.address))
        self.keys = new
        return changes

    def drop(
        self, groups: list[str], spec: object, source: str | None
    ) -> list[tuple[str, str, str | None, int, str]]:
        new = dict(self.keys)
        changes = []
        for group in groups:
            if spec is ALL:
                names = [n for g, n, s in new if g == group and s == source]
            elif isinstance(spec, str) and any(n == spec for _, n, _ in self.keys):
                names = [spec]  # joined by that name: no table needed
            else:
                names = [t.name for t in self.targets(spec)]
            if not names or any((group, n, source) not in new for n in names):
                raise RefusedError(1003)
            for name in names:
                index, address = new.pop((group, name, source))
                changes.append((group, name, source, index, address))
        self.keys = new
        return changes


def _specs(interfaces: list[Interface], version: int) -> st.SearchStrategy[object]:
    """Names, indexes and addresses of the table, ALL, the OS's choice and unknowns
    (an unknown address of the receiver's family: on a table with no addresses
    it is taken as it is)."""
    known: list[object] = [i.name for i in interfaces] + [i.index for i in interfaces]
    known += [a for i in interfaces for a in i.addresses]
    others: list[object] = [ALL, None, 0, "nope", 77, _ADDRESSES[version][1]]
    return st.sampled_from(known + others) if known else st.sampled_from(others)


def _described(plan: MembershipPlan) -> list[tuple[str, str, str | None, int, str]]:
    return [(c.group, c.interface, c.source, c.index, c.address) for c in plan.changes]


@settings(max_examples=120, deadline=None)
@given(st.data(), tables(), st.sampled_from([4, 6]), st.booleans())
def test_random_sequences_match_the_model(
    data: st.DataObject, interfaces: list[Interface], version: int, live: bool
) -> None:
    """Random joins, drops and vanishing interfaces: keys, groups, codes and OS changes."""
    table = Table()
    table.interfaces = list(interfaces)
    model = Model(version, table.interfaces)
    rx = receiver(version, table=table)
    if live:
        listening(rx)
    groups = st.lists(st.sampled_from(_GROUPS[version]), min_size=1, max_size=2)
    sources = st.sampled_from(_SOURCES[version])
    for _ in range(data.draw(st.integers(1, 12), label="steps")):
        action = data.draw(st.sampled_from(["join", "join", "drop", "vanish"]), label="action")
        if action == "vanish":
            if table.interfaces:
                table.interfaces.pop(data.draw(st.integers(0, len(table.interfaces) - 1)))
            continue
        if action == "drop" and model.keys and data.draw(st.booleans(), label="a joined key"):
            group, name, source = data.draw(st.sampled_from(list(model.keys)), label="key")
            chosen = [group]
            spec = data.draw(st.sampled_from([name, ALL]), label="interface")
        else:
            chosen = data.draw(groups, label="groups")
            spec = data.draw(_specs(table.interfaces, version), label="interface")
            source = data.draw(sources, label="source")
        before = rx.memberships
        method = rx.plan_join if action == "join" else rx.plan_drop
        step = model.join if action == "join" else model.drop
        verdict = attempt(step, chosen, spec, source)
        if isinstance(verdict, RefusedError):
            if isinstance(verdict.outcome, int):
                with pytest.raises(SocketError) as info:
                    method(*chosen, interface=spec, source=source)
                assert info.value.errno == verdict.outcome
            else:
                with pytest.raises(verdict.outcome, match="interface"):
                    method(*chosen, interface=spec, source=source)
            assert rx.memberships == before
            continue
        assert not isinstance(verdict, Exception), verdict
        expected = verdict
        plan = method(*chosen, interface=spec, source=source)
        assert rx.memberships == before
        if live:
            assert _described(plan) == expected
            assert all(c.join == (action == "join") for c in plan.changes)
        else:
            assert plan.changes == ()
        rx.commit(plan)
        assert rx.memberships == [Membership(*key) for key in model.keys]
        assert rx.groups == list(dict.fromkeys(g for g, _, _ in model.keys))
    expected_all = [(*key, index, address) for key, (index, address) in model.keys.items()]
    if live:
        drops = rx.stop()
        assert drops is not None
        assert [(c.group, c.interface, c.source, c.index, c.address) for c in drops] == expected_all
        assert not any(c.join for c in drops)
    rx.start()
    joins = rx.joins()
    assert [(c.group, c.interface, c.source, c.index, c.address) for c in joins] == expected_all


@pytest.mark.parametrize("interface", [1.5, b"eth0", True, ["eth0"]])
def test_join_and_drop_interface_of_another_type(interface: object) -> None:
    """joinGroup/dropGroup with an interface that is no str, int or ALL: TypeError."""
    model = receiver()
    with pytest.raises(TypeError, match="interface"):
        model.plan_join(G1, interface=interface)
    with pytest.raises(TypeError, match="interface"):
        model.plan_drop(G1, interface=interface)
