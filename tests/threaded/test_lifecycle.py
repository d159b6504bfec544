"""TcpServer and TcpClient lifecycles: start/stop, context managers, IPv6."""

from __future__ import annotations

import socket

import pytest
from jfsocket.bindings.threaded import SocketError, TcpClient, TcpServer

from .conftest import CLIENT_KEYS, SERVER_KEYS, EventLog, Objects


def test_start_fires_started_before_returning(objects: Objects) -> None:
    """STARTED has fired when start() returns; port 0 resolves; isAlive follows."""
    log = EventLog()
    server = objects.server(log, start=False)
    assert not server.isAlive
    assert log.records == []
    server.start()
    assert log.records == [("onStarted", (server,))]
    ip, port = server.host
    assert ip == "127.0.0.1" and 0 < port <= 65535
    assert server.isAlive
    # The port really listens.
    with socket.create_connection(server.host, timeout=5.0):
        pass


def test_start_twice_is_1000(objects: Objects) -> None:
    """start() on a started server raises SocketError 1000 and keeps it running."""
    log = EventLog()
    server = objects.server(log)
    with pytest.raises(SocketError) as info:
        server.start()
    assert info.value.errno == 1000
    assert server.isAlive and log.count("onStarted") == 1


def test_port_taken_is_1005(objects: Objects) -> None:
    """start() on a port another socket holds: 1005 with the OSError; nothing fires."""
    taken = objects.raw_listener()
    port = taken.getsockname()[1]
    log = EventLog()
    server = TcpServer("127.0.0.1", port, log.evts(SERVER_KEYS))
    with pytest.raises(SocketError) as info:
        server.start()
    assert info.value.errno == 1005
    assert isinstance(info.value.err, OSError)
    assert not server.isAlive and log.records == []
    server.stop()  # a no-op: never started
    assert log.records == []


def test_bad_server_address_is_a_programming_error() -> None:
    """A non-IP string is ValueError; a bad port is ValueError/TypeError."""
    with pytest.raises(ValueError, match="ip"):
        TcpServer("localhost", 0)
    with pytest.raises(ValueError, match="port"):
        TcpServer("127.0.0.1", 70000)
    with pytest.raises(TypeError, match="port"):
        TcpServer("127.0.0.1", "80")  # type: ignore[arg-type]


def test_stop_is_idempotent_and_stoped_follows_every_disconnect(objects: Objects) -> None:
    """stop() closes each client (DISCONNECT each) then fires STOPED once; again: no-op."""
    log = EventLog()
    server = objects.server(log)
    for _ in range(3):
        objects.connect(server, log)
    server.stop()
    names = log.names()
    assert names.count("onDisconnect") == 3
    assert names.count("onStoped") == 1
    assert names[-1] == "onStoped"
    assert not server.isAlive and server.clients == {}
    server.stop()
    assert log.names() == names


def test_clients_see_disconnect_when_server_stops(objects: Objects) -> None:
    """Each client-side TcpClient fires DISCONNECT once the server stops."""
    log = EventLog()
    server = objects.server(log)
    logs = [EventLog() for _ in range(3)]
    clients = [objects.connect(server, log, client_log)[0] for client_log in logs]
    server.stop()
    for client, client_log in zip(clients, logs, strict=True):
        client_log.wait_for("onDisconnect")
        assert client_log.count("onDisconnect") == 1
        assert not client.isAlive


def test_restart_after_stop(objects: Objects) -> None:
    """A stopped server starts again, fires STARTED again and accepts connections."""
    log = EventLog()
    server = objects.server(log)
    server.stop()
    server.start()
    assert log.names() == ["onStarted", "onStoped", "onStarted"]
    client, _ = objects.connect(server, log)
    assert client.isAlive


def test_server_context_manager_stops_on_exit() -> None:
    """``with TcpServer(...) as s: s.start()`` stops it on exit (STOPED fired)."""
    log = EventLog()
    with TcpServer("127.0.0.1", 0, log.evts(SERVER_KEYS)) as server:
        assert not server.isAlive  # entering starts nothing
        server.start()
        assert server.isAlive
    assert not server.isAlive
    assert log.names() == ["onStarted", "onStoped"]


def test_server_context_manager_stops_on_error() -> None:
    """Leaving the ``with`` block by an exception stops the server too."""
    log = EventLog()
    server = TcpServer("127.0.0.1", 0, log.evts(SERVER_KEYS))

    def fail_inside() -> None:
        with server:
            server.start()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not server.isAlive
    assert log.names() == ["onStarted", "onStoped"]


def test_client_context_manager_closes_on_exit(objects: Objects) -> None:
    """``with TcpClient() as c`` closes the connection on exit (DISCONNECT fired)."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    with TcpClient(evts=log.evts(CLIENT_KEYS)) as client:
        client.connect(*server.host)
        assert client.isAlive
    assert not client.isAlive
    assert log.names() == ["onConnected", "onDisconnect"]
    server_log.wait_for("onDisconnect")


def test_client_context_manager_without_connect() -> None:
    """A TcpClient that never connected leaves its ``with`` block quietly."""
    log = EventLog()
    with TcpClient(evts=log.evts(CLIENT_KEYS)) as client:
        assert not client.isAlive and client.host is None and client.remote is None
    assert log.records == []


def test_ipv6_loopback_server_and_client(objects: Objects) -> None:
    """A server on ::1 and a client connecting to ::1 talk; addresses are IPv6."""
    server_log = EventLog()
    server = objects.server(server_log, "::1")
    assert server.host[0] == "::1" and server.host[1] > 0
    log = EventLog()
    client, side = objects.connect(server, server_log, log)
    assert client.remote == server.host
    assert client.host is not None and client.host[0] == "::1"
    assert side.remote == client.host
    client.send("over six")
    server_log.wait(lambda: server_log.text() == "over six", what="the IPv6 message")
    side.send("back")
    log.wait(lambda: log.text() == "back", what="the IPv6 reply")
