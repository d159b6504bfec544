"""TcpClient under trio: ``async with`` needed, hangs tried in a child process, adoption.

connect, its errors, close and reconnecting are in ``tests/conformance``.
"""

from __future__ import annotations

import socket

import pytest
import trio
from jfsocket.bindings.trio import TcpClient, TcpServer

from .conftest import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    jfsocket_tasks,
    run_isolated,
)

pytestmark = pytest.mark.trio


async def test_connect_without_async_with_is_runtime_error() -> None:
    """``connect`` on a client not entered: RuntimeError saying to use ``async with``."""
    async with TcpServer(LOCALHOST, 0) as server:
        client = TcpClient()
        with pytest.raises(RuntimeError, match=r"async with TcpClient"):
            await client.connect(*server.host)
        assert not client.isAlive and not server.clients
        assert len(jfsocket_tasks()) == 1  # only the server's accept loop


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
