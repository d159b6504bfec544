"""TcpServer operations: send and close for one remote or all, errors, ``clients``."""

from __future__ import annotations

from functools import partial

import pytest
from jfsocket.bindings.threaded import SocketError

from .conftest import EventLog, Objects, wait_until


def _has(log: EventLog, data: str) -> bool:
    """*data* was RECEIVED on *log*."""
    return data in log.data()


def test_send_to_all(objects: Objects) -> None:
    """server.send(data) reaches every connected client once."""
    log = EventLog()
    server = objects.server(log, framing="line")
    logs = [EventLog() for _ in range(3)]
    for client_log in logs:
        objects.connect(server, log, client_log, framing="line")
    server.send("all")
    assert log.count("onSended") == 3
    for client_log in logs:
        client_log.wait_for("onReceived")
        assert client_log.data() == ["all"]


def test_send_to_one_remote(objects: Objects) -> None:
    """server.send(data, remote) reaches that client only (checked by ordering)."""
    log = EventLog()
    server = objects.server(log, framing="line")
    pairs = []
    for _ in range(3):
        client_log = EventLog()
        client, _ = objects.connect(server, log, client_log, framing="line")
        pairs.append((client, client_log))
    target, target_log = pairs[1]
    server.send("just you", target.host)
    server.send("everyone")  # after the targeted one on every connection
    for _, client_log in pairs:
        client_log.wait(partial(_has, client_log, "everyone"), what="the broadcast")
    assert target_log.data() == ["just you", "everyone"]
    assert pairs[0][1].data() == ["everyone"] and pairs[2][1].data() == ["everyone"]


def test_close_one_remote(objects: Objects) -> None:
    """server.close(remote) closes that connection only; the server keeps listening."""
    log = EventLog()
    server = objects.server(log)
    logs = [EventLog() for _ in range(3)]
    clients = [objects.connect(server, log, cl)[0] for cl in logs]
    victim = clients[0].host
    assert victim is not None
    server.close(victim)
    logs[0].wait_for("onDisconnect")
    assert victim not in server.clients and len(server.clients) == 2
    assert [a[2] for a in log.args("onDisconnect")] == [victim]
    assert clients[1].isAlive and clients[2].isAlive and server.isAlive


def test_close_all(objects: Objects) -> None:
    """server.close() closes every connection but keeps listening."""
    log = EventLog()
    server = objects.server(log)
    logs = [EventLog() for _ in range(3)]
    for client_log in logs:
        objects.connect(server, log, client_log)
    server.close()
    assert log.count("onDisconnect") == 3 and server.clients == {}
    for client_log in logs:
        client_log.wait_for("onDisconnect")
    assert server.isAlive and log.count("onStoped") == 0
    client, _ = objects.connect(server, log)
    assert client.isAlive


def test_unknown_remote_is_1003(objects: Objects) -> None:
    """send/close to a remote that never connected: 1003."""
    log = EventLog()
    server = objects.server(log)
    objects.connect(server, log)
    with pytest.raises(SocketError) as info:
        server.send("x", ("127.0.0.1", 1))
    assert info.value.errno == 1003
    with pytest.raises(SocketError) as info:
        server.close(("10.1.2.3", 9))
    assert info.value.errno == 1003
    assert log.count("onSended") == 0 and log.count("onDisconnect") == 0


def test_disconnected_remote_is_1001(objects: Objects) -> None:
    """send to a remote that has disconnected: 1001, no SENDED/SENDFAIL."""
    log = EventLog()
    server = objects.server(log)
    client, _ = objects.connect(server, log)
    remote = client.host
    assert remote is not None
    client.close()
    log.wait_for("onDisconnect")
    wait_until(lambda: remote not in server.clients, what="the registry to forget the remote")
    with pytest.raises(SocketError) as info:
        server.send("gone", remote)
    assert info.value.errno == 1001
    assert log.count("onSended") == 0 and log.count("onSendFail") == 0


def test_clients_is_a_copy(objects: Objects) -> None:
    """Mutating the dict ``clients`` returns does not touch the server's registry."""
    log = EventLog()
    server = objects.server(log)
    client, side = objects.connect(server, log)
    snapshot = server.clients
    assert snapshot == {client.host: side}
    snapshot.clear()
    assert server.clients == {client.host: side}
    assert server.clients is not server.clients


def test_bad_remote_shape(objects: Objects) -> None:
    """A remote that is not an (ip, port) tuple is TypeError/ValueError, nothing sent."""
    log = EventLog()
    server = objects.server(log)
    objects.connect(server, log)
    bad: list[tuple[object, type[Exception]]] = [
        ("127.0.0.1", TypeError),
        (["127.0.0.1", 1], TypeError),
        (("127.0.0.1",), TypeError),
        (("not an ip", 1), ValueError),
        (("127.0.0.1", "80"), TypeError),
        (("127.0.0.1", 70000), ValueError),
    ]
    for remote, error in bad:
        with pytest.raises(error):
            server.send("x", remote)  # type: ignore[arg-type]
        with pytest.raises(error):
            server.close(remote)  # type: ignore[arg-type]
    assert log.count("onSended") == 0 and log.count("onDisconnect") == 0


def test_send_with_no_clients(objects: Objects) -> None:
    """Broadcast with nobody connected is a no-op; bad data still raises."""
    log = EventLog()
    server = objects.server(log)
    server.send("nobody")
    with pytest.raises(TypeError):
        server.send(12)  # type: ignore[arg-type]
    assert log.names() == ["onStarted"]
