"""Multicast on the memory network: memberships per virtual interface, faults, sizes."""

from __future__ import annotations

import pytest
from jfsocket.bindings.memory import ALL, CastReceiver, CastSender, Network, SocketError
from jfsocket.core import Received, SendFailed

GROUP = "239.255.2.3"


def _received(net: Network, name: str) -> list[Received]:
    return [e.event for e in net.trace if e.name == name and isinstance(e.event, Received)]


def _two_links() -> tuple[Network, CastReceiver, CastSender, CastSender]:
    """Host r on links 'red' (eth0) and 'blue' (eth1); a sender on each link."""
    net = Network()
    r = net.host("r")
    r.interface("eth0", "10.1.0.1", link="red")
    r.interface("eth1", "10.2.0.1", link="blue")
    red = net.host("red", "10.1.0.2", link="red").CastSender()
    blue = net.host("blue", "10.2.0.2", link="blue").CastSender()
    receiver = r.CastReceiver(5000, encoding=None)
    return net, receiver, red, blue


def test_membership_is_per_interface() -> None:
    """Joined on eth1 only: what comes on eth0's link is not delivered; the
    Received says where it arrived and to which group."""
    net, receiver, red, blue = _two_links()
    receiver.joinGroup(GROUP, interface="eth1")
    receiver.start()
    red.send((GROUP, 5000), b"red")
    blue.send((GROUP, 5000), b"blue")
    net.run()
    (got,) = _received(net, "CastReceiver#1")
    assert got.data == b"blue" and got.remote == ("10.2.0.2", 49152)
    assert got.interface is not None and got.interface.name == "eth1"
    assert got.group == GROUP
    receiver.stop()


def test_join_all_and_drop_one() -> None:
    """ALL joins on every interface (lo included); dropping eth0 keeps the others."""
    net, receiver, red, blue = _two_links()
    receiver.start()
    receiver.joinGroup(GROUP, interface=ALL)
    assert [m.interface for m in receiver.memberships] == ["lo", "eth0", "eth1"]
    receiver.dropGroup(GROUP, interface="eth0")
    red.send((GROUP, 5000), b"red")
    blue.send((GROUP, 5000), b"blue")
    net.run()
    assert [r.data for r in _received(net, "CastReceiver#1")] == [b"blue"]
    with pytest.raises(SocketError) as info:
        receiver.joinGroup(GROUP, interface="eth9")
    assert info.value.errno == 1007
    receiver.stop()


def test_ttl_zero_and_loopback() -> None:
    """TTL 0 stays on the host (loopback: its own receivers get it); loopback=False
    does not come back."""
    net = Network()
    a = net.host("a", "10.0.0.1")
    b = net.host("b", "10.0.0.2")
    here = a.CastReceiver(6000)
    there = b.CastReceiver(6000)
    for receiver in (here, there):
        receiver.joinGroup(GROUP)
        receiver.start()
    a.CastSender(ttl=0).send((GROUP, 6000), "local")
    a.CastSender(loopback=False).send((GROUP, 6000), "away")
    net.run()
    assert [r.data for r in _received(net, "CastReceiver#1")] == ["local"]
    assert [r.data for r in _received(net, "CastReceiver#2")] == ["away"]


def test_max_datagram_and_truncation() -> None:
    """Longer than the network's max_datagram: SENDFAIL; longer than recvBuffer: cut
    and flagged."""
    net = Network(max_datagram=100)
    receiver = net.CastReceiver(7000, recv_buffer=10)
    receiver.joinGroup(GROUP)
    receiver.start()
    sender = net.CastSender()
    sender.send((GROUP, 7000), "x" * 101)
    sender.send((GROUP, 7000), "y" * 20)
    net.run()
    failed = [e.event for e in net.trace if isinstance(e.event, SendFailed)]
    assert len(failed) == 1 and getattr(failed[0].error, "errno", None) == 90  # EMSGSIZE
    (got,) = _received(net, "CastReceiver#1")
    assert got.data == "y" * 10 and got.truncated
    receiver.stop()


def test_loss_duplication_reordering_are_seeded() -> None:
    """With loss, duplication and reordering the copies differ from what was sent,
    the same way for the same seed."""

    def run(seed: int) -> list[object]:
        net = Network(seed=seed, loss=0.2, duplicate=0.2, reorder=0.3, latency=0.001)
        a = net.host("a", "10.0.0.1")
        receiver = net.host("b", "10.0.0.2").CastReceiver(8000)
        receiver.joinGroup(GROUP)
        receiver.start()
        sender = a.CastSender()
        for n in range(50):
            sender.send((GROUP, 8000), str(n))
            net.advance(0.0005)
        net.advance(1)
        return [r.data for r in _received(net, "CastReceiver#1")]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert first != [str(n) for n in range(50)]
    assert set(first) <= {str(n) for n in range(50)}


def test_source_specific_membership() -> None:
    """A join with source= takes that sender's datagrams only."""
    net = Network()
    net.host("r", "10.0.0.1")
    receiver = net.host("r").CastReceiver(9000)
    receiver.joinGroup("232.1.1.1", source="10.0.0.2")
    receiver.start()
    net.host("s2", "10.0.0.2").CastSender().send(("232.1.1.1", 9000), "yes")
    net.host("s3", "10.0.0.3").CastSender().send(("232.1.1.1", 9000), "no")
    net.run()
    assert [r.data for r in _received(net, "CastReceiver#1")] == ["yes"]
    receiver.stop()


def test_events_are_what_the_runs_produced() -> None:
    """receiver.events(): the typed events so far; nothing more is a TimeoutError
    at once (no real time passes); STOPED ends it."""
    net = Network()
    receiver = net.CastReceiver(5100)
    receiver.joinGroup(GROUP)
    stream = receiver.events()
    receiver.start()
    net.CastSender().send((GROUP, 5100), "one")
    net.run()
    assert type(stream.get()).__name__ == "Started"
    got = stream.get()
    assert isinstance(got, Received) and got.data == "one" and got.group == GROUP
    with pytest.raises(TimeoutError):
        stream.get()
    receiver.stop()
    assert type(next(stream)).__name__ == "Stopped"
    assert list(stream) == []
