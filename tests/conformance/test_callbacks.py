"""Callbacks: the seed's positional arguments, binding rules, inheritance, errors in
callbacks, and calls made from inside callbacks (SPEC section 2)."""

from __future__ import annotations

import logging

import pytest
from jfsocket.core import EventTypes

from .driver import Driver, Ev

E = EventTypes
CLIENT_KEYS = (E.CONNECTED, E.DISCONNECT, E.RECEIVED, E.SENDED, E.SENDFAIL)


def test_callback_arguments_are_the_seeds(d: Driver) -> None:
    """Every event's positional arguments are exactly SPEC section 2's, on every object:
    (server,), (client, host, remote), (client, data)."""
    server = d.server()
    client, side = d.connected(server)
    client.send("up")
    side.wait_for("RECEIVED")
    down = b"down"
    side.send(down)
    client.wait_for("RECEIVED")
    client.close()
    side.wait_for("DISCONNECT")
    server.stop()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "up"),
                ("SENDED", b"down"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "up"),
                ("RECEIVED", "down"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )
    # The trace's labels stand for these very objects.
    raw = d.recorder.raw_args(side.obj)
    assert raw[0] == ("CONNECTED", (server.host, client.host))
    assert raw[2][1][0] is down


def test_plain_and_async_callbacks_mixed(d: Driver) -> None:
    """Plain callbacks on one end, the binding's default (``async def`` on async
    bindings) on the other: the same events, in the same order."""
    server = d.server(plain=True)
    client = d.client()
    client.connect(*server.host)
    side = server.side(client)
    client.send("ping")
    side.wait_for("RECEIVED")
    server.send("pong")
    client.wait_for("RECEIVED")
    client.close()
    server.stop()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "ping"),
                ("SENDED", "pong"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "ping"),
                ("RECEIVED", "pong"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )


def test_evts_and_bind_take_members_and_strings(d: Driver) -> None:
    """The constructor's evts and bind() take a key as the member or its string value;
    ``None`` binds nothing; bind after construction adds a key."""
    server = d.server()
    client = d.client(keys=(E.CONNECTED, "onDisconnect"), unbound=("onReceived",))
    client.on("onSended")
    client.connect(*server.host)
    side = server.side(client)
    client.send("x")
    side.send("unheard")  # RECEIVED is bound to None on the client
    side.close()
    client.wait_for("DISCONNECT")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("SENDED", "unheard"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "x"),
                ("DISCONNECT", "client1", "server"),
            ],
        },
        only=("STARTED", "CONNECTED", "SENDED", "DISCONNECT"),
    )
    assert "RECEIVED" not in [e[0] for e in d.trace()["client1"]]


def test_bind_again_replaces_and_none_unbinds(d: Driver) -> None:
    """Binding a key again replaces its callback; ``bind(key, None)`` unbinds it."""
    server = d.server(framing="line")
    client, side = d.connected(server, framing="line")
    client.on("onReceived", lambda ev: d.note(ev.source, "first"))
    side.send("one")
    client.wait_for("RECEIVED", 1)
    client.on(E.RECEIVED, lambda ev: d.note(ev.source, "second"))
    side.send("two")
    client.wait_for("RECEIVED", 2)
    client.unbind(E.RECEIVED)
    side.send("three")  # to nobody
    side.close()  # the client's DISCONNECT runs after it has read "three"
    client.wait_for("DISCONNECT")
    d.expect(
        {
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("RECEIVED", "one"),
                ("note", "first"),
                ("RECEIVED", "two"),
                ("note", "second"),
                ("DISCONNECT", "client1", "server"),
            ]
        },
        partial=True,
    )


def test_unbound_server_event_on_a_raw_peers_connection(d: Driver) -> None:
    """A server with RECEIVED unbound: data arrives, nothing is called for it, the
    connection's other events still are."""
    server = d.server()
    server.unbind("onReceived")
    peer = d.raw_connect(server.host)
    peer.sendall(b"unheard")
    peer.close()  # DISCONNECT comes after the RECEIVED that had no callback
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [("CONNECTED", "server", "raw1"), ("DISCONNECT", "server", "raw1")],
        }
    )


def test_binding_rules_errors(d: Driver) -> None:
    """A key the class does not emit, or an unknown string (or the member's *name*):
    KeyError naming the key.  An evt neither callable nor None: TypeError."""
    objects = {
        "TcpClient": d.construct("TcpClient"),
        "TcpServer": d.construct("TcpServer", "127.0.0.1", 0),
        "CastReceiver": d.construct("CastReceiver", ("0.0.0.0", 0), interface="127.0.0.1"),
        "CastSender": d.construct("CastSender", ttl=0, interface="127.0.0.1"),
    }
    wrong: list[tuple[str, object]] = [
        ("TcpClient", E.STARTED),
        ("TcpClient", "onStoped"),
        ("TcpClient", "onNothing"),
        ("TcpClient", None),
        ("CastSender", E.RECEIVED),
        ("CastSender", "onConnected"),
        ("CastReceiver", E.CONNECTED),
        ("CastReceiver", "onSended"),
        ("TcpServer", "onBogus"),
        ("TcpServer", "STARTED"),  # the member's name is not its value
    ]
    runner = d.runner()

    def bind(cls: str, key: object, evt: object) -> None:
        runner.sync(lambda: objects[cls].bind(key, evt))

    for cls, key in wrong:
        with pytest.raises(KeyError) as info:
            bind(cls, key, print)
        shown = key.value if isinstance(key, E) else key
        assert key is None or repr(shown) in str(info.value), (cls, key, info.value)
    for evt in (42, "print", object()):
        with pytest.raises(TypeError):
            bind("TcpClient", E.RECEIVED, evt)
    with pytest.raises(KeyError, match="onStarted"):
        d.construct("TcpClient", evts={"onStarted": print})
    with pytest.raises(KeyError, match="onReceived"):
        d.construct("CastSender", evts={E.RECEIVED: print}, ttl=0, interface="127.0.0.1")
    with pytest.raises(TypeError):
        d.construct("TcpServer", "127.0.0.1", 0, evts={"onStarted": 1})
    with pytest.raises(TypeError):
        d.construct("CastReceiver", 0, evts={"onReceived": object()}, interface="127.0.0.1")


def test_server_callbacks_reach_its_clients(d: Driver) -> None:
    """Callbacks bound on the server (even after a client connected) run for its
    clients' events; a client's own binding wins for that client only."""
    server = d.server(unbound=("onReceived",))
    one, side_one = d.connected(server)
    two, side_two = d.connected(server)
    server.on("onReceived")
    side_two.on(E.RECEIVED, lambda ev: d.note(ev.source, "own callback"))
    one.send("to the server's callback")
    two.send("to its own")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "to the server's callback"),
            ],
            "server:client2": [
                ("CONNECTED", "server", "client2"),
                ("RECEIVED", "to its own"),
                ("note", "own callback"),
            ],
            "client1": [("CONNECTED", "client1", "server"), ("SENDED", "to the server's callback")],
            "client2": [("CONNECTED", "client2", "server"), ("SENDED", "to its own")],
        }
    )
    assert side_one.obj is not side_two.obj


@pytest.mark.parametrize("plain", [False, True], ids=["default", "plain"])
def test_raising_callback_is_logged_and_delivery_goes_on(d: Driver, plain: bool) -> None:
    """A callback that raises is logged on 'jfsocket' with its traceback (ERROR); the
    connection, its later events and the caller go on."""

    def boom(ev: Ev) -> None:
        raise ValueError(f"boom on {ev.data}")

    server = d.server(framing="line")
    client, side = d.connected(server, framing="line")
    server.on("onReceived", boom, plain=plain)
    client.on("onSended", boom, plain=plain)
    client.send("one")
    client.send("two")
    side.wait_for("RECEIVED", 2)
    side.send("still alive")
    client.wait_for("RECEIVED")
    d.wait_until(lambda: len(d.logs()) >= 4, what="four logged callback errors")
    logs = d.logs()
    assert len(logs) == 4, logs
    assert all(line.level == logging.ERROR and line.exc_type is ValueError for line in logs)
    assert client.isAlive and side.isAlive
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "one"),
                ("RECEIVED", "two"),
                ("SENDED", "still alive"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "one"),
                ("SENDED", "two"),
                ("RECEIVED", "still alive"),
            ],
        }
    )


def test_every_callback_raising(d: Driver) -> None:
    """Callbacks that all raise: each call is logged once, and connect, send, close
    and stop all still work."""

    def boom(ev: Ev) -> None:
        raise RuntimeError(f"broken {ev.event}")

    server = d.server(start=False, framing="line")
    for key in E:
        server.on(key, boom)
    server.start()
    client = d.client(framing="line")
    for key in CLIENT_KEYS:
        client.on(key, boom)
    client.connect(*server.host)
    side = server.side(client)
    client.send("a")
    client.send("b")
    side.wait_for("RECEIVED", 2)
    side.send("c")
    client.wait_for("RECEIVED")
    server.stop()
    client.wait_for("DISCONNECT")
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "a"),
                ("RECEIVED", "b"),
                ("SENDED", "c"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "a"),
                ("SENDED", "b"),
                ("RECEIVED", "c"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )
    d.wait_until(lambda: len(d.logs()) >= 12, what="one logged error per callback call")
    assert len(d.logs()) == 12
    assert all(line.exc_type is RuntimeError for line in d.logs())


def test_send_from_inside_callbacks(d: Driver) -> None:
    """send inside CONNECTED (a greeting) and inside RECEIVED (an echo) works."""
    server = d.server(framing="line")
    server.on("onConnected", lambda ev: ev.source.send("welcome"))
    server.on("onReceived", lambda ev: ev.source.send(f"echo {ev.data}"))
    client = d.client(framing="line")
    client.connect(*server.host)
    client.wait_for("RECEIVED")  # the greeting
    messages = [f"m{n}" for n in range(20)]
    for message in messages:
        client.send(message)
    client.wait_for("RECEIVED", 21)
    # RECEIVED and SENDED of one connection may interleave either way: one kind at a time.
    d.expect(
        {
            "server:client1": [("RECEIVED", m) for m in messages],
            "client1": [("RECEIVED", "welcome")] + [("RECEIVED", f"echo {m}") for m in messages],
        },
        only=("RECEIVED",),
    )
    d.expect(
        {
            "server:client1": [("SENDED", "welcome")] + [("SENDED", f"echo {m}") for m in messages],
            "client1": [("SENDED", m) for m in messages],
        },
        only=("SENDED",),
    )


@pytest.mark.parametrize("where", ["client", "server"])
def test_close_from_inside_its_own_received(d: Driver, where: str) -> None:
    """A connection closing itself (twice) from its RECEIVED: no deadlock, close
    returns, then its one DISCONNECT runs; the peer sees one DISCONNECT."""

    def hang_up(ev: Ev) -> None:
        ev.source.close()
        ev.source.close()
        d.note(ev.source, "closed inside")

    server = d.server()
    client, side = d.connected(server)
    ours, theirs = (client, side) if where == "client" else (side, client)
    ours.on("onReceived", hang_up)
    theirs.send("bye")
    ours_label, theirs_label = ours.label, theirs.label
    mine, other = ("client1", "server") if where == "client" else ("server", "client1")
    d.expect(
        {
            "server": [("STARTED",)],
            ours_label: [
                ("CONNECTED", mine, other),
                ("RECEIVED", "bye"),
                ("note", "closed inside"),
                ("DISCONNECT", mine, other),
            ],
            theirs_label: [
                ("CONNECTED", other, mine),
                ("SENDED", "bye"),
                ("DISCONNECT", other, mine),
            ],
        }
    )
    assert not client.isAlive


def test_close_another_connection_from_a_callback(d: Driver) -> None:
    """The server side's RECEIVED closes the client object (another connection): no
    deadlock, one DISCONNECT each."""
    server = d.server()
    client, side = d.connected(server)
    side.on("onReceived", lambda ev: client.close())
    client.send("close me")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "close me"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "close me"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )


def test_server_close_and_echo_from_callbacks(d: Driver) -> None:
    """A server callback echoes, and on "quit" closes its client: no deadlock."""

    def echo_or_close(ev: Ev) -> None:
        if ev.data == "quit":
            ev.source.close()
        else:
            ev.source.send(f"echo {ev.data}")

    server = d.server(framing="line")
    server.on("onReceived", echo_or_close)
    client = d.client(framing="line")
    client.connect(*server.host)
    for word in ("a", "b", "c"):
        client.send(word)
    client.wait_for("RECEIVED", 3)
    client.send("quit")
    client.wait_for("DISCONNECT")
    d.wait_until(lambda: server.clients == {}, what="the registry to empty")
    d.expect(
        {
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("RECEIVED", "echo a"),
                ("RECEIVED", "echo b"),
                ("RECEIVED", "echo c"),
                ("DISCONNECT", "client1", "server"),
            ]
        },
        partial=True,
        only=("CONNECTED", "RECEIVED", "DISCONNECT"),
    )


@pytest.mark.parametrize("event", ["STARTED", "CONNECTED", "RECEIVED"])
def test_server_stop_from_inside_a_callback(d: Driver, event: str) -> None:
    """stop from a server callback: no deadlock; it returns inside the callback, then
    every DISCONNECT, then one STOPED."""

    def stop(ev: Ev) -> None:
        server.stop()
        d.note(ev.source, "stop returned")

    server = d.server(start=False)
    server.on(event, stop)
    server.start()
    if event == "STARTED":
        d.expect({"server": [("STARTED",), ("note", "stop returned"), ("STOPED",)]})
        assert not server.isAlive
        return
    client = d.client()
    client.connect(*server.host)
    if event == "RECEIVED":
        client.send("trigger")
    d.wait_until(lambda: server.count("STOPED") == 1, what="STOPED")
    assert not server.isAlive and server.clients == {}
    side: list[tuple[object, ...]] = [("CONNECTED", "server", "client1")]
    mine: list[tuple[object, ...]] = [("CONNECTED", "client1", "server")]
    if event == "RECEIVED":
        side.append(("RECEIVED", "trigger"))
        mine.append(("SENDED", "trigger"))
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": [
                *side,
                ("note", "stop returned"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [*mine, ("DISCONNECT", "client1", "server")],
        }
    )
    order = d.order()
    assert order.index(("server:client1", "DISCONNECT")) < order.index(("server", "STOPED"))
    server.stop()  # idempotent from outside, afterwards


def test_stop_from_a_disconnect_while_stopping(d: Driver) -> None:
    """A DISCONNECT callback calling stop while stop runs: both return, STOPED once."""
    server = d.server()
    d.connected(server)
    d.connected(server)
    server.on("onDisconnect", lambda ev: server.stop())
    server.stop()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ],
            "server:client2": [
                ("CONNECTED", "server", "client2"),
                ("DISCONNECT", "server", "client2"),
            ],
            "client1": [("CONNECTED", "client1", "server"), ("DISCONNECT", "client1", "server")],
            "client2": [("CONNECTED", "client2", "server"), ("DISCONNECT", "client2", "server")],
        }
    )


@pytest.mark.parametrize("closer", ["server", "peer"])
def test_a_client_has_left_the_registry_when_its_disconnect_runs(d: Driver, closer: str) -> None:
    """In the server's DISCONNECT callback the remote is no longer in ``clients``,
    whoever closed the connection."""
    server = d.server()
    client, _ = d.connected(server)
    remote = client.host

    def check(ev: Ev) -> None:
        d.note(ev.source, "listed" if remote in server.raw_clients() else "gone")

    server.on("onDisconnect", check)
    if closer == "server":
        server.close()
    else:
        client.close()
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
                ("note", "gone"),
            ],
            "client1": [("CONNECTED", "client1", "server"), ("DISCONNECT", "client1", "server")],
        }
    )
