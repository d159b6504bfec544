"""Interop: the trio binding against plain sockets and against the threaded binding."""

from __future__ import annotations

import socket

import pytest
import trio
from jfsocket.bindings import threaded
from jfsocket.bindings.trio import EventTypes, TcpClient, TcpServer

from .conftest import CLIENT_KEYS, LOCALHOST, SERVER_KEYS, EventLog

pytestmark = pytest.mark.trio
E = EventTypes


def raw_client_exchange(address: tuple[str, int]) -> bytes:
    """Blocking: connect, send a line, read until the echo's newline, close."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"hello\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            reply += chunk
        return reply


def raw_server_exchange(listener: socket.socket) -> bytes:
    """Blocking: accept one connection, read a line, answer, close."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5)
        request = b""
        while not request.endswith(b"\n"):
            chunk = conn.recv(100)
            if not chunk:
                break
            request += chunk
        conn.sendall(b"pong\n")
        return request


async def test_trio_server_with_a_plain_socket_client_in_a_thread() -> None:
    """A blocking socket client (in a worker thread) talks to the trio server."""
    log = EventLog()

    async def echo(side: TcpClient, data: object) -> None:
        log.record("RECEIVED", (side, data))
        await side.send(f"echo {data}")

    evts = {**log.evts(*SERVER_KEYS), E.RECEIVED: echo}
    async with TcpServer(LOCALHOST, 0, evts=evts, framing="line") as server:
        reply = await trio.to_thread.run_sync(raw_client_exchange, server.host)
        await log.wait_for("DISCONNECT")
    assert reply == b"echo hello\n"
    assert log.names() == ["STARTED", "CONNECTED", "RECEIVED", "SENDED", "DISCONNECT", "STOPED"]
    assert log.data("RECEIVED") == ["hello"]


async def test_trio_client_with_a_plain_socket_server_in_a_thread() -> None:
    """The trio client talks to a blocking socket server running in a worker thread."""
    log = EventLog()
    with socket.create_server((LOCALHOST, 0)) as listener:
        listener.settimeout(5)
        requests: list[bytes] = []

        async def serve() -> None:
            requests.append(await trio.to_thread.run_sync(raw_server_exchange, listener))

        async with (
            TcpClient(evts=log.evts(*CLIENT_KEYS), framing="line") as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(serve)
            await client.connect(*listener.getsockname())
            await client.send("ping")
            await log.wait_for("DISCONNECT")  # the server answers, then closes
    assert requests == [b"ping\n"]
    assert log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
    assert log.data("RECEIVED") == ["pong"]


async def test_trio_and_threaded_bindings_talk_both_ways() -> None:
    """A threaded-binding client against the trio server, and a trio client against
    a threaded-binding server: data both ways, the right events on every side."""
    trio_server_log, threaded_client_log = EventLog(), EventLog()
    threaded_server_log, trio_client_log = EventLog(), EventLog()

    # threaded client -> trio server
    async with TcpServer(LOCALHOST, 0, evts=trio_server_log.evts(*SERVER_KEYS)) as server:
        t_client = threaded.TcpClient(evts=threaded_client_log.evts(*CLIENT_KEYS))
        try:
            await trio.to_thread.run_sync(t_client.connect, *server.host)
            await trio_server_log.wait_for("CONNECTED")
            await trio.to_thread.run_sync(t_client.send, "from threads")
            await trio_server_log.wait_for("RECEIVED")
            await server.send("from trio")
            await threaded_client_log.wait_for("RECEIVED")
        finally:
            await trio.to_thread.run_sync(t_client.close)
        await trio_server_log.wait_for("DISCONNECT")
    assert trio_server_log.data("RECEIVED") == ["from threads"]
    assert trio_server_log.data("SENDED") == ["from trio"]
    await threaded_client_log.wait_for("DISCONNECT")
    assert threaded_client_log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
    assert threaded_client_log.data("RECEIVED") == ["from trio"]

    # trio client -> threaded server
    t_server = threaded.TcpServer(LOCALHOST, 0, evts=threaded_server_log.evts(*SERVER_KEYS))
    await trio.to_thread.run_sync(t_server.start)
    try:
        async with TcpClient(evts=trio_client_log.evts(*CLIENT_KEYS)) as client:
            await client.connect(*t_server.host)
            await client.send(b"from trio")
            await threaded_server_log.wait_for("RECEIVED")
            (side,) = t_server.clients.values()
            await trio.to_thread.run_sync(side.send, "from threads")
            await trio_client_log.wait_for("RECEIVED")
    finally:
        await trio.to_thread.run_sync(t_server.stop)
    await threaded_server_log.wait_for("STOPED")
    assert threaded_server_log.data("RECEIVED") == ["from trio"]
    assert threaded_server_log.names() == [
        "STARTED",
        "CONNECTED",
        "RECEIVED",
        "SENDED",
        "DISCONNECT",
        "STOPED",
    ]
    assert trio_client_log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
    assert trio_client_log.data("RECEIVED") == ["from threads"]
