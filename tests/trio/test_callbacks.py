"""Callbacks: plain and async, order, arguments, binding rules, errors in them."""

from __future__ import annotations

import logging

import pytest
import trio
from jfsocket.bindings.trio import (
    CastReceiver,
    CastSender,
    EventTypes,
    TcpClient,
    TcpServer,
)
from jfsocket.core import Callback

from .conftest import CLIENT_KEYS, LOCALHOST, SERVER_KEYS, EventLog, blocked, connected

pytestmark = pytest.mark.trio
E = EventTypes


class CallbackBoomError(Exception):
    """Raised on purpose by a callback."""


async def test_plain_and_async_callbacks_both_run() -> None:
    """A client with plain callbacks and a server with async ones see every event."""
    server_log, client_log = EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS, use_async=True)) as server,
        TcpClient(evts=client_log.evts(*CLIENT_KEYS)) as client,
    ):
        await client.connect(*server.host)
        await client.send("ping")
        await server_log.wait_for("RECEIVED")
        await server.send("pong")
        await client_log.wait_for("RECEIVED")
    assert client_log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
    assert server_log.names() == [
        "STARTED",
        "CONNECTED",
        "RECEIVED",
        "SENDED",
        "DISCONNECT",
        "STOPED",
    ]


async def test_async_callbacks_never_overlap_and_keep_order() -> None:
    """Slow async callbacks run one at a time, in order, even with sends meanwhile."""
    order: list[str] = []
    active: list[str] = []
    overlaps: list[tuple[str, str]] = []

    def slow(name: str) -> Callback:
        async def callback(*args: object) -> None:
            if active:
                overlaps.append((active[0], name))
            active.append(name)
            for _ in range(5):
                await trio.sleep(0)
            order.append(f"{name}:{args[1]}" if len(args) == 2 else name)
            active.remove(name)

        return callback

    client = TcpClient(
        evts={E.RECEIVED: slow("R"), E.SENDED: slow("S"), E.CONNECTED: slow("C")},
        framing="line",
    )
    server_log = EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server,
        client,
    ):
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        await server.send("a\nb\nc\n")  # one write (raw framing there), three messages
        async with trio.open_nursery() as nursery:
            for word in ("x", "y", "z"):
                nursery.start_soon(client.send, word)
        with trio.fail_after(5):
            while len(order) < 7:
                await trio.sleep(0)
    assert overlaps == []
    received = [o for o in order if o.startswith("R")]
    assert received == ["R:a", "R:b", "R:c"]
    assert order[0] == "C"
    assert sorted(o for o in order if o.startswith("S")) == ["S:x", "S:y", "S:z"]


async def test_callback_arguments_are_the_seeds() -> None:
    """Every event's positional arguments are exactly SPEC §2's."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log) as (server, client, side):
        await client.send("up")
        await server_log.wait_for("RECEIVED")
        await side.send(b"down")
        await client_log.wait_for("RECEIVED")
        host, remote = server.host, client.host
        assert remote is not None
    assert server_log.records == [
        ("STARTED", (server,)),
        ("CONNECTED", (side, host, remote)),
        ("RECEIVED", (side, "up")),
        ("SENDED", (side, b"down")),
        ("DISCONNECT", (side, host, remote)),
        ("STOPED", (server,)),
    ]
    assert client_log.records == [
        ("CONNECTED", (client, remote, host)),
        ("SENDED", (client, "up")),
        ("RECEIVED", (client, "down")),
        ("DISCONNECT", (client, remote, host)),
    ]
    assert side.host == host and side.remote == remote


async def test_bind_rejects_unknown_keys_and_non_callables() -> None:
    """KeyError naming an unsupported key, TypeError for a non-callable ``evt``."""
    await trio.lowlevel.checkpoint()
    client = TcpClient()
    with pytest.raises(KeyError, match="onStarted"):
        client.bind(E.STARTED, print)
    with pytest.raises(KeyError, match="onNothing"):
        client.bind("onNothing", print)
    with pytest.raises(KeyError):
        client.bind(None, print)
    with pytest.raises(TypeError):
        client.bind(E.RECEIVED, 42)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="onReceived"):
        CastSender().bind(E.RECEIVED, print)
    with pytest.raises(KeyError, match="onConnected"):
        CastReceiver(("0.0.0.0", 0)).bind("onConnected", print)
    with pytest.raises(KeyError, match="onStarted"):
        TcpClient(evts={E.STARTED: print})
    with pytest.raises(TypeError):
        TcpServer(LOCALHOST, 0, evts={E.RECEIVED: "print"})  # type: ignore[dict-item]


async def test_bind_by_string_rebind_and_unbind() -> None:
    """String keys work; binding again replaces; ``bind(key, None)`` unbinds."""
    first, second, third = EventLog(), EventLog(), EventLog()
    async with connected(EventLog(), EventLog(), framing="line") as (_, client, side):
        client.bind("onReceived", first.callback("RECEIVED"))
        await side.send("one")
        await first.wait_for("RECEIVED")
        client.bind(E.RECEIVED, second.callback("RECEIVED"))
        await side.send("two")
        await second.wait_for("RECEIVED")
        client.bind(E.RECEIVED, None)
        await side.send("three")
        await blocked()  # the reader has read and dispatched "three" to nobody
        client.bind(E.RECEIVED, third.callback("RECEIVED"))
        await side.send("four")
        await third.wait_for("RECEIVED")
    assert first.data("RECEIVED") == ["one"]
    assert second.data("RECEIVED") == ["two"]
    assert third.data("RECEIVED") == ["four"]


async def test_server_side_clients_inherit_server_callbacks() -> None:
    """A callback bound on the server after the connection reaches its clients; a
    client's own binding wins for that client only."""
    server_log, client_log, own = EventLog(), EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(E.CONNECTED)) as server,
        TcpClient(evts=client_log.evts(*CLIENT_KEYS)) as one,
        TcpClient(evts=client_log.evts(*CLIENT_KEYS)) as two,
    ):
        await one.connect(*server.host)
        await two.connect(*server.host)
        await server_log.wait_for("CONNECTED", 2)
        server.bind(E.RECEIVED, server_log.callback("RECEIVED"))
        assert one.host is not None and two.host is not None
        side_one, side_two = server.clients[one.host], server.clients[two.host]
        side_two.bind(E.RECEIVED, own.callback("RECEIVED"))
        await one.send("to server callback")
        await two.send("to own callback")
        await server_log.wait_for("RECEIVED")
        await own.wait_for("RECEIVED")
    assert server_log.args("RECEIVED") == [(side_one, "to server callback")]
    assert own.args("RECEIVED") == [(side_two, "to own callback")]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_raising_callback_is_logged_and_connection_goes_on(
    caplog: pytest.LogCaptureFixture, use_async: bool
) -> None:
    """A RECEIVED callback that raises is logged on 'jfsocket' with its traceback;
    the connection keeps delivering and sending."""
    received: list[object] = []

    def sync_boom(client: object, data: object) -> None:
        received.append(data)
        raise CallbackBoomError(f"boom on {data}")

    async def async_boom(client: object, data: object) -> None:
        await trio.sleep(0)
        sync_boom(client, data)

    server_log = EventLog()
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        async with connected(server_log, EventLog(), framing="line") as (_, client, side):
            client.bind(E.RECEIVED, async_boom if use_async else sync_boom)
            await side.send("first")
            await side.send("second")
            await client.send("still alive")
            await server_log.wait_for("RECEIVED")
            with trio.fail_after(5):
                while len(received) < 2:
                    await trio.sleep(0)
            assert client.isAlive and side.isAlive
    assert received == ["first", "second"]
    booms = [
        r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], CallbackBoomError)
    ]
    assert len(booms) == 2
    assert all(r.name.split(".")[0] == "jfsocket" for r in booms)
    assert all(r.exc_info and r.exc_info[2] is not None for r in booms)
    assert server_log.count("DISCONNECT") == 1 and server_log.data("RECEIVED") == ["still alive"]
