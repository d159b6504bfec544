"""TcpServer's life: ``async with``, start, stop, start again, errors, IPv6."""

from __future__ import annotations

import socket

import pytest
import trio
from jfsocket.bindings.trio import SocketError, TcpClient, TcpServer

from .conftest import CLIENT_KEYS, LOCALHOST, SERVER_KEYS, EventLog, jfsocket_tasks

pytestmark = pytest.mark.trio


async def test_async_with_starts_and_resolves_port() -> None:
    """Entering starts the server: STARTED has run, ``host`` has the real port."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
        assert log.names() == ["STARTED"]
        assert log.args("STARTED") == [(server,)]
        assert server.isAlive
        ip, port = server.host
        assert ip == LOCALHOST and port > 0
        assert jfsocket_tasks(), "a listening server has its accept task"
    assert log.names() == ["STARTED", "STOPED"]
    assert log.args("STOPED") == [(server,)]
    assert not server.isAlive


async def test_leaving_disconnects_every_client_then_stoped() -> None:
    """Leaving the block: each client's DISCONNECT, then STOPED, all done on exit."""
    log = EventLog()
    clients = [TcpClient(), TcpClient()]
    async with clients[0], clients[1]:
        async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
            for client in clients:
                await client.connect(*server.host)
            await log.wait_for("CONNECTED", 2)
            assert len(server.clients) == 2
        names = log.names()
        assert names.count("DISCONNECT") == 2
        assert names[-1] == "STOPED" and names.count("STOPED") == 1
        assert names.index("STOPED") > max(i for i, n in enumerate(names) if n == "DISCONNECT")
        assert not server.isAlive and server.clients == {}
        remotes = {args[2] for args in log.args("DISCONNECT")}
        assert remotes == {c.host for c in clients}


async def test_start_while_started_is_1000() -> None:
    """``start()`` on a listening server: SocketError 1000, still listening."""
    async with TcpServer(LOCALHOST, 0) as server:
        with pytest.raises(SocketError) as info:
            await server.start()
        assert info.value.errno == 1000
        assert server.isAlive


async def test_port_taken_is_1005_from_async_with() -> None:
    """A port already bound: ``async with`` raises SocketError 1005 with the OSError."""
    log = EventLog()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen()
        server = TcpServer(LOCALHOST, taken.getsockname()[1], evts=log.evts(*SERVER_KEYS))
        with pytest.raises(SocketError) as info:
            async with server:
                pytest.fail("the body must not run")
    assert info.value.errno == 1005
    assert isinstance(info.value.err, OSError)
    assert not server.isAlive
    assert log.names() == []


async def test_stop_inside_block_is_idempotent_and_start_again_works() -> None:
    """``stop()`` inside the block (twice), then ``start()`` listens again."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
        await server.stop()
        await server.stop()
        assert not server.isAlive
        assert log.names() == ["STARTED", "STOPED"]
        await server.start()
        assert server.isAlive
        assert log.names() == ["STARTED", "STOPED", "STARTED"]
        async with TcpClient() as client:
            await client.connect(*server.host)
            await log.wait_for("CONNECTED")
    assert log.names()[-1] == "STOPED" and log.count("STOPED") == 2


async def test_start_without_async_with_is_runtime_error() -> None:
    """``start()`` outside ``async with``: RuntimeError naming what to do."""
    server = TcpServer(LOCALHOST, 0)
    with pytest.raises(RuntimeError, match="async with"):
        await server.start()
    assert not server.isAlive


async def test_ipv6_loopback() -> None:
    """A server on ::1 and a client connecting to it exchange data."""
    server_log, client_log = EventLog(), EventLog()
    async with TcpServer("::1", 0, evts=server_log.evts(*SERVER_KEYS)) as server:
        ip, port = server.host
        assert ip == "::1" and port > 0
        async with TcpClient(evts=client_log.evts(*CLIENT_KEYS)) as client:
            await client.connect(*server.host)
            assert client.remote == server.host
            await client.send("over six")
            assert client.host is not None
            side = server.clients[client.host]
            assert await server_log.wait_for("RECEIVED") == [(side, "over six")]


async def test_bad_arguments_are_python_errors() -> None:
    """A port out of range or not an int, an IP that is not one: ValueError/TypeError."""
    with pytest.raises(ValueError, match="port"):
        TcpServer(LOCALHOST, 70000)
    with pytest.raises(TypeError):
        TcpServer(LOCALHOST, "80")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not-an-ip"):
        TcpServer("not-an-ip", 0)
    await trio.lowlevel.checkpoint()
