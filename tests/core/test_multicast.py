"""Multicast membership (all-or-nothing) and the sender's rules."""

from __future__ import annotations

import errno
import logging

import pytest
from jfsocket.core import (
    ALL,
    ANCILLARY_SIZE,
    CallbackRegistry,
    Dispatcher,
    EventTypes,
    GroupChange,
    LocalProtocolError,
    Received,
    ReceiverModel,
    ReceiverState,
    Role,
    SenderModel,
    SendFailed,
    Sent,
    SocketError,
    Started,
    Stopped,
)

G1, G2, G3 = "239.255.0.1", "239.255.0.2", "239.255.0.3"
IFACE = "127.0.0.1"


def receiver() -> ReceiverModel:
    """A receiver on port 5000, interface 127.0.0.1."""
    return ReceiverModel("rx", 5000, interface=IFACE)


def join(model: ReceiverModel, *ips: object) -> None:
    """Plan and commit (what a binding does once the OS changes are applied)."""
    model.commit(model.plan_join(*ips))


def test_host_forms() -> None:
    """A port listens on all addresses; (ip, port) on one; bad forms are errors."""
    assert ReceiverModel("r", 5000).host == ("0.0.0.0", 5000)
    assert ReceiverModel("r", ("127.0.0.1", 0)).address == ("127.0.0.1", 0)
    assert ReceiverModel("r", ("::", 5000)).interface == "::"
    with pytest.raises(ValueError, match="host"):
        ReceiverModel("r", 70000)
    with pytest.raises(TypeError, match="host"):
        ReceiverModel("r", "5000")
    with pytest.raises(TypeError, match="host"):
        ReceiverModel("r", ("127.0.0.1", 1, 2))
    with pytest.raises(TypeError, match="interface"):
        ReceiverModel("r", 5000, interface=1.5)
    with pytest.raises(ValueError, match="IP version"):
        ReceiverModel("r", 5000, interface="::1")


def test_join_and_drop_before_start() -> None:
    """Before start: recorded, no OS changes; groups is a copy in join order."""
    model = receiver()
    plan = model.plan_join(G2, G1)
    assert plan.changes == ()
    assert model.groups == []  # nothing before commit
    model.commit(plan)
    assert model.groups == [G2, G1]
    model.groups.append("x")
    assert model.groups == [G2, G1]
    model.commit(model.plan_drop([G2]))
    assert model.groups == [G1]


def test_join_while_listening_gives_os_changes() -> None:
    """After start: the plan carries one change per group, on the interface."""
    model = receiver()
    join(model, G1)
    assert model.start() == ("0.0.0.0", 5000)
    assert model.joins() == (GroupChange(join=True, group=G1, interface=IFACE, address=IFACE),)
    assert model.listening(("0.0.0.0", 5000)) == [Started(source="rx", host=("0.0.0.0", 5000))]
    plan = model.plan_join(G2, G3)
    assert plan.changes == (
        GroupChange(join=True, group=G2, interface=IFACE, address=IFACE),
        GroupChange(join=True, group=G3, interface=IFACE, address=IFACE),
    )
    assert plan.changes[0].inverse() == GroupChange(
        join=False, group=G2, interface=IFACE, address=IFACE
    )
    model.commit(plan)
    drop = model.plan_drop(G1)
    assert drop.changes == (GroupChange(join=False, group=G1, interface=IFACE, address=IFACE),)


@pytest.mark.parametrize(
    ("ips", "code"),
    [
        ((G1, "10.0.0.1"), 1004),  # the SPEC's own example: joins neither
        (("239.255.0.9", "nonsense"), 1004),
        ((G1, G1), 1002),
        ((G2,), 1002),
        ((G1, 5), 1004),
        (("ff02::1",), 1004),  # IPv6 group on an IPv4 receiver
    ],
)
def test_join_is_all_or_nothing(ips: tuple[object, ...], code: int) -> None:
    """Any bad address: the code, and groups unchanged."""
    model = receiver()
    join(model, G2)
    with pytest.raises(SocketError) as info:
        model.plan_join(*ips)
    assert info.value.errno == code
    assert model.groups == [G2]


@pytest.mark.parametrize(
    ("ips", "code"), [((G1, G3), 1003), ((G1, "10.1.2.3"), 1004), ((G1, G1), 1003)]
)
def test_drop_is_all_or_nothing(ips: tuple[object, ...], code: int) -> None:
    """Dropping a group not joined: 1003; not multicast: 1004; nothing dropped."""
    model = receiver()
    join(model, G1, G2)
    with pytest.raises(SocketError) as info:
        model.plan_drop(*ips)
    assert info.value.errno == code
    assert model.groups == [G1, G2]


def test_stale_plans_cannot_be_committed() -> None:
    """A plan made before another change, or before start, is refused."""
    model = receiver()
    plan = model.plan_join(G1)
    join(model, G2)
    with pytest.raises(LocalProtocolError):
        model.commit(plan)
    early = model.plan_join(G3)
    model.start()
    with pytest.raises(LocalProtocolError):
        model.commit(early)  # made before start: stale
    during = model.plan_join(G3)  # while starting: no OS change, but counted ...
    model.commit(during)
    assert [c.group for c in model.joins()] == [G2, G3]  # ... by the joins read after binding
    model.listening(("0.0.0.0", 5000))


def test_lifecycle() -> None:
    """start 1000 while started; stop idempotent; groups survive stop and rejoin on start."""
    model = receiver()
    join(model, G1, G2)
    model.start()
    with pytest.raises(SocketError, match="1000"):
        model.start()
    model.listening(("0.0.0.0", 5000))
    assert model.is_listening
    with pytest.raises(SocketError, match="1000"):
        model.start()
    drops = model.stop()
    assert drops is not None and [c.group for c in drops] == [G1, G2]
    assert not any(c.join for c in drops)
    assert model.stopped() == [Stopped(source="rx")]
    assert model.stop() is None
    assert model.groups == [G1, G2]
    model.start()
    assert [c.group for c in model.joins()] == [G1, G2]
    with pytest.raises(LocalProtocolError):
        receiver().joins()  # only while starting


def test_start_failure() -> None:
    """A failed bind or join leaves the receiver stopped and startable."""
    model = receiver()
    model.start()
    error = model.start_failed(OSError(98, "in use"))
    assert error.errno == 1005
    assert model.state is ReceiverState.STOPPED
    model.start()
    inner = SocketError(1004)
    assert model.start_failed(inner) is inner
    with pytest.raises(LocalProtocolError):
        model.start_failed(OSError())
    with pytest.raises(LocalProtocolError):
        model.listening(("0.0.0.0", 1))
    assert model.membership_failed(OSError(19, "no device")).errno == 1007


def test_recv_buffer() -> None:
    """Default 256, settable, validated."""
    model = receiver()
    assert model.recv_buffer == 256
    model.recv_buffer = 9000
    assert model.recv_buffer == 9000
    with pytest.raises(TypeError, match="recvBuffer"):
        model.recv_buffer = "1"


def test_datagrams_and_truncation(caplog: pytest.LogCaptureFixture) -> None:
    """Whole datagrams decode; cut ones are flagged and logged, never passed off as whole."""
    model = receiver()
    src = ("127.0.0.1", 6000)
    assert model.receive_datagram(b"hi", src) == [Received(source="rx", data="hi", remote=src)]
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        (event,) = model.receive_datagram(b"cut", src, truncated=True)
    assert isinstance(event, Received) and event.truncated
    assert "recvBuffer" in caplog.text
    raw = ReceiverModel("rx", 5000, encoding=None)
    assert raw.receive_datagram(b"\xff", src)[0] == Received(source="rx", data=b"\xff", remote=src)
    # A binding that reads whole datagrams hands over one longer than recvBuffer:
    # the core cuts it and flags it, as the OS does with MSG_TRUNC.
    model.recv_buffer = 4
    (event,) = model.receive_datagram(b"longer", src)
    assert isinstance(event, Received) and (event.data, event.truncated) == ("long", True)


def test_sender_validation() -> None:
    """ttl 0-255, interface an IP, loopback a bool."""
    with pytest.raises(ValueError, match="ttl"):
        SenderModel("tx", ttl=256)
    with pytest.raises(TypeError, match="ttl"):
        SenderModel("tx", ttl="1")
    with pytest.raises(SocketError, match="interface 'lo'") as caught:
        SenderModel("tx", interface="lo")  # no such name in an empty table
    assert caught.value.errno == 1007
    with pytest.raises(TypeError, match="loopback"):
        SenderModel("tx", loopback=1)
    model = SenderModel("tx", ttl=0, interface=IFACE)
    assert (model.ttl, model.interface, model.loopback) == (0, IFACE, True)
    assert SenderModel("tx").ttl == 1


def test_sender_send() -> None:
    """Group 1004, port and data checked first; then a ticket that settles once."""
    model = SenderModel("tx", ttl=0, interface=IFACE)
    with pytest.raises(SocketError, match="1004"):
        model.send(("127.0.0.1", 5000), "x")
    with pytest.raises(SocketError, match="1004"):
        model.send(("ff02::1", 5000), "x")  # IPv6 group, IPv4 interface
    with pytest.raises(TypeError, match="remote"):
        model.send(G1, "x")
    with pytest.raises(ValueError, match="remote\\[1\\]"):
        model.send((G1, 0), "x")
    with pytest.raises(TypeError, match="data"):
        model.send((G1, 5000), 12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="datagram"):
        model.send((G1, 5000), b"x" * 65508)
    ticket, payload, target = model.send((G1, 5000), "é")
    assert (payload, target) == (b"\xc3\xa9", (G1, 5000))
    assert model.sent(ticket) == [Sent(source="tx", data="é")]
    ticket, _, _ = model.send((G1, 5000), b"y")
    err = OSError("unreachable")
    assert model.send_failed(ticket, err) == [SendFailed(source="tx", data=b"y", error=err)]
    with pytest.raises(LocalProtocolError):
        model.sent(ticket)


def test_sender_written_counts_the_bytes() -> None:
    """A datagram the OS took whole is SENDED; one it took in part is SENDFAIL, EMSGSIZE."""
    model = SenderModel("tx", ttl=0, interface=IFACE)
    ticket, payload, _ = model.send((G1, 5000), b"whole")
    assert model.written(ticket, len(payload), payload) == [Sent(source="tx", data=b"whole")]
    ticket, payload, _ = model.send((G1, 5000), b"cut")
    (event,) = model.written(ticket, 1, payload)
    assert isinstance(event, SendFailed) and event.data == b"cut"
    assert isinstance(event.error, OSError) and event.error.errno == errno.EMSGSIZE
    assert "1 of 3" in str(event.error)


def test_sender_remembers_remotes_but_checks_every_new_one() -> None:
    """A remote validated once is not parsed again; one that is refused stays refused,
    and (group, True) is not taken for the (group, 1) remembered."""
    model = SenderModel("tx", ttl=0, interface=IFACE)
    for _ in range(3):
        _, _, target = model.send((G1, 1), b"x")
        assert target == (G1, 1)
    with pytest.raises(TypeError, match="remote\\[1\\]"):
        model.send((G1, True), b"x")
    for _ in range(2):
        with pytest.raises(SocketError, match="1004"):
            model.send(("ff02::1", 5000), b"x")
    for port in range(1, 300):  # more remotes than it keeps: it forgets, and checks again
        assert model.send((G1, port), b"y")[2] == (G1, port)


def test_sender_settle_makes_no_sended_nobody_would_see() -> None:
    """settle() closes the ticket quietly with no callback; with one it pushes SENDED; a
    datagram sent in part is SENDFAIL either way."""
    registry = CallbackRegistry(Role.SENDER)
    queue = Dispatcher(registry)
    model = SenderModel("tx", ttl=0, interface=IFACE)
    ticket, payload, _ = model.send((G1, 5000), b"quiet")
    assert model.settle(ticket, len(payload), payload, queue) is False
    assert queue.pushed == 0
    seen: list[tuple[object, ...]] = []
    registry.bind(EventTypes.SENDED, lambda *a: seen.append(a))
    registry.bind(EventTypes.SENDFAIL, lambda *a: seen.append(a))
    ticket, payload, _ = model.send((G1, 5000), b"heard")
    assert model.settle(ticket, len(payload), payload, queue) is True
    ticket, payload, _ = model.send((G1, 5000), b"cut")
    assert model.settle(ticket, 1, payload, queue) is False  # queued behind, busy
    queue.run()
    assert [a[1] for a in seen] == [b"heard", b"cut"]
    assert isinstance(seen[1][2], OSError)


class _Sink:
    """A stream that keeps nothing (only its being there matters)."""

    def send_nowait(self, event: object) -> None:
        """Drop it."""

    def close(self) -> None:
        """Nothing to end."""


def test_ancillary_room_only_for_streams_and_pktinfo_per_family() -> None:
    """recvmsg needs room for packet info only when a stream will see it; the
    option that asks for it is the receiver's family's."""
    queue = Dispatcher(CallbackRegistry(Role.RECEIVER))
    model = receiver()
    assert model.ancillary(queue) == 0
    queue.subscribe(_Sink())
    assert model.ancillary(queue) == ANCILLARY_SIZE
    assert model.pktinfo == (0, 8)  # IPPROTO_IP, Linux's IP_PKTINFO
    assert ReceiverModel("rx", ("::", 5000)).pktinfo == (41, 49)  # IPV6_RECVPKTINFO


def test_receiver_interface_cannot_be_all() -> None:
    """A receiver's default interface names one interface: ALL is for joinGroup."""
    with pytest.raises(ValueError, match="ALL"):
        ReceiverModel("rx", 5000, interface=ALL)


def test_only_leaves_of_memberships_already_gone_count_as_done() -> None:
    """A leave the OS refuses because the membership went with its interface is
    done; a join refused so, or a leave refused otherwise, is not."""
    leave = GroupChange(join=False, group=G1, interface="eth9", address=IFACE, index=9)
    assert leave.done_anyway(OSError(errno.ENODEV, "gone"))
    assert leave.done_anyway(OSError(errno.EADDRNOTAVAIL, "not a member"))
    assert not leave.done_anyway(OSError(errno.EPERM, "no"))
    assert not leave.done_anyway(ValueError("not an OSError"))
    assert not leave.inverse().done_anyway(OSError(errno.ENODEV, "gone"))
