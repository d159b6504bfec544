"""Multicast, threaded only: ``with`` on receivers and senders, sends from many threads.

Everything multicast every binding shares is in ``tests/conformance``; loopback
only: receivers joined on 127.0.0.1, senders with ttl=0, groups in 239.255.0.0/16.
"""

from __future__ import annotations

import random
import threading

from jfsocket.bindings.threaded import CastReceiver, CastSender

from .conftest import RECEIVER_KEYS, EventLog, Objects


def _groups(count: int) -> list[str]:
    """*count* distinct random groups in 239.255.0.0/16."""
    picked = random.sample(range(1, 65535), count)
    return [f"239.255.{n >> 8}.{n & 255}" for n in picked]


def test_context_manager_stops_receiver() -> None:
    """``with CastReceiver(...) as r: r.start()`` stops it on exit."""
    log = EventLog()
    with CastReceiver(("0.0.0.0", 0), log.evts(RECEIVER_KEYS), interface="127.0.0.1") as receiver:
        receiver.start()
    assert not receiver.isAlive and log.names() == ["onStarted", "onStoped"]


def test_sender_context_manager() -> None:
    """``with CastSender(...)`` closes the socket on exit."""
    with CastSender(ttl=0, interface="127.0.0.1") as sender:
        sender.send(("239.255.0.1", 9), b"nobody listens")


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
