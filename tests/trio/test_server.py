"""TcpServer's own methods: send and close to one or all, registry, errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
from jfsocket.bindings.trio import SocketError, TcpClient, TcpServer

from .conftest import CLIENT_KEYS, LOCALHOST, SERVER_KEYS, EventLog, blocked

pytestmark = pytest.mark.trio


@contextlib.asynccontextmanager
async def three_clients(
    server_log: EventLog, logs: list[EventLog]
) -> AsyncIterator[tuple[TcpServer, list[TcpClient]]]:
    """A line-framed server with three connected clients, one log each."""
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS), framing="line") as server,
        contextlib.AsyncExitStack() as stack,
    ):
        clients = []
        for log in logs:
            client = await stack.enter_async_context(
                TcpClient(evts=log.evts(*CLIENT_KEYS), framing="line")
            )
            await client.connect(*server.host)
            clients.append(client)
        await server_log.wait_for("CONNECTED", len(logs))
        yield server, clients


async def test_send_to_all_and_to_one() -> None:
    """``send(data)`` reaches every client; ``send(data, remote)`` only that one."""
    server_log, logs = EventLog(), [EventLog(), EventLog(), EventLog()]
    async with three_clients(server_log, logs) as (server, clients):
        await server.send("everyone")
        assert server_log.count("SENDED") == 3
        target = clients[1].host
        assert target is not None
        await server.send(b"only you", target)
        for log in logs:
            await log.wait_for("RECEIVED")
        await logs[1].wait_for("RECEIVED", 2)
        await server.send("fence")  # every client reads this after what came before
        for log in logs:
            await log.wait_for("RECEIVED", 3 if log is logs[1] else 2)
    assert logs[0].data("RECEIVED") == ["everyone", "fence"]
    assert logs[1].data("RECEIVED") == ["everyone", "only you", "fence"]
    assert logs[2].data("RECEIVED") == ["everyone", "fence"]
    fourth = server_log.args("SENDED")[3][0]
    assert isinstance(fourth, TcpClient) and fourth.remote == target


async def test_send_with_no_clients_checks_type_and_does_nothing() -> None:
    """Sending to all with nobody connected: no event; bad data still TypeError."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
        await server.send("nobody")
        with pytest.raises(TypeError):
            await server.send(12)  # type: ignore[arg-type]
    assert log.names() == ["STARTED", "STOPED"]


async def test_close_one_then_all() -> None:
    """``close(remote)`` closes that connection only; ``close()`` closes the rest."""
    server_log, logs = EventLog(), [EventLog(), EventLog(), EventLog()]
    async with three_clients(server_log, logs) as (server, clients):
        target = clients[0].host
        assert target is not None
        await server.close(target)
        assert server_log.count("DISCONNECT") == 1
        assert server_log.args("DISCONNECT")[0][2] == target
        assert target not in server.clients and len(server.clients) == 2
        await logs[0].wait_for("DISCONNECT")
        assert clients[1].isAlive and clients[2].isAlive
        await server.close()
        assert server_log.count("DISCONNECT") == 3 and server.clients == {}
        for log in logs[1:]:
            await log.wait_for("DISCONNECT")
        assert server.isAlive  # closing clients does not stop the server
    assert server_log.count("DISCONNECT") == 3 and server_log.names()[-1] == "STOPED"


async def test_unknown_remote_is_1003() -> None:
    """``send``/``close`` to a remote that never connected: SocketError 1003."""
    async with TcpServer(LOCALHOST, 0) as server:
        with pytest.raises(SocketError) as info:
            await server.send("x", (LOCALHOST, 1))
        assert info.value.errno == 1003
        with pytest.raises(SocketError) as info:
            await server.close((LOCALHOST, 1))
        assert info.value.errno == 1003


async def test_departed_remote_is_1001() -> None:
    """``send`` to a remote that was connected and has left: SocketError 1001."""
    server_log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server:
        async with TcpClient() as client:
            await client.connect(*server.host)
            await server_log.wait_for("CONNECTED")
            remote = client.host
            assert remote is not None
        await server_log.wait_for("DISCONNECT")
        await blocked()  # the server's reader has finished with that connection
        with pytest.raises(SocketError) as info:
            await server.send("x", remote)
        assert info.value.errno == 1001
        assert server_log.count("SENDFAIL") == 0


async def test_remote_argument_is_validated() -> None:
    """A remote that is not an ``(ip, port)`` pair: TypeError/ValueError."""
    async with TcpServer(LOCALHOST, 0) as server:
        with pytest.raises((TypeError, ValueError)):
            await server.send("x", "127.0.0.1:80")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="65535"):
            await server.close((LOCALHOST, 70000))


async def test_clients_is_a_copy_keyed_by_remote() -> None:
    """``clients`` maps each remote to its server-side client; mutating it is harmless."""
    server_log, logs = EventLog(), [EventLog(), EventLog(), EventLog()]
    async with three_clients(server_log, logs) as (server, clients):
        registry = server.clients
        assert set(registry) == {c.host for c in clients}
        for remote, side in registry.items():
            assert side.remote == remote and side.host == server.host and side.isAlive
        registry.clear()
        assert len(server.clients) == 3
        assert server.clients is not server.clients


async def test_server_side_client_methods() -> None:
    """A server-side client sends and closes like any client."""
    server_log, client_log = EventLog(), EventLog()
    async with three_clients(server_log, [client_log]) as (server, clients):
        (side,) = server.clients.values()
        await side.send("direct")
        await client_log.wait_for("RECEIVED")
        await side.close()
        await client_log.wait_for("DISCONNECT")
        assert not side.isAlive and server.clients == {}
        with pytest.raises(SocketError) as info:
            await side.send("gone")
        assert info.value.errno == 1001
    assert client_log.data("RECEIVED") == ["direct"]
    assert clients[0].remote == server.host
    await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("closer", ["server", "peer"])
async def test_client_left_the_registry_when_its_disconnect_runs(closer: str) -> None:
    """In the server's DISCONNECT callback the departed remote is no longer in
    ``server.clients``, whoever closed the connection."""
    seen: list[bool] = []

    def on_disconnect(side: TcpClient, host: object, remote: object) -> None:
        seen.append(remote in server.clients)

    server = TcpServer(LOCALHOST, 0, evts={"onDisconnect": on_disconnect})
    async with server, TcpClient() as client:
        await client.connect(*server.host)
        with trio.fail_after(5):
            while not server.clients:
                await trio.sleep(0)
        if closer == "server":
            await server.close()
        else:
            await client.close()
        with trio.fail_after(5):
            while not seen:
                await trio.sleep(0)
    assert seen == [False]
