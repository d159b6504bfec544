"""CastReceiver and CastSender, on loopback only.

Receivers bind ``('0.0.0.0', 0)`` (or a port another receiver of the same test
took) and join on 127.0.0.1; senders have TTL 0 and interface 127.0.0.1;
groups are random in 239.255.0.0/16.  "Not received" is shown without waiting
for time to pass: a marker datagram to a joined group is sent after the one
that must not arrive, from the same socket; once the marker is in, the other
would have been too.
"""

from __future__ import annotations

import logging

import pytest

from .driver import NONE, Driver


def test_started_received_stoped(d: Driver) -> None:
    """STARTED (receiver,) when start returns; datagrams arrive as (receiver, data);
    SENDED (sender, data) when send returns; STOPED when stop returns; stop again:
    nothing."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    receiver.joinGroup(group)
    assert not receiver.isAlive
    receiver.start()
    d.expect({"receiver1": [("STARTED",)]}, timeout=0)
    assert receiver.isAlive and receiver.host[0] == "0.0.0.0" and receiver.port > 0
    sender = d.sender()
    data = bytearray(b"hello group")
    sender.send((group, receiver.port), data)
    d.expect({"sender1": [("SENDED", bytearray(b"hello group"))]}, partial=True, timeout=0)
    receiver.wait_for("RECEIVED")
    receiver.stop()
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", "hello group"), ("STOPED",)],
            "sender1": [("SENDED", bytearray(b"hello group"))],
        },
        timeout=0,
    )
    assert not receiver.isAlive
    receiver.stop()
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", "hello group"), ("STOPED",)],
            "sender1": [("SENDED", bytearray(b"hello group"))],
        },
        timeout=0,
    )


def test_sender_hands_back_each_data_object(d: Driver) -> None:
    """str, bytes, bytearray, memoryview: each SENDED carries the very object."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    receiver.joinGroup(group)
    receiver.start()
    sender = d.sender()
    items: list[object] = ["text é", b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview")]
    for item in items:
        sender.send((group, receiver.port), item)
    d.expect(
        {
            "receiver1": [("STARTED",)]
            + [("RECEIVED", s) for s in ("text é", "bytes", "bytearray", "memoryview")],
            "sender1": [("SENDED", item) for item in items],
        }
    )


def test_receiver_host_may_be_a_port(d: Driver) -> None:
    """``host`` may be a bare port: all addresses, that port."""
    probe = d.receiver(start=True)
    port = probe.port
    probe.stop()
    receiver = d.receiver(port)
    assert receiver.host == ("0.0.0.0", port)
    receiver.start()
    assert receiver.host == ("0.0.0.0", port)


def test_encoding_none_gives_bytes(d: Driver) -> None:
    """encoding=None: RECEIVED delivers the bytes, undecoded."""
    (group,) = d.groups(1)
    receiver = d.receiver(encoding=NONE)
    receiver.joinGroup(group)
    receiver.start()
    d.sender(encoding=NONE).send((group, receiver.port), b"\xff\x00raw")
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", b"\xff\x00raw")],
            "sender1": [("SENDED", b"\xff\x00raw")],
        }
    )


def test_join_and_drop_before_and_after_start(d: Driver) -> None:
    """Groups joined before start are joined at start, one dropped before start is not;
    join works while listening; after a drop that group's datagrams stop."""
    first, second, dropped_early, dropped_late = d.groups(4)
    receiver = d.receiver()
    receiver.joinGroup(first, dropped_early, dropped_late)
    receiver.dropGroup(dropped_early)
    receiver.start()
    receiver.joinGroup(second)
    assert receiver.groups == [first, dropped_late, second]
    sender = d.sender()
    port = receiver.port
    sender.send((first, port), "to first")
    sender.send((second, port), "to second")
    sender.send((dropped_late, port), "before drop")
    receiver.wait_for("RECEIVED", 3)
    receiver.dropGroup(dropped_late)
    assert receiver.groups == [first, second]
    sender.send((dropped_late, port), "after drop")
    sender.send((dropped_early, port), "never joined")
    sender.send((second, port), "marker")
    receiver.wait_for("RECEIVED", 4)
    d.expect(
        {
            "receiver1": [
                ("STARTED",),
                ("RECEIVED", "to first"),
                ("RECEIVED", "to second"),
                ("RECEIVED", "before drop"),
                ("RECEIVED", "marker"),
            ]
        },
        partial=True,
    )


def test_groups_survive_a_restart(d: Driver) -> None:
    """stop then start (the same object) joins the configured groups again."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    receiver.joinGroup(group)
    receiver.start()
    receiver.stop()
    assert receiver.groups == [group] and not receiver.isAlive
    receiver.start()
    d.sender().send((group, receiver.port), "again")
    d.expect(
        {
            "receiver1": [("STARTED",), ("STOPED",), ("STARTED",), ("RECEIVED", "again")],
            "sender1": [("SENDED", "again")],
        }
    )


def test_join_and_drop_take_several_or_one_list(d: Driver) -> None:
    """joinGroup/dropGroup take several addresses, or one list or tuple of them."""
    a, b, c, e = d.groups(4)
    receiver = d.receiver()
    receiver.joinGroup(a, b)
    receiver.joinGroup([c])
    receiver.joinGroup((e,))
    assert receiver.groups == [a, b, c, e]
    receiver.dropGroup([a, c])
    receiver.dropGroup(b, e)
    assert receiver.groups == []


def test_groups_is_a_copy(d: Driver) -> None:
    """Mutating the list ``groups`` returned changes nothing."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    receiver.joinGroup(group)
    groups = receiver.raw_groups()
    groups.clear()
    groups.append("239.255.0.9")
    assert receiver.groups == [group]


def test_two_receivers_share_a_port(d: Driver) -> None:
    """Two receivers on one port, both joined: one datagram reaches both."""
    (group,) = d.groups(1)
    first = d.receiver()
    first.joinGroup(group)
    first.start()
    second = d.receiver(("0.0.0.0", first.port))
    second.joinGroup(group)
    second.start()
    assert second.host == first.host
    d.sender().send((group, first.port), "both")
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", "both")],
            "receiver2": [("STARTED",), ("RECEIVED", "both")],
            "sender1": [("SENDED", "both")],
        }
    )


def test_receivers_on_one_port_get_only_their_own_groups(d: Driver) -> None:
    """Two receivers on one port: each gets exactly the groups it has joined.

    The first joins both groups and drops the shared one; the second joins
    only the shared one.  Datagrams come from 8 senders (8 source ports), so a
    kernel picking one socket of the port by a hash of the source cannot pass
    by luck.
    """
    shared, own = d.groups(2)
    first = d.receiver()
    first.joinGroup(shared, own)
    first.start()
    second = d.receiver(("0.0.0.0", first.port))
    second.joinGroup(shared)
    second.start()
    first.dropGroup(shared)
    for n in range(8):
        sender = d.sender()
        sender.send((shared, first.port), f"shared {n}")
        sender.send((own, first.port), f"own {n}")
        sender.close()
    d.expect(
        {
            "receiver1": [("RECEIVED", f"own {n}") for n in range(8)],
            "receiver2": [("RECEIVED", f"shared {n}") for n in range(8)],
        },
        only=("RECEIVED",),
    )


@pytest.mark.parametrize("how", ["constructor", "property"])
def test_a_truncated_datagram_is_reported_not_delivered(d: Driver, how: str) -> None:
    """A datagram longer than recvBuffer: no RECEIVED, a warning naming recvBuffer on
    'jfsocket'; shorter ones still arrive."""
    (group,) = d.groups(1)
    if how == "constructor":
        receiver = d.receiver(recv_buffer=16)
    else:
        receiver = d.receiver()
        receiver.recvBuffer = 16
    assert receiver.recvBuffer == 16
    receiver.joinGroup(group)
    receiver.start()
    sender = d.sender()
    sender.send((group, receiver.port), "x" * 100)
    sender.send((group, receiver.port), "short")
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", "short")],
            "sender1": [("SENDED", "x" * 100), ("SENDED", "short")],
        }
    )
    warned = [line for line in d.logs() if line.level == logging.WARNING]
    assert len(warned) == 1 and "recvBuffer" in warned[0].message, d.logs()


def test_sender_close_then_send_again(d: Driver) -> None:
    """close releases the sender's socket (twice is fine); a later send opens a new one."""
    (group,) = d.groups(1)
    receiver = d.receiver()
    receiver.joinGroup(group)
    receiver.start()
    sender = d.sender()
    sender.send((group, receiver.port), "one")
    sender.close()
    sender.close()
    sender.send((group, receiver.port), "two")
    d.expect(
        {
            "receiver1": [("STARTED",), ("RECEIVED", "one"), ("RECEIVED", "two")],
            "sender1": [("SENDED", "one"), ("SENDED", "two")],
        }
    )


def test_receiver_stops_itself_from_its_received(d: Driver) -> None:
    """stop inside the receiver's own RECEIVED: no deadlock; STOPED after the callback."""
    (group,) = d.groups(1)
    receiver = d.receiver()

    def stop_now(ev: object) -> None:
        receiver.stop()
        d.note(receiver, "stop returned")

    receiver.on("RECEIVED", stop_now)
    receiver.joinGroup(group)
    receiver.start()
    d.sender().send((group, receiver.port), "stop")
    d.expect(
        {
            "receiver1": [
                ("STARTED",),
                ("RECEIVED", "stop"),
                ("note", "stop returned"),
                ("STOPED",),
            ],
            "sender1": [("SENDED", "stop")],
        }
    )
    assert not receiver.isAlive
