"""Multicast across two hosts, simulated by two network namespaces joined by a
veth pair (tests/netns.py).  The receivers run in B and the senders in A."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest

from ..netns import ADDRESS_A, ADDRESS_B, Hosts, NsScript, make_namespaces


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Hosts]:
    """Two namespaces A and B joined by a veth pair; deleted afterwards."""
    yield from make_namespaces()


RECEIVERS = """
import sys, threading
from jfsocket.bindings.threaded import CastReceiver
group, own, iface = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
def say(line):
    with lock:
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()
def printer(name):
    return lambda receiver, data: say(f"{name} {data}")
r1 = CastReceiver(("0.0.0.0", 0), {"onReceived": printer("R1")}, interface=iface)
r1.joinGroup(group, own)
r1.start()
r2 = CastReceiver(("0.0.0.0", r1.host[1]), {"onReceived": printer("R2")}, interface=iface)
r2.joinGroup(group)
r2.start()
say(f"READY {r1.host[1]}")
for line in sys.stdin:
    if line.strip() == "drop":
        r1.dropGroup(group)
        say("DROPPED")
    elif line.strip() == "quit":
        break
r1.stop()
r2.stop()
say("BYE")
"""

SENDERS = """
import sys, threading
from jfsocket.bindings.threaded import CastReceiver, CastSender
group, port, iface = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def say(*words):
    with lock:
        sys.stdout.write(" ".join(map(str, words)) + "\\n")
        sys.stdout.flush()
# A member of the group on the sending host: Linux applies "TTL 0 stays on this
# host" only to multicast routes whose output interface has a local member.
local = CastReceiver(
    ("0.0.0.0", port), {"onReceived": lambda r, d: say("A", d)}, interface=iface
)
local.joinGroup(group)
local.start()
say("READY")
for line in sys.stdin:
    words = line.split()
    if words == ["quit"]:
        break
    # A new sender (so a new source port) for every datagram.
    ttl, target, message = int(words[0]), words[1], words[2]
    with CastSender({"onSended": lambda s, d: say("SENT", d)}, ttl=ttl, interface=iface) as sender:
        sender.send((target, port), message)
local.stop()
say("BYE")
"""


class Scripts(NamedTuple):
    """The two scripts of a test and the groups they use."""

    receivers: NsScript  # in B: R1 joined to group and own, R2 joined to group
    senders: NsScript  # in A: senders, and a local member of group
    group: str
    own: str


@pytest.fixture
def scripts(namespaces: Hosts) -> Iterator[Scripts]:
    """Receivers in B and senders in A, both READY."""
    ns_a, ns_b = namespaces.a, namespaces.b
    picked = random.sample(range(1, 65535), 2)
    group, own = (f"239.255.{n >> 8}.{n & 255}" for n in picked)
    receivers = NsScript(ns_b, RECEIVERS, group, own, ADDRESS_B)
    try:
        port = int(receivers.expect_line("READY").split()[1])
        senders = NsScript(ns_a, SENDERS, group, str(port), ADDRESS_A)
        try:
            senders.expect_line("READY")
            yield Scripts(receivers, senders, group, own)
        finally:
            senders.close()
    finally:
        receivers.close()


def _has(*wanted: str) -> Callable[[list[str]], bool]:
    return lambda lines: all(w in lines for w in wanted)


def test_both_receivers_get_a_datagram_from_another_host(
    scripts: Scripts,
) -> None:
    """A sender in A (ttl=1, interface 10.77.0.1) reaches both receivers in B on one port."""
    receivers, senders, group, _ = scripts
    senders.tell(f"1 {group} first")
    senders.expect(_has("SENT first"))
    receivers.expect(_has("R1 first", "R2 first"))
    senders.tell(f"1 {group} second")
    receivers.expect(_has("R1 second", "R2 second"))


def test_ttl_zero_stays_on_the_sending_host(
    scripts: Scripts,
) -> None:
    """ttl=0 reaches the member on the sending host but never B; ttl=1 after it reaches B.

    (Linux drops TTL-0 multicast at the output only when the outgoing interface
    has a local member of the group, hence the receiver in A.)
    """
    receivers, senders, group, _ = scripts
    senders.tell(f"0 {group} local")
    senders.expect(_has("SENT local", "A local"))
    senders.tell(f"1 {group} remote")
    senders.expect(_has("SENT remote", "A remote"))
    lines = receivers.expect(_has("R1 remote", "R2 remote"))
    assert not any(line.endswith(" local") for line in lines), lines


def test_dropped_receiver_stops_while_other_continues(scripts: Scripts) -> None:
    """After R1 drops the group it gets no more of it; R2, still joined, does.

    R1 keeps its own group, which R2 never joined: each must get exactly its
    groups' datagrams, sent from 8 source ports (see the loopback twin of this test).
    """
    receivers, senders, group, own = scripts
    senders.tell(f"1 {group} before")
    receivers.expect(_has("R1 before", "R2 before"))
    receivers.tell("drop")
    receivers.expect(_has("DROPPED"))
    for n in range(8):
        senders.tell(f"1 {group} after-{n}")
        senders.tell(f"1 {own} own-{n}")
    senders.expect(_has(*(f"SENT own-{n}" for n in range(8))))
    lines = receivers.expect(lambda seen: len(seen[seen.index("DROPPED") + 1 :]) >= 16)
    after = lines[lines.index("DROPPED") + 1 :]
    assert sorted(x for x in after if x.startswith("R1 ")) == [f"R1 own-{n}" for n in range(8)]
    assert sorted(x for x in after if x.startswith("R2 ")) == [f"R2 after-{n}" for n in range(8)]
