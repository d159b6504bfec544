"""Callbacks: the exact positional arguments of SPEC section 2, and binding rules."""

from __future__ import annotations

import struct

import pytest
from jfsocket.bindings.threaded import (
    CastReceiver,
    CastSender,
    EventTypes,
    TcpClient,
    TcpServer,
)
from jfsocket.core import Callback

from .conftest import SERVER_KEYS, EventLog, Objects, SendPump


def test_server_callback_arguments(objects: Objects) -> None:
    """TcpServer: (server,), (client, host, remote), (client, data) exactly."""
    log = EventLog()
    server = objects.server(log)
    assert log.args("onStarted") == [(server,)]
    client, side = objects.connect(server, log)
    connected = log.args("onConnected")
    assert connected == [(side, server.host, client.host)]
    assert client.host is not None and server.clients[client.host] is side
    assert side.host == server.host and side.remote == client.host
    client.send("ping")
    log.wait(lambda: log.text() == "ping", what="ping")
    assert all(args == (side, args[1]) for args in log.args("onReceived"))
    side.send("pong")
    assert log.args("onSended") == [(side, "pong")]
    client.close()
    log.wait_for("onDisconnect")
    assert log.args("onDisconnect") == [(side, server.host, client.host)]
    server.stop()
    assert log.args("onStoped") == [(server,)]


def test_client_callback_arguments(objects: Objects) -> None:
    """TcpClient: (client, host, remote), (client, data) exactly."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    client, side = objects.connect(server, server_log, log)
    assert log.args("onConnected") == [(client, client.host, server.host)]
    client.send(b"data")
    assert log.args("onSended") == [(client, b"data")]
    side.send("reply")
    log.wait(lambda: log.text() == "reply", what="reply")
    assert all(len(args) == 2 and args[0] is client for args in log.args("onReceived"))
    host, remote = client.host, client.remote
    client.close()
    assert log.args("onDisconnect") == [(client, host, remote)]


def test_sendfail_arguments(objects: Objects) -> None:
    """SENDFAIL is (client, data, err): the exact data object and an exception."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host, rcvbuf=4096)  # never reads
    side = objects.server_side(log, raw.getsockname())
    pump = SendPump(side.send).start()
    blocked = pump.wait_blocked()
    side.close()  # the blocked send is aborted
    pump.join()
    fails = log.args("onSendFail")
    assert len(fails) == 1
    assert len(fails[0]) == 3
    assert fails[0][0] is side and fails[0][1] is blocked
    assert isinstance(fails[0][2], BaseException)


def test_bind_by_enum_and_by_string(objects: Objects) -> None:
    """bind() accepts the EventTypes member and its string value alike."""
    server_log = EventLog()
    server = objects.server(server_log)
    by_enum, by_string = EventLog(), EventLog()
    client = TcpClient()
    objects.later(client.close)
    client.bind(EventTypes.CONNECTED, by_enum.onConnected)
    client.bind("onSended", by_string.onSended)
    client.connect(*server.host)
    client.send("x")
    assert by_enum.names() == ["onConnected"]
    assert by_string.names() == ["onSended"]


def test_evts_mapping_accepts_both_key_forms(objects: Objects) -> None:
    """The constructor's evts mapping takes members and string values together."""
    server_log = EventLog()
    server = objects.server(server_log)
    log = EventLog()
    evts: dict[EventTypes | str, Callback | None] = {
        EventTypes.CONNECTED: log.onConnected,
        "onSended": log.onSended,
        "onReceived": None,  # None binds nothing
    }
    client = TcpClient(evts=evts)
    objects.later(client.close)
    client.connect(*server.host)
    client.send("x")
    assert log.names() == ["onConnected", "onSended"]


def test_bind_again_replaces(objects: Objects) -> None:
    """Binding a key again replaces the callback: only the new one runs."""
    server_log = EventLog()
    server = objects.server(server_log)
    old, new = EventLog(), EventLog()
    client = objects.client()
    client.bind(EventTypes.SENDED, old.onSended)
    client.bind(EventTypes.SENDED, new.onSended)
    client.connect(*server.host)
    client.send("x")
    assert old.records == [] and new.names() == ["onSended"]


def test_bind_none_unbinds(objects: Objects) -> None:
    """``bind(key, None)`` unbinds: data arrives, nothing is called for it."""
    log = EventLog()
    server = objects.server(log)
    server.bind("onReceived", None)
    raw = objects.raw_connect(server.host)
    raw.sendall(b"unheard")
    raw.close()  # DISCONNECT comes after the RECEIVED that had no callback
    log.wait_for("onDisconnect")
    assert log.count("onReceived") == 0
    assert log.names() == ["onStarted", "onConnected", "onDisconnect"]


def test_unsupported_keys_raise_key_error() -> None:
    """Keys a class does not emit, or unknown strings, raise KeyError naming the key."""
    cases: list[tuple[TcpClient | TcpServer | CastReceiver | CastSender, object]] = []
    client = TcpClient()
    server = TcpServer("127.0.0.1", 0)
    receiver = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
    sender = CastSender(ttl=0, interface="127.0.0.1")
    cases += [
        (client, EventTypes.STARTED),
        (client, "onStoped"),
        (sender, EventTypes.RECEIVED),
        (sender, "onConnected"),
        (receiver, EventTypes.CONNECTED),
        (receiver, "onSended"),
        (server, "onBogus"),
        (server, "STARTED"),  # the member's name is not its value
    ]
    for obj, key in cases:
        with pytest.raises(KeyError) as info:
            obj.bind(key, print)  # type: ignore[arg-type]
        assert repr(key) in str(info.value)
    with pytest.raises(KeyError, match="onStarted"):
        TcpClient(evts={"onStarted": print})
    with pytest.raises(KeyError, match="onReceived"):
        CastSender(evts={EventTypes.RECEIVED: print}, ttl=0, interface="127.0.0.1")


def test_non_callable_evt_raises_type_error() -> None:
    """An evt that is neither callable nor None raises TypeError (bind and evts)."""
    client = TcpClient()
    with pytest.raises(TypeError):
        client.bind(EventTypes.RECEIVED, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.bind("onReceived", "print")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TcpServer("127.0.0.1", 0, {"onStarted": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        CastReceiver(0, {"onReceived": object()}, interface="127.0.0.1")  # type: ignore[dict-item]


def test_server_side_clients_inherit_callbacks(objects: Objects) -> None:
    """Callbacks bound on the server run for its clients' events, with the client."""
    log = EventLog()
    server = TcpServer("127.0.0.1", 0)
    objects.later(server.stop)
    for key in SERVER_KEYS:
        server.bind(key, log.evts(SERVER_KEYS)[key])
    server.start()
    client, side = objects.connect(server, log)
    client.send("inherited")
    log.wait(lambda: log.text(side) == "inherited", what="the inherited RECEIVED")


def test_server_bind_after_start_reaches_existing_clients(objects: Objects) -> None:
    """A callback bound on the server after a client connected runs for that client."""
    log = EventLog()
    server = objects.server(log)
    client, side = objects.connect(server, log)
    late = EventLog()
    server.bind(EventTypes.RECEIVED, late.onReceived)
    client.send("late bind")
    late.wait(lambda: late.text(side) == "late bind", what="the late-bound RECEIVED")
    assert log.count("onReceived") == 0


def test_server_side_client_own_binding_overrides(objects: Objects) -> None:
    """Binding on one server-side client overrides the server's for that client only."""
    log = EventLog()
    server = objects.server(log)
    client_a, side_a = objects.connect(server, log)
    client_b, side_b = objects.connect(server, log)
    own = EventLog()
    side_a.bind("onReceived", own.onReceived)
    client_a.send("a")
    client_b.send("b")
    own.wait(lambda: own.text() == "a", what="a's own RECEIVED")
    log.wait(lambda: log.text(side_b) == "b", what="b's inherited RECEIVED")
    assert log.text(side_a) == ""


def test_server_side_clients_inherit_options(objects: Objects) -> None:
    """Server options (encoding=None, framing) reach its clients: bytes, one per send."""
    log = EventLog()
    server = objects.server(log, encoding=None, framing="length")
    raw = objects.raw_connect(server.host)
    raw.sendall(struct.pack(">I", 3) + b"abc" + struct.pack(">I", 2) + b"de")
    log.wait_for("onReceived", 2)
    assert log.data() == [b"abc", b"de"]
