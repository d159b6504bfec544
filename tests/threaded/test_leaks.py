"""Leaks: many lifecycles leave the thread and fd counts where they began."""

from __future__ import annotations

import threading

import pytest
from jfsocket.bindings.threaded import CastReceiver, CastSender, TcpClient, TcpServer

from .conftest import SERVER_KEYS, EventLog, Objects, open_fds, wait_until

CYCLES = 200


def _settled(threads: int, fds: int) -> None:
    """Wait until the live thread count and the open fd count are back to these."""
    wait_until(lambda: threading.active_count() == threads, what=f"{threads} live threads")
    wait_until(lambda: open_fds() == fds, what=f"{fds} open fds")


@pytest.mark.slow
def test_server_start_stop_cycles() -> None:
    """200 start/stop cycles (one object, and fresh ones): no thread or fd left."""
    threads, fds = threading.active_count(), open_fds()
    log = EventLog()
    server = TcpServer("127.0.0.1", 0, log.evts(SERVER_KEYS))
    for _ in range(CYCLES // 2):
        server.start()
        server.stop()
    for _ in range(CYCLES // 2):
        with TcpServer("127.0.0.1", 0) as fresh:
            fresh.start()
    assert log.count("onStarted") == log.count("onStoped") == CYCLES // 2
    _settled(threads, fds)


@pytest.mark.slow
def test_client_connect_close_cycles(objects: Objects) -> None:
    """200 connect/close cycles against one server: counts return to where they began."""
    log = EventLog()
    server = objects.server(log)
    threads, fds = threading.active_count(), open_fds()
    client = TcpClient()
    for n in range(CYCLES // 2):
        client.connect(*server.host)
        client.send("x")
        client.close()
        if n % 10 == 9:  # keep the server's side from falling far behind
            log.wait_for("onDisconnect", n + 1)
    for _ in range(CYCLES // 2):
        with TcpClient() as fresh:
            fresh.connect(*server.host)
    log.wait_for("onDisconnect", CYCLES, timeout=10.0)
    assert log.count("onConnected") == CYCLES
    wait_until(lambda: server.clients == {}, what="the registry to empty")
    _settled(threads, fds)


@pytest.mark.slow
def test_receiver_and_sender_cycles(objects: Objects) -> None:
    """100 receiver start/stop cycles and sender send/close cycles: nothing left behind."""
    threads, fds = threading.active_count(), open_fds()
    receiver = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
    receiver.joinGroup("239.255.77.1")
    sender = CastSender(ttl=0, interface="127.0.0.1")
    for _ in range(CYCLES // 2):
        receiver.start()
        sender.send(("239.255.77.1", receiver.host[1]), b"tick")
        sender.close()
        receiver.stop()
    _settled(threads, fds)
