"""TcpClient: connect, errors 1000/1001/1006, close, reconnect, adopting a socket."""

from __future__ import annotations

import socket

import pytest
from jfsocket.bindings.threaded import SocketError, TcpClient

from .conftest import CLIENT_KEYS, EventLog, Objects


def test_connect_fires_connected_before_returning(objects: Objects) -> None:
    """CONNECTED (client, host, remote) has fired when connect() returns."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client = objects.client(log)
    assert not client.isAlive
    client.connect(*server.host)
    assert log.records == [("onConnected", (client, client.host, client.remote))]
    assert client.isAlive
    assert client.remote == server.host
    assert client.host is not None and client.host[0] == "127.0.0.1" and client.host[1] > 0
    objects.server_side(server_log, client.host)


def test_connect_twice_is_1000(objects: Objects) -> None:
    """connect() while connected raises 1000 and keeps the connection."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, _ = objects.connect(server, server_log, log)
    with pytest.raises(SocketError) as info:
        client.connect(*server.host)
    assert info.value.errno == 1000
    assert client.isAlive and log.names() == ["onConnected"]


def test_connect_refused_is_1006(objects: Objects) -> None:
    """Connecting to a closed port: 1006 with the OSError as ``err``; no event."""
    reserved = objects.raw()
    reserved.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    log = EventLog()
    client = objects.client(log)
    with pytest.raises(SocketError) as info:
        client.connect("127.0.0.1", reserved.getsockname()[1])
    assert info.value.errno == 1006
    assert isinstance(info.value.err, OSError)
    assert not client.isAlive and log.records == []


def test_connect_unresolvable_is_1006() -> None:
    """A name that does not resolve is 1006 too (``err`` the resolver's OSError)."""
    log = EventLog()
    with TcpClient(evts=log.evts(CLIENT_KEYS)) as client:
        with pytest.raises(SocketError) as info:
            client.connect("no-such-host.invalid", 80)
        assert info.value.errno == 1006
        assert isinstance(info.value.err, OSError)
    assert log.records == []


def test_connect_after_failed_connect(objects: Objects) -> None:
    """A failed connect leaves the client usable: the next connect succeeds."""
    reserved = objects.raw()
    reserved.bind(("127.0.0.1", 0))
    server_log = EventLog()
    server = objects.server(server_log)
    client = objects.client()
    with pytest.raises(SocketError):
        client.connect("127.0.0.1", reserved.getsockname()[1])
    client.connect(*server.host)
    assert client.isAlive


def test_bad_connect_arguments() -> None:
    """A bad port is ValueError/TypeError; an empty host name is ValueError."""
    with TcpClient() as client:
        with pytest.raises(ValueError, match="port"):
            client.connect("127.0.0.1", 70000)
        with pytest.raises(TypeError, match="port"):
            client.connect("127.0.0.1", "80")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="host name"):
            client.connect("", 80)


def test_send_before_connect_is_1001() -> None:
    """send() on a client that never connected: 1001, no event."""
    log = EventLog()
    with TcpClient(evts=log.evts(CLIENT_KEYS)) as client:
        with pytest.raises(SocketError) as info:
            client.send("early")
        assert info.value.errno == 1001
    assert log.records == []


def test_send_after_close_is_1001(objects: Objects) -> None:
    """send() after close(): 1001, and no SENDED/SENDFAIL."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, _ = objects.connect(server, server_log, log)
    client.close()
    with pytest.raises(SocketError) as info:
        client.send("late")
    assert info.value.errno == 1001
    assert log.names() == ["onConnected", "onDisconnect"]


def test_close_is_idempotent(objects: Objects) -> None:
    """close() twice: one DISCONNECT, fired when the first close() returns."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, _ = objects.connect(server, server_log, log)
    client.close()
    assert log.names() == ["onConnected", "onDisconnect"]
    assert log.args("onDisconnect") == [(client, client.host, client.remote)]
    client.close()
    assert log.names() == ["onConnected", "onDisconnect"]
    assert not client.isAlive
    server_log.wait_for("onDisconnect")


def test_reconnect_after_close(objects: Objects) -> None:
    """A closed client connects again: a new CONNECTED, data flows, a new DISCONNECT."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, _ = objects.connect(server, server_log, log)
    first = client.host
    client.close()
    client.connect(*server.host)
    assert client.isAlive and client.host != first
    side = objects.server_side(server_log, client.host)
    client.send("again")
    server_log.wait(lambda: server_log.text(side) == "again", what="data on the reconnection")
    client.close()
    assert log.names() == ["onConnected", "onDisconnect", "onConnected", "onSended", "onDisconnect"]


def test_reconnect_after_peer_closed(objects: Objects) -> None:
    """After the server closed the connection the client can connect again."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, side = objects.connect(server, server_log, log)
    side.close()
    log.wait_for("onDisconnect")
    client.connect(*server.host)
    assert client.isAlive
    assert log.names() == ["onConnected", "onDisconnect", "onConnected"]


def test_adopt_connected_socket(objects: Objects) -> None:
    """``TcpClient(socket=s)`` adopts a connected socket: CONNECTED, data both ways, close."""
    server_log = EventLog()
    server = objects.server(server_log)
    raw = socket.create_connection(server.host, timeout=5.0)
    log = EventLog()
    client = TcpClient(socket=raw, evts=log.evts(CLIENT_KEYS))
    objects.later(client.close)
    assert client.isAlive
    assert client.remote == server.host
    assert client.host == raw.getsockname()
    assert log.records == [("onConnected", (client, client.host, client.remote))]
    side = objects.server_side(server_log, client.host)
    client.send("adopted")
    server_log.wait(lambda: server_log.text(side) == "adopted", what="the adopted socket's data")
    side.send("hello")
    log.wait(lambda: log.text() == "hello", what="data to the adopted socket")
    client.close()
    assert raw.fileno() == -1  # the client owned the socket and closed it
    server_log.wait_for("onDisconnect")


def test_adopt_rejects_non_socket() -> None:
    """``socket=`` must be a socket.socket."""
    with pytest.raises(TypeError):
        TcpClient(socket="not a socket")  # type: ignore[arg-type]
