"""UDP multicast on loopback only: receivers joined on 127.0.0.1, senders with ttl=0.

Groups are in 239.255.0.0/16 (administratively scoped); every receiver binds
port 0 or the port of another receiver of the same test, so tests do not hear
each other.
"""

from __future__ import annotations

import logging
import random
import threading

import pytest
from jfsocket.bindings.threaded import CastReceiver, CastSender, SocketError

from .conftest import RECEIVER_KEYS, EventLog, Objects, wait_until


def _groups(count: int) -> list[str]:
    """*count* distinct random groups in 239.255.0.0/16."""
    picked = random.sample(range(1, 65535), count)
    return [f"239.255.{n >> 8}.{n & 255}" for n in picked]


def test_started_stoped_and_receive(objects: Objects) -> None:
    """STARTED (receiver,) when start() returns; datagrams arrive; STOPED when stop() returns."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(group)
    assert not receiver.isAlive
    receiver.start()
    assert log.records == [("onStarted", (receiver,))]
    assert receiver.isAlive and receiver.host[1] > 0
    sender_log = EventLog()
    sender = objects.sender(sender_log)
    data = bytearray(b"hello group")
    sender.send((group, receiver.host[1]), data)
    assert sender_log.records == [("onSended", (sender, data))]
    assert sender_log.data("onSended")[0] is data
    log.wait_for("onReceived")
    assert log.args("onReceived") == [(receiver, "hello group")]
    receiver.stop()
    assert log.names()[-1] == "onStoped" and log.args("onStoped") == [(receiver,)]
    assert not receiver.isAlive
    receiver.stop()
    assert log.count("onStoped") == 1


def test_start_twice_is_1000(objects: Objects) -> None:
    """start() on a started receiver: 1000."""
    receiver = objects.receiver()
    receiver.start()
    with pytest.raises(SocketError) as info:
        receiver.start()
    assert info.value.errno == 1000


def test_context_manager_stops_receiver() -> None:
    """``with CastReceiver(...) as r: r.start()`` stops it on exit."""
    log = EventLog()
    with CastReceiver(("0.0.0.0", 0), log.evts(RECEIVER_KEYS), interface="127.0.0.1") as receiver:
        receiver.start()
    assert not receiver.isAlive and log.names() == ["onStarted", "onStoped"]


def test_receiver_port_int_host(objects: Objects) -> None:
    """``host`` may be a bare port: all addresses, that port."""
    probe = objects.receiver()
    probe.start()
    port = probe.host[1]
    probe.stop()
    receiver = CastReceiver(port, interface="127.0.0.1")
    objects.later(receiver.stop)
    assert receiver.host == ("0.0.0.0", port)


def test_encoding_none_gives_bytes(objects: Objects) -> None:
    """encoding=None: RECEIVED delivers bytes."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log, encoding=None)
    receiver.joinGroup(group)
    receiver.start()
    objects.sender(encoding=None).send((group, receiver.host[1]), b"\xff\x00")
    log.wait_for("onReceived")
    assert log.data() == [b"\xff\x00"]


def test_join_and_drop_before_and_after_start(objects: Objects) -> None:
    """Groups joined before start are joined at start; join/drop work while listening."""
    first, second, third = _groups(3)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(first)
    receiver.joinGroup(third)
    receiver.dropGroup(third)  # before start
    receiver.start()
    receiver.joinGroup(second)  # after start
    sender = objects.sender()
    port = receiver.host[1]
    sender.send((first, port), "to first")
    sender.send((second, port), "to second")
    log.wait_for("onReceived", 2)
    assert log.data() == ["to first", "to second"]
    assert receiver.groups == [first, second]


def test_dropped_group_stops_delivering(objects: Objects) -> None:
    """After dropGroup, that group's datagrams stop; a still-joined group's arrive."""
    dropped, kept = _groups(2)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(dropped, kept)
    receiver.start()
    sender = objects.sender()
    port = receiver.host[1]
    sender.send((dropped, port), "before drop")
    log.wait_for("onReceived")
    receiver.dropGroup(dropped)
    assert receiver.groups == [kept]
    sender.send((dropped, port), "after drop")
    sender.send((kept, port), "kept")  # sent after, so it arrives after
    log.wait_for("onReceived", 2)
    assert log.data() == ["before drop", "kept"]


def test_groups_survive_restart(objects: Objects) -> None:
    """stop() then start() rejoins the configured groups."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(group)
    receiver.start()
    receiver.stop()
    assert receiver.groups == [group]
    receiver.start()  # the same object, started again
    assert receiver.host[1] > 0
    objects.sender().send((group, receiver.host[1]), "again")
    log.wait(lambda: log.data() == ["again"], what="the datagram after restart")


def test_join_is_all_or_nothing(objects: Objects) -> None:
    """``joinGroup(good, bad)`` raises 1004 and joins neither (before and after start)."""
    (group,) = _groups(1)
    receiver = objects.receiver()
    for started in (False, True):
        if started:
            receiver.start()
        with pytest.raises(SocketError) as info:
            receiver.joinGroup(group, "10.0.0.1")
        assert info.value.errno == 1004
        assert receiver.groups == []
    receiver.joinGroup(group)  # it was not half-joined: joining it now works
    assert receiver.groups == [group]


def test_join_drop_error_codes(objects: Objects) -> None:
    """1002 joining a joined group (or one twice), 1003 dropping an unjoined one, 1004 junk."""
    a, b = _groups(2)
    receiver = objects.receiver()
    receiver.joinGroup(a)
    cases: list[tuple[int, tuple[str, ...], bool]] = [
        (1002, (a,), True),
        (1002, (b, b), True),
        (1003, (b,), False),
        (1003, (a, b), False),
        (1004, ("127.0.0.1",), True),
        (1004, ("not an address",), True),
        (1004, ("240.0.0.1",), False),
    ]
    for started in (False, True):
        if started:
            receiver.start()
        for code, ips, join in cases:
            with pytest.raises(SocketError) as info:
                (receiver.joinGroup if join else receiver.dropGroup)(*ips)
            assert info.value.errno == code, (code, ips)
            assert receiver.groups == [a]


def test_join_several_and_list_forms(objects: Objects) -> None:
    """joinGroup/dropGroup take several addresses, or one list or tuple of them."""
    a, b, c, d = _groups(4)
    receiver = objects.receiver()
    receiver.joinGroup(a, b)
    receiver.joinGroup([c])
    receiver.joinGroup((d,))
    assert receiver.groups == [a, b, c, d]
    receiver.dropGroup([a, c])
    receiver.dropGroup(b, d)
    assert receiver.groups == []


def test_groups_is_a_copy(objects: Objects) -> None:
    """Mutating the list ``groups`` returns changes nothing."""
    (group,) = _groups(1)
    receiver = objects.receiver()
    receiver.joinGroup(group)
    groups = receiver.groups
    groups.clear()
    groups.append("239.255.0.9")
    assert receiver.groups == [group]


def test_two_receivers_share_a_port(objects: Objects) -> None:
    """Two receivers bound to one port, both joined: both get the datagram."""
    (group,) = _groups(1)
    log_a, log_b = EventLog(), EventLog()
    first = objects.receiver(log_a)
    first.joinGroup(group)
    first.start()
    second = objects.receiver(log_b, first.host[1])
    second.joinGroup(group)
    second.start()
    assert second.host == first.host
    objects.sender().send((group, first.host[1]), "both")
    log_a.wait_for("onReceived")
    log_b.wait_for("onReceived")
    assert log_a.data() == ["both"] and log_b.data() == ["both"]


def test_receiver_gets_only_its_own_groups(objects: Objects) -> None:
    """Two receivers on one port: each gets exactly the groups it has joined.

    The first joins both groups and drops the shared one; the second joins only
    the shared one.  Datagrams come from 8 senders (8 source ports), so a
    kernel that picks one socket of a SO_REUSEPORT group by a hash of the
    source cannot pass by luck.
    """
    shared, own = _groups(2)
    log_a, log_b = EventLog(), EventLog()
    first = objects.receiver(log_a)
    first.joinGroup(shared, own)
    first.start()
    second = objects.receiver(log_b, first.host[1])
    second.joinGroup(shared)
    second.start()
    first.dropGroup(shared)
    port = first.host[1]
    for n in range(8):
        sender = objects.sender()
        sender.send((shared, port), f"shared {n}")
        sender.send((own, port), f"own {n}")
        sender.close()
    wait_until(
        lambda: log_a.count("onReceived") + log_b.count("onReceived") >= 16,
        what="16 deliveries in all",
    )
    assert sorted(map(str, log_a.data())) == [f"own {n}" for n in range(8)]
    assert sorted(map(str, log_b.data())) == [f"shared {n}" for n in range(8)]


def test_truncated_datagram_is_not_delivered(
    objects: Objects, caplog: pytest.LogCaptureFixture
) -> None:
    """A datagram longer than recvBuffer (set before start) is not RECEIVED; it is logged."""
    caplog.set_level(logging.WARNING, logger="jfsocket")
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.recvBuffer = 16
    assert receiver.recvBuffer == 16
    receiver.joinGroup(group)
    receiver.start()
    sender = objects.sender()
    sender.send((group, receiver.host[1]), "x" * 100)
    sender.send((group, receiver.host[1]), "short")
    log.wait_for("onReceived")
    assert log.data() == ["short"]
    warned = [r for r in caplog.records if r.name == "jfsocket" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "recvBuffer" in warned[0].getMessage()


def test_recv_buffer_validation() -> None:
    """recvBuffer defaults to 256 and must be a positive int."""
    receiver = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
    assert receiver.recvBuffer == 256
    with pytest.raises(ValueError, match="recvBuffer"):
        receiver.recvBuffer = 0
    with pytest.raises(TypeError):
        receiver.recvBuffer = 1.5  # type: ignore[assignment]


def test_sender_rejects_non_multicast(objects: Objects) -> None:
    """CastSender.send to a non-multicast address: 1004, no event."""
    log = EventLog()
    sender = objects.sender(log)
    for group in ("127.0.0.1", "10.0.0.1", "nonsense", "240.0.0.1"):
        with pytest.raises(SocketError) as info:
            sender.send((group, 5000), "x")
        assert info.value.errno == 1004
    with pytest.raises(TypeError):
        sender.send(("239.255.0.1", 5000), 17)  # type: ignore[arg-type]
    assert log.records == []


def test_sender_reopens_after_close(objects: Objects) -> None:
    """close() releases the socket; a later send opens a new one."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(group)
    receiver.start()
    sender = CastSender(ttl=0, interface="127.0.0.1")
    sender.send((group, receiver.host[1]), "one")
    sender.close()
    sender.send((group, receiver.host[1]), "two")
    sender.close()
    log.wait_for("onReceived", 2)
    assert log.data() == ["one", "two"]


def test_sender_context_manager() -> None:
    """``with CastSender(...)`` closes the socket on exit."""
    with CastSender(ttl=0, interface="127.0.0.1") as sender:
        sender.send(("239.255.0.1", 9), b"nobody listens")


def test_stop_inside_received(objects: Objects) -> None:
    """CastReceiver.stop() inside its own RECEIVED: no deadlock, STOPED after it."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver()
    receiver.bind("onStoped", log.onStoped)

    def stop_now(source: CastReceiver, data: object) -> None:
        log.record("onReceived", source, data)
        source.stop()
        log.record("stop returned")

    receiver.bind("onReceived", stop_now)
    receiver.joinGroup(group)
    receiver.start()
    objects.sender().send((group, receiver.host[1]), "stop")
    log.wait_for("onStoped")
    assert log.names() == ["onReceived", "stop returned", "onStoped"]
    assert not receiver.isAlive


def test_send_from_many_threads(objects: Objects) -> None:
    """4 threads send 20 datagrams each: 80 SENDED, all 80 received."""
    (group,) = _groups(1)
    log = EventLog()
    receiver = objects.receiver(log)
    receiver.joinGroup(group)
    receiver.start()
    sender_log = EventLog()
    sender = objects.sender(sender_log)
    port = receiver.host[1]

    def work(i: int) -> None:
        for n in range(20):
            sender.send((group, port), f"{i}:{n}")

    threads = [threading.Thread(target=work, args=(i,), name=f"test caster {i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert sender_log.count("onSended") == 80
    log.wait_for("onReceived", 80)
    assert sorted(map(str, log.data())) == sorted(f"{i}:{n}" for i in range(4) for n in range(20))
