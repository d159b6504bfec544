"""Deadlines, slow consumers, abort and keepalive on the threaded binding (SPEC section 9)."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from jfsocket.bindings.threaded import SocketError, TcpClient, TcpServer
from jfsocket.core import Keepalive

from .conftest import EventLog, Objects, wait_until


def _timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "jfsocket timers"]


def _error_code(args: tuple[object, ...]) -> int:
    error = args[2]
    assert isinstance(error, SocketError)
    return int(error.errno)


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


def test_send_timeout_fails_a_send_to_a_peer_that_stopped_reading(objects: Objects) -> None:
    """The peer reads nothing: a send that cannot be written within send_timeout
    returns with SENDFAIL (err 1008), and the connection closes."""
    log = EventLog()
    server = objects.server(log, encoding=None, send_timeout=0.3)
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.connect(server.host)
    objects.later(peer.close)
    log.wait_for("onConnected")
    (side,) = server.clients.values()
    side.send(bytes(3 << 20))  # far more than the buffers hold; returns once failed
    (failed,) = log.wait_for("onSendFail")
    assert _error_code(failed) == 1008
    log.wait_for("onDisconnect")
    assert log.count("onSended") == 0


def test_a_slow_consumer_is_closed_and_holds_nobody(objects: Objects) -> None:
    """A broadcast to a reading client and to one that stopped: the stalled one
    goes over max_pending and is closed (SENDFAIL with 1009 for each unwritten
    send, a warning); the reading one gets every byte."""
    log = EventLog()
    server = objects.server(log, encoding=None, max_pending=256 << 10)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(server.host)
    objects.later(stalled.close)
    reader = socket.create_connection(server.host)
    objects.later(reader.close)
    log.wait_for("onConnected", 2)
    chunk, rounds = bytes(64 << 10), 64  # 4 MiB in all
    got = bytearray()

    def read() -> None:
        reader.settimeout(10)
        while len(got) < len(chunk) * rounds and (data := reader.recv(1 << 20)):
            got.extend(data)

    thread = threading.Thread(target=read)
    thread.start()
    for _ in range(rounds):
        server.send(chunk)
    thread.join(20)
    assert len(got) == len(chunk) * rounds
    failed = log.args("onSendFail")
    assert failed and {_error_code(args) for args in failed} == {1009}
    assert log.count("onDisconnect") == 1
    stalled_side = failed[0][0]
    assert isinstance(stalled_side, TcpClient) and not stalled_side.isAlive


def test_abort_resets_the_connection(objects: Objects) -> None:
    """close(abort=True): the raw peer sees a reset, not an orderly end."""
    listener = socket.create_server(("127.0.0.1", 0))
    objects.later(listener.close)
    log = EventLog()
    client = objects.client(log)
    client.connect(*listener.getsockname())
    peer, _ = listener.accept()
    objects.later(peer.close)
    client.close(abort=True)
    log.wait_for("onDisconnect")
    peer.settimeout(5)
    with pytest.raises(ConnectionResetError):
        peer.recv(10)


def test_keepalive_sets_the_os_options(objects: Objects) -> None:
    """keepalive=Keepalive(...): SO_KEEPALIVE and its three times on the socket."""
    log = EventLog()
    server = objects.server(log, keepalive=Keepalive(idle=7, interval=3, count=4))
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    log.wait_for("onConnected")
    (side,) = server.clients.values()
    sock = side._sock
    assert sock is not None
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4


def test_no_timers_thread_without_deadlines(objects: Objects) -> None:
    log = EventLog()
    server = objects.server(log)
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    log.wait_for("onConnected")
    assert not _timer_threads()


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        TcpServer("127.0.0.1", 0, idle_timeout=0)
    with pytest.raises(TypeError, match="send_timeout"):
        TcpClient(send_timeout="soon")  # type: ignore[arg-type]
