"""Interface-aware membership (SPEC section 11) on loopback, on every runtime.

Only loopback carries datagrams here: receivers join on ``lo`` (by name, index
or 127.0.0.1), senders have TTL 0 and interface ``lo``/127.0.0.1, groups are
random in 239.255.0.0/16.  Joins on other interfaces (``ALL``) are made only
on receivers that are never started, so the OS is never asked to join there.
Typed events are read with each binding's ``events()``; "not received" is
shown by a marker datagram sent after the one that must not arrive, from the
same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from jfsocket.bindings._interfaces import host_interfaces
from jfsocket.core import ALL, Interface, Membership, Received

from .driver import Driver, ReceiverH
from .runtimes import Runner

LO_INDEX = socket.if_nametoindex("lo")
#: How long one wait for a typed event may last.
EVENT_WAIT = 5.0


# -- helpers ----------------------------------------------------------------------------


def join(
    receiver: ReceiverH, *groups: str, interface: object = None, source: object = None
) -> None:
    """``joinGroup(*groups, interface=, source=)`` on the receiver's runtime."""
    receiver.runner.sync(
        lambda: receiver.obj.joinGroup(*groups, interface=interface, source=source)
    )


def drop(
    receiver: ReceiverH, *groups: str, interface: object = None, source: object = None
) -> None:
    """``dropGroup(*groups, interface=, source=)`` on the receiver's runtime."""
    receiver.runner.sync(
        lambda: receiver.obj.dropGroup(*groups, interface=interface, source=source)
    )


def memberships(receiver: ReceiverH) -> list[Membership]:
    """``receiver.memberships``."""
    found: list[Membership] = receiver.runner.sync(lambda: receiver.obj.memberships)
    return found


def error_code(d: Driver, call: Any) -> int:
    """The code of the SocketError *call* raises (the test fails if it raises none)."""
    with pytest.raises(d.SocketError) as caught:
        call()
    return int(caught.value.errno)


def lo_sender(d: Driver, interface: object) -> Any:
    """A bare ``CastSender(ttl=0, interface=...)`` of the driver's binding (on
    loopback only), its lifetime begun; the driver ends it."""
    runner = d.runner()
    sender = runner.sync(lambda: runner.module.CastSender(ttl=0, interface=interface))
    runner.enter(sender)
    return sender


def send(d: Driver, sender: Any, remote: tuple[str, int], data: str) -> None:
    """``sender.send(remote, data)``, waited for on the driver's runtime."""
    d.runner().call(sender.send, remote, data)


class Tap:
    """A receiver's typed events (``receiver.events()``), read on its runtime.

    Made before the datagrams it must see are sent; left open at the end (the
    stream ends with the receiver's STOPED)."""

    def __init__(self, runner: Runner, receiver: Any) -> None:
        self._runner = runner
        if runner.name == "threaded":
            self._stream = receiver.events(timeout=EVENT_WAIT)
        else:
            self._stream = runner.sync(receiver.events)
        self.events: list[object] = []

    def _next(self, timeout: float) -> object | None:
        stream = self._stream
        event: object | None = None
        if self._runner.name == "threaded":
            with contextlib.suppress(TimeoutError):
                event = stream.get(timeout)
            return event
        if self._runner.name == "trio":

            async def next_trio() -> object | None:
                with trio.move_on_after(timeout):
                    got: object = await stream.__anext__()
                    return got
                return None

            event = self._runner.call(next_trio)
            return event

        async def next_asyncio() -> object | None:
            try:
                got: object = await asyncio.wait_for(stream.__anext__(), timeout)
            except asyncio.TimeoutError:
                return None
            return got

        event = self._runner.call(next_asyncio)
        return event

    def received(self, count: int) -> list[Received]:
        """The first *count* typed :class:`Received` events (waiting for them, bounded)."""
        deadline = time.monotonic() + EVENT_WAIT
        while True:
            got = [e for e in self.events if isinstance(e, Received)]
            if len(got) >= count:
                return got[:count]
            remaining = deadline - time.monotonic()
            event = self._next(remaining) if remaining > 0 else None
            if event is None:
                pytest.fail(f"{count} Received wanted; the stream gave {self.events}", False)
            self.events.append(event)

    def close(self) -> None:
        """End a threaded stream early (the async ones end with the receiver)."""
        if self._runner.name == "threaded":
            self._stream.close()


def lo_entry() -> Interface:
    """The host's ``lo`` as the binding reads it."""
    (lo,) = [i for i in host_interfaces() if i.name == "lo"]
    return lo


@pytest.fixture(autouse=True)
def _host_interfaces(d: Driver) -> None:
    """These scenarios are about the host's own interfaces (lo, its index, the
    kernel's SSM filter): the memory binding's virtual interfaces have their
    tests in tests/memory/test_multicast.py."""
    d.real_sockets("the host's interface table and the kernel's multicast filters")


@pytest.fixture
def tap_closer() -> Iterator[list[Tap]]:
    """Taps to close at the end of the test."""
    taps: list[Tap] = []
    yield taps
    for tap in taps:
        tap.close()


# -- naming an interface ----------------------------------------------------------------


@pytest.mark.parametrize("when", ["before start", "while listening"])
def test_lo_by_name_index_or_address_is_one_membership(d: Driver, when: str) -> None:
    """'lo', its index and 127.0.0.1 (the receiver's own interface) name one
    membership: a second join by any of them is 1002; it delivers; a drop by
    index leaves it."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    if when == "while listening":
        receiver.start()
    join(receiver, group, interface="lo")
    assert memberships(receiver) == [Membership(group, "lo", None)]
    for spelling in (LO_INDEX, "127.0.0.1", None):
        code = error_code(d, lambda s=spelling: join(receiver, group, interface=s))
        assert code == 1002, spelling
    assert memberships(receiver) == [Membership(group, "lo", None)]
    assert receiver.groups == [group]
    if when == "before start":
        receiver.start()
    d.sender().send((group, receiver.port), "once")
    receiver.wait_for("RECEIVED")
    assert receiver.received() == ["once"]
    drop(receiver, group, interface=LO_INDEX)
    assert memberships(receiver) == [] and receiver.groups == []


def test_unknown_interface_is_1007_and_joins_nothing(d: Driver) -> None:
    """A name, index or address the host does not have: 1007, no group of the
    call joined (all or nothing), earlier memberships kept; dropping there: 1007."""
    first, second, third = d.groups(3)
    table = host_interfaces()
    stranger = "127.203.113.254"  # loopback range, but on no interface of the table
    assert all(stranger not in i.addresses for i in table)
    missing_index = max(i.index for i in table) + 1000
    receiver = d.receiver()
    receiver.start()
    join(receiver, first, interface="lo")
    for where in ("jfsnosuch0", missing_index, stranger):
        code = error_code(d, lambda w=where: join(receiver, second, third, interface=w))
        assert code == 1007, where
        code = error_code(d, lambda w=where: drop(receiver, first, interface=w))
        assert code == 1007, where
    assert memberships(receiver) == [Membership(first, "lo", None)]
    assert receiver.groups == [first]


def test_all_is_every_up_multicast_interface_with_ipv4(d: Driver) -> None:
    """ALL (the binding module's, the core's) joins on exactly the up,
    multicast-capable interfaces with an IPv4 address in host_interfaces();
    lo only if it has the MULTICAST flag; dropGroup(ALL) leaves them all.
    (The receiver is never started: nothing is joined on the OS side.)"""
    assert d.runner().module.ALL is ALL
    (group,) = d.groups(1)
    lo = lo_entry()
    assert lo.loopback and lo.index == LO_INDEX
    chosen = [i.name for i in host_interfaces() if i.up and i.multicast and i.has_family(4)]
    assert ("lo" in chosen) == lo.multicast
    receiver = d.receiver()
    if not chosen:
        assert error_code(d, lambda: join(receiver, group, interface=ALL)) == 1007
        assert memberships(receiver) == []
        return
    join(receiver, group, interface=ALL)
    assert memberships(receiver) == [Membership(group, name, None) for name in chosen]
    assert receiver.groups == [group]
    assert error_code(d, lambda: join(receiver, group, interface=ALL)) == 1002
    if not lo.multicast:
        join(receiver, group, interface="lo")  # lo is not among them: a new membership
        assert memberships(receiver)[-1] == Membership(group, "lo", None)
    drop(receiver, group, interface=ALL)
    assert memberships(receiver) == []
    assert error_code(d, lambda: drop(receiver, group, interface=ALL)) == 1003


# -- typed events -------------------------------------------------------------------------


def test_received_names_lo_its_index_the_group_and_sender(d: Driver, tap_closer: list[Tap]) -> None:
    """A typed Received from events() carries interface lo (name, index), the
    group it was sent to and the sender's address."""
    joined, other = d.groups(2)
    receiver = d.receiver()
    join(receiver, joined, interface="lo")
    join(receiver, other, interface=LO_INDEX)
    tap = Tap(receiver.runner, receiver.obj)  # before start: see section "stream opened late"
    tap_closer.append(tap)
    receiver.start()
    sender = d.sender()
    sender.send((joined, receiver.port), "to joined")
    sender.send((other, receiver.port), "to other")
    first, second = tap.received(2)
    for event, group, data in ((first, joined, "to joined"), (second, other, "to other")):
        assert event.source is receiver.obj and event.data == data
        assert event.interface is not None
        assert (event.interface.name, event.interface.index) == ("lo", LO_INDEX)
        assert event.group == group
        assert event.remote is not None and event.remote[0] == "127.0.0.1"
        assert event.remote[1] > 0 and not event.truncated
    assert first.remote == second.remote  # one sender, one socket


@pytest.mark.parametrize("interface", ["lo", LO_INDEX], ids=["name", "index"])
def test_sender_interface_by_name_or_index_delivers(
    d: Driver, tap_closer: list[Tap], interface: object
) -> None:
    """CastSender(ttl=0, interface='lo' or lo's index) reaches a receiver joined on lo."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    join(receiver, group, interface="lo")
    tap = Tap(receiver.runner, receiver.obj)  # before start: see section "stream opened late"
    tap_closer.append(tap)
    receiver.start()
    send(d, lo_sender(d, interface), (group, receiver.port), "by interface")
    (event,) = tap.received(1)
    assert event.data == "by interface" and event.group == group
    assert event.interface is not None and event.interface.name == "lo"
    assert event.remote is not None and event.remote[0] == "127.0.0.1"
    receiver.wait_for("RECEIVED")
    assert receiver.received() == ["by interface"]


# -- source-specific --------------------------------------------------------------------


def test_source_rules(d: Driver) -> None:
    """A source that is not a unicast IPv4 address: ValueError; any-source and
    source-specific on one group and interface do not mix (1002), either order."""
    ssm, asm = d.groups(2)
    receiver = d.receiver()
    for bad in ("::1", "239.255.0.1", "0.0.0.0", "not an address"):
        with pytest.raises(ValueError, match="source"):
            join(receiver, ssm, interface="lo", source=bad)
    join(receiver, ssm, interface="lo", source="127.0.0.1")
    join(receiver, ssm, interface="lo", source="127.0.0.2")  # a second source: its own key
    assert error_code(d, lambda: join(receiver, ssm, interface="lo")) == 1002
    join(receiver, asm, interface="lo")
    assert error_code(d, lambda: join(receiver, asm, interface="lo", source="127.0.0.1")) == 1002
    assert memberships(receiver) == [
        Membership(ssm, "lo", "127.0.0.1"),
        Membership(ssm, "lo", "127.0.0.2"),
        Membership(asm, "lo", None),
    ]
    assert receiver.groups == [ssm, asm]
    assert error_code(d, lambda: drop(receiver, ssm, interface="lo")) == 1003
    drop(receiver, ssm, interface="lo", source="127.0.0.2")
    assert memberships(receiver) == [
        Membership(ssm, "lo", "127.0.0.1"),
        Membership(asm, "lo", None),
    ]


def test_ssm_on_loopback_takes_only_the_source_joined(d: Driver, tap_closer: list[Tap]) -> None:
    """Joined (group, 'lo', source=127.0.0.1): a sender from 127.0.0.1 arrives, one
    bound to 127.0.0.2 does not (its marker to an any-source group does)."""
    group, marker = d.groups(2)
    receiver = d.receiver()
    join(receiver, group, interface="lo", source="127.0.0.1")
    join(receiver, marker, interface="lo")
    assert memberships(receiver) == [
        Membership(group, "lo", "127.0.0.1"),
        Membership(marker, "lo", None),
    ]
    tap = Tap(receiver.runner, receiver.obj)  # before start: see section "stream opened late"
    tap_closer.append(tap)
    receiver.start()
    port = receiver.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        other.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        other.bind(("127.0.0.2", 0))
        other.sendto(b"from .2", (group, port))
        other.sendto(b"marker .2", (marker, port))
        (seen,) = tap.received(1)
    assert (seen.data, seen.group) == ("marker .2", marker), tap.events
    assert seen.remote is not None and seen.remote[0] == "127.0.0.2"
    d.sender().send((group, port), "from .1")
    _, event = tap.received(2)
    assert (event.data, event.group) == ("from .1", group)
    assert event.remote is not None and event.remote[0] == "127.0.0.1"
    assert event.interface is not None and event.interface.name == "lo"
    receiver.wait_for("RECEIVED", 2)
    assert receiver.received() == ["marker .2", "from .1"]


# -- IPv6 -------------------------------------------------------------------------------


def test_ipv6_multicast_on_lo(d: Driver, tap_closer: list[Tap]) -> None:
    """IPv6 over lo, where lo can carry multicast: a receiver joined on 'lo' gets
    an interface-local (ff11::) datagram from a sender on 'lo' with hops 0."""
    if not lo_entry().multicast:
        pytest.skip(
            "lo has no MULTICAST flag on this host, so IPv6 multicast over lo does not "
            "deliver; the host's interfaces are left as they are"
        )
    group = f"ff11::8000:{random.randrange(1, 0xFFFF):x}"  # interface-local: never leaves lo
    runner = d.runner()
    receiver = runner.sync(lambda: runner.module.CastReceiver(("::", 0), interface="lo"))
    runner.sync(lambda: receiver.joinGroup(group))
    tap = Tap(runner, receiver)
    tap_closer.append(tap)
    runner.enter(receiver)  # async: that starts it
    if runner.name == "threaded":
        receiver.start()
    port = runner.sync(lambda: receiver.host[1])
    send(d, lo_sender(d, "lo"), (group, port), "over lo")
    (event,) = tap.received(1)
    assert event.data == "over lo" and event.group == group
    assert event.interface is not None and event.interface.name == "lo"


# -- a stream closed early ----------------------------------------------------------------

EARLY_CLOSE = """
import asyncio, importlib, sys, threading
binding, group = sys.argv[1], sys.argv[2]
name = "asyncio" if binding == "uvloop" else binding
mod = importlib.import_module("jfsocket.bindings." + name)
got = []
if binding == "threaded":
    arrived = threading.Event()
    def on_received(receiver, data):
        got.append(data)
        arrived.set()
    receiver = mod.CastReceiver(("0.0.0.0", 0), {"onReceived": on_received}, interface="lo")
    receiver.joinGroup(group)
    receiver.start()
    receiver.events(timeout=5).close()
    with mod.CastSender(ttl=0, interface="lo") as sender:
        sender.send((group, receiver.host[1]), "after-close")
        arrived.wait(5)
    print("ALIVE", receiver.isAlive)
    receiver.stop()
else:
    async def main(arrived):
        def on_received(receiver, data):
            got.append(data)
            arrived.set()
        evts = {"onReceived": on_received}
        async with mod.CastReceiver(("0.0.0.0", 0), evts, interface="lo") as receiver:
            receiver.joinGroup(group)
            receiver.events().close()
            async with mod.CastSender(ttl=0, interface="lo") as sender:
                await sender.send((group, receiver.host[1]), "after-close")
                await arrived.wait()
            print("ALIVE", receiver.isAlive)
    if binding == "trio":
        import trio
        async def bounded():
            with trio.fail_after(5):
                await main(trio.Event())
        trio.run(bounded)
    else:
        async def bounded():
            await asyncio.wait_for(main(asyncio.Event()), 5)
        if binding == "uvloop":
            loop = importlib.import_module("uvloop").new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(bounded())
        finally:
            loop.close()
print("GOT", got)
"""


def test_closing_the_events_stream_early_leaves_the_receiver_working(binding: str) -> None:
    """events() closed before a datagram arrives: the receiver keeps running, its
    callback still gets the datagram, and it stops cleanly (in a subprocess)."""
    (group,) = Driver.groups(1)
    result = subprocess.run(
        (sys.executable, "-c", EARLY_CLOSE, binding, group),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["ALIVE True", "GOT ['after-close']"], result


# -- a stream opened late -----------------------------------------------------------------


def test_a_stream_opened_while_listening_says_where_each_datagram_arrived(
    d: Driver, tap_closer: list[Tap], binding: str
) -> None:
    """events() opened on a receiver already waiting for a datagram: every
    Received it gives names lo and the group, the first one too."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    join(receiver, group, interface="lo")
    receiver.start()
    sender = d.sender()
    sender.send((group, receiver.port), "warm-up")
    receiver.wait_for("RECEIVED")  # the reader is back waiting for the next one
    tap = Tap(receiver.runner, receiver.obj)
    tap_closer.append(tap)
    sender.send((group, receiver.port), "first")
    sender.send((group, receiver.port), "second")
    events = tap.received(2)
    assert [e.data for e in events] == ["first", "second"]
    where = [(e.interface.name if e.interface else None, e.group) for e in events]
    assert where == [("lo", group), ("lo", group)], events


# -- all or nothing, at the OS --------------------------------------------------------------


def _max_memberships() -> int:
    try:
        with open("/proc/sys/net/ipv4/igmp_max_memberships") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return 0


def test_a_join_the_os_refuses_undoes_the_rest_of_its_call(d: Driver) -> None:
    """While listening, the OS refuses the last group of a call (igmp_max_memberships
    reached: ENOBUFS): 1007, and the call's other group is left again on the OS
    side too (its datagrams no longer arrive) and not listed."""
    limit = _max_memberships()
    if not 2 <= limit <= 64:
        pytest.skip(f"net.ipv4.igmp_max_memberships is {limit}: not a small limit to reach")
    groups = d.groups(limit + 1)
    kept, (undone, refused) = groups[: limit - 1], groups[limit - 1 :]
    receiver = d.receiver()
    receiver.start()
    join(receiver, *kept, interface="lo")
    assert error_code(d, lambda: join(receiver, undone, refused, interface="lo")) == 1007
    assert receiver.groups == kept
    assert memberships(receiver) == [Membership(g, "lo", None) for g in kept]
    sender = d.sender()
    sender.send((undone, receiver.port), "undone")
    sender.send((kept[0], receiver.port), "marker")
    receiver.wait_for("RECEIVED")
    assert receiver.received() == ["marker"]
    join(receiver, undone, interface="lo")  # the OS has room for one again
    sender.send((undone, receiver.port), "joined now")
    receiver.wait_for("RECEIVED", 2)
    assert receiver.received() == ["marker", "joined now"]
