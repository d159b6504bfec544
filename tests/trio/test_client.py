"""TcpClient: connect, its errors, close, reconnect."""

from __future__ import annotations

import socket

import pytest
import trio
from jfsocket.bindings.trio import SocketError, TcpClient, TcpServer

from .conftest import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    blocked,
    free_port,
    jfsocket_tasks,
    run_isolated,
)

pytestmark = pytest.mark.trio


async def test_connected_has_run_when_connect_returns() -> None:
    """``await connect()`` returns after CONNECTED ran, with (client, host, remote)."""
    log = EventLog()
    async with (
        TcpServer(LOCALHOST, 0) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS, use_async=True)) as client,
    ):
        assert client.host is None and client.remote is None and not client.isAlive
        await client.connect(*server.host)
        assert log.args("CONNECTED") == [(client, client.host, server.host)]
        assert client.isAlive
        assert client.host is not None and client.host[0] == LOCALHOST
        assert client.remote == server.host
    assert log.names() == ["CONNECTED", "DISCONNECT"]
    assert log.args("DISCONNECT") == [(client, client.host, server.host)]
    assert not client.isAlive


async def test_connect_twice_is_1000() -> None:
    """A second ``connect`` while connected: 1000, the first connection intact."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0) as server, TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
        await client.connect(*server.host)
        with pytest.raises(SocketError) as info:
            await client.connect(*server.host)
        assert info.value.errno == 1000
        assert client.isAlive
        await client.send("still fine")
        assert log.data("SENDED") == ["still fine"]
    assert log.count("CONNECTED") == 1 and log.count("DISCONNECT") == 1


async def test_closed_port_is_1006_with_oserror() -> None:
    """Connecting to a port nobody listens on: 1006, ``err`` an OSError, no event."""
    log = EventLog()
    with free_port() as port:
        async with TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
            with pytest.raises(SocketError) as info:
                await client.connect(LOCALHOST, port)
            assert info.value.errno == 1006
            assert isinstance(info.value.err, OSError)
            assert not client.isAlive
    assert log.names() == []


async def test_unresolvable_name_is_1006() -> None:
    """A host name that does not resolve (RFC 6761 ``.invalid``): 1006."""
    async with TcpClient() as client:
        with pytest.raises(SocketError) as info:
            await client.connect("no-such-host.invalid", 9)
        assert info.value.errno == 1006
        assert isinstance(info.value.err, OSError)


async def test_failed_connect_can_be_retried() -> None:
    """After a refused connect the client is idle: connecting elsewhere works."""
    async with TcpServer(LOCALHOST, 0) as server, TcpClient() as client:
        with free_port() as port, pytest.raises(SocketError):
            await client.connect(LOCALHOST, port)
        await client.connect(*server.host)
        assert client.isAlive


async def test_send_before_connect_is_1001() -> None:
    """``send`` on a client never connected: 1001, no SENDFAIL."""
    log = EventLog()
    async with TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
        with pytest.raises(SocketError) as info:
            await client.send("too early")
        assert info.value.errno == 1001
    assert log.names() == []


async def test_send_after_close_is_1001() -> None:
    """``send`` after ``close``: 1001."""
    async with TcpServer(LOCALHOST, 0) as server, TcpClient() as client:
        await client.connect(*server.host)
        await client.close()
        with pytest.raises(SocketError) as info:
            await client.send("too late")
        assert info.value.errno == 1001


async def test_close_is_idempotent_and_disconnect_runs_once() -> None:
    """``close`` three times (and leaving the block): one DISCONNECT, run on return."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0) as server, TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
        await client.connect(*server.host)
        await client.close()
        assert log.names() == ["CONNECTED", "DISCONNECT"]
        assert not client.isAlive
        await client.close()
        await client.close()
    assert log.names() == ["CONNECTED", "DISCONNECT"]


async def test_close_before_connect_is_a_no_op() -> None:
    """``close`` on a client never connected: nothing happens, no event."""
    log = EventLog()
    async with TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
        await client.close()
    assert log.names() == []


async def test_reconnect_after_close() -> None:
    """close, then connect again: a second CONNECTED/DISCONNECT pair; data flows."""
    log, server_log = EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
    ):
        await client.connect(*server.host)
        first = client.host
        await client.close()
        await client.connect(*server.host)
        assert client.isAlive and client.host != first
        await client.send("again")
        await server_log.wait_for("RECEIVED")
        assert server_log.data("RECEIVED") == ["again"]
    assert log.names() == ["CONNECTED", "DISCONNECT", "CONNECTED", "SENDED", "DISCONNECT"]


async def test_connect_without_async_with_is_runtime_error() -> None:
    """``connect`` on a client not entered: RuntimeError saying to use ``async with``."""
    async with TcpServer(LOCALHOST, 0) as server:
        client = TcpClient()
        with pytest.raises(RuntimeError, match=r"async with TcpClient"):
            await client.connect(*server.host)
        assert not client.isAlive and not server.clients
        assert len(jfsocket_tasks()) == 1  # only the server's accept loop


async def test_connect_argument_errors() -> None:
    """A bad port or IP for ``connect``: ValueError/TypeError, nothing changes."""
    async with TcpClient() as client:
        with pytest.raises(ValueError, match="port"):
            await client.connect(LOCALHOST, -1)
        with pytest.raises(TypeError):
            await client.connect(LOCALHOST, 1.5)  # type: ignore[arg-type]
        with pytest.raises((TypeError, ValueError)):
            await client.connect(None, 80)  # type: ignore[arg-type]
        assert not client.isAlive


async def test_peer_close_fires_disconnect_and_allows_reconnect() -> None:
    """The server closing our connection: one DISCONNECT; then we can connect again."""
    log, server_log = EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
    ):
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        await server.close()
        await log.wait_for("DISCONNECT")
        assert not client.isAlive
        await blocked()  # reconnecting at once is a known race, tested in isolation below
        await client.connect(*server.host)
        assert client.isAlive
    assert log.names() == ["CONNECTED", "DISCONNECT", "CONNECTED", "DISCONNECT"]


async def test_reconnect_right_after_peer_disconnect() -> None:
    """Connect again the moment the DISCONNECT callback (peer closed) has run:
    works every time (50 tries, in a child process since the failure hangs)."""
    result = await run_isolated("reconnect_after_peer_close")
    assert result.returncode == 0, result.stderr.decode()


async def test_reconnect_from_the_disconnect_callback() -> None:
    """A DISCONNECT callback (peer closed) that connects again: no deadlock (run in a
    child process since the failure hangs under a shield)."""
    result = await run_isolated("reconnect_from_disconnect")
    assert result.returncode == 0, result.stderr.decode()


async def test_adopting_a_connected_trio_stream() -> None:
    """``TcpClient(socket=stream)`` adopts a connected ``trio.SocketStream``: its
    CONNECTED comes first, then data flows both ways; anything else is TypeError."""
    log, server_log = EventLog(), EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server:
        stream = await trio.open_tcp_stream(*server.host)
        client = TcpClient(stream, evts=log.evts(*CLIENT_KEYS))
        assert client.isAlive and client.remote == server.host
        async with client:
            await log.wait_for("CONNECTED")
            await client.send("adopted")
            await server_log.wait_for("RECEIVED")
            await server.send("welcome")
            await log.wait_for("RECEIVED")
        assert log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
        assert log.args("CONNECTED") == [(client, client.host, server.host)]
    with socket.socket() as plain, pytest.raises(TypeError):
        TcpClient(plain)  # type: ignore[arg-type]
