"""The threaded binding's timers (SPEC section 9): one shared thread, there only while
a deadline is armed.  The behaviour every binding shares is in
tests/conformance/test_time.py."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from .conftest import EventLog, Objects, wait_until


def _timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "jfsocket timers"]


def test_idle_timeout_closes_a_silent_peer(
    objects: Objects, caplog: pytest.LogCaptureFixture
) -> None:
    """A raw peer that connects and says nothing: DISCONNECT about its connection
    once idle_timeout passes, logged at INFO; the timers' thread ends with it."""
    caplog.set_level(logging.INFO, logger="jfsocket")
    log = EventLog()
    server = objects.server(log, idle_timeout=0.3)
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    log.wait_for("onConnected")
    log.wait_for("onDisconnect")
    assert "nothing received for 0.3 s" in caplog.text
    peer.settimeout(5)
    assert peer.recv(1) == b""  # our end closed it
    wait_until(lambda: not _timer_threads(), what="the timers' thread to end")


def test_received_bytes_keep_a_connection_alive(objects: Objects) -> None:
    """Bytes more often than idle_timeout: no DISCONNECT while they come."""
    log = EventLog()
    server = objects.server(log, idle_timeout=0.5)
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    for _ in range(6):  # 6 x 0.2 s: longer than the timeout, never idle for it
        target = log.count("onReceived") + 1
        peer.sendall(b"x")
        log.wait_for("onReceived", target)
        assert not threading.Event().wait(0.2)  # the peer's pause: time passing, not a sync
        assert log.count("onDisconnect") == 0
    log.wait_for("onDisconnect", timeout=5)


def test_no_timers_thread_without_deadlines(objects: Objects) -> None:
    log = EventLog()
    server = objects.server(log)
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    log.wait_for("onConnected")
    assert not _timer_threads()
