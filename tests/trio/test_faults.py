"""Exactly-once under faults: resets, stuck peers, stops and closes from callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
from jfsocket.bindings.trio import EventTypes, SocketError, TcpClient, TcpServer

from .conftest import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    Evts,
    blocked,
    raw_connect,
    raw_listener,
    reset,
    run_isolated,
    settled_once,
)

pytestmark = pytest.mark.trio
E = EventTypes
#: More than loopback's socket buffers can hold: a send of it blocks until read.
HUGE = 16 * 1024 * 1024


@contextlib.asynccontextmanager
async def stuck_peer(
    kind: str, log: EventLog
) -> AsyncIterator[tuple[TcpClient, trio.socket.SocketType]]:
    """A jfsocket connection whose raw peer never reads: ``(our side, peer)``.

    *kind* ``'client'``: our TcpClient connected to a raw listener;
    ``'server'``: a raw socket connected to our TcpServer (its client is ours).
    """
    if kind == "client":
        async with (
            raw_listener(rcvbuf=4096) as listener,
            TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
        ):
            await client.connect(*listener.getsockname())
            peer, _ = await listener.accept()
            with peer:
                yield client, peer
    else:
        async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
            with await raw_connect(server.host, rcvbuf=4096) as peer:
                await log.wait_for("CONNECTED")
                (side,) = server.clients.values()
                yield side, peer


@pytest.mark.parametrize("kind", ["client", "server"])
async def test_peer_reset_settles_every_send_once(kind: str) -> None:
    """Many sends, the peer resets mid-stream: each returned send is settled once,
    one DISCONNECT, later sends raise 1001, nothing hangs."""
    log = EventLog()
    sent: list[bytes] = []
    refused: list[SocketError] = []

    async with stuck_peer(kind, log) as (ours, peer):

        async def pump() -> None:
            for i in range(20_000):
                data = b"%08d" % i + bytes(2048)
                try:
                    await ours.send(data)
                except SocketError as exc:
                    refused.append(exc)
                    return
                sent.append(data)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump)
                await blocked()  # the peer's buffers are full: pump waits in send
                assert not refused and sent
                reset(peer)
        assert log.count("DISCONNECT") == 1 and not ours.isAlive
    assert log.count("DISCONNECT") == 1
    assert [e.errno for e in refused] == [1001]
    assert settled_once(log, sent)
    assert log.count("SENDED") + log.count("SENDFAIL") == len(sent)
    assert log.count("SENDFAIL") >= 1
    assert log.names()[-1] == "DISCONNECT" or log.names()[-1] == "STOPED"


@pytest.mark.parametrize("kind", ["client", "server"])
async def test_blocked_send_settles_once_when_the_peer_vanishes(kind: str) -> None:
    """A send stuck on a peer that never reads; the peer vanishes: that send
    returns, with exactly one SENDFAIL, then one DISCONNECT."""
    log = EventLog()
    big = bytes(HUGE)
    async with stuck_peer(kind, log) as (ours, peer):
        returned = trio.Event()

        async def send_big() -> None:
            await ours.send(big)
            returned.set()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_big)
                await blocked()
                assert log.count("SENDED") == 0 and log.count("SENDFAIL") == 0
                reset(peer)
                await returned.wait()
        failures = log.args("SENDFAIL")
        assert len(failures) == 1 and failures[0][0] is ours and failures[0][1] is big
        assert isinstance(failures[0][2], BaseException)
        assert log.count("SENDED") == 0 and log.count("DISCONNECT") == 1
        names = log.names()
        assert names.index("SENDFAIL") < names.index("DISCONNECT")
    assert log.count("DISCONNECT") == 1 and log.count("SENDFAIL") == 1


@pytest.mark.parametrize("kind", ["client", "server"])
async def test_close_aborts_a_blocked_send(kind: str) -> None:
    """``close()`` while a send is stuck: close does not hang; SENDFAIL then
    DISCONNECT, once each; the stuck send returns."""
    log = EventLog()
    big = bytes(HUGE)
    async with stuck_peer(kind, log) as (ours, _peer):
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ours.send, big)
                await blocked()
                await ours.close()
                assert not ours.isAlive
        assert log.data("SENDFAIL") == [big]
        names = log.names()
        assert names.count("DISCONNECT") == 1
        assert names.index("SENDFAIL") < names.index("DISCONNECT")
    assert log.count("DISCONNECT") == 1 and log.count("SENDFAIL") == 1


async def test_server_stop_with_busy_clients() -> None:
    """stop() while three clients stream to the server and a server send is stuck on
    a fourth peer: one DISCONNECT each, STOPED last, every send settled once."""
    server_log = EventLog()
    logs = [EventLog(), EventLog(), EventLog()]
    sent: list[list[bytes]] = [[], [], []]
    big = bytes(HUGE)
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        clients = [
            await stack.enter_async_context(TcpClient(evts=log.evts(*CLIENT_KEYS))) for log in logs
        ]
        for client in clients:
            await client.connect(*server.host)
        peer = stack.enter_context(await raw_connect(server.host, rcvbuf=4096))
        await server_log.wait_for("CONNECTED", 4)
        stuck = next(s for s in server.clients.values() if s.remote == peer.getsockname())

        async def pump(client: TcpClient, out: list[bytes]) -> None:
            for i in range(100_000):
                data = b"%d;" % i
                try:
                    await client.send(data)
                except SocketError:
                    return
                out.append(data)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for client, out in zip(clients, sent, strict=True):
                    nursery.start_soon(pump, client, out)
                nursery.start_soon(stuck.send, big)
                await server_log.wait_for("RECEIVED", 30)
                await server.stop()
                assert not server.isAlive and server.clients == {}
        names = server_log.names()
        assert names.count("DISCONNECT") == 4
        assert names[-1] == "STOPED" and names.count("STOPED") == 1
        assert server_log.data("SENDFAIL") == [big] and server_log.count("SENDED") == 0
        for log, out in zip(logs, sent, strict=True):
            await log.wait_for("DISCONNECT")
            assert settled_once(log, out)
            assert log.count("SENDED") + log.count("SENDFAIL") == len(out)
    for log in logs:
        assert log.count("DISCONNECT") == 1


@pytest.mark.parametrize("side", ["client", "server"])
async def test_close_from_inside_received(side: str) -> None:
    """A connection closing itself from its own RECEIVED callback: close returns,
    then its one DISCONNECT runs; the peer sees one DISCONNECT too."""
    log, other = EventLog(), EventLog()

    async def close_self(conn: TcpClient, data: object) -> None:
        log.record("RECEIVED", (conn, data))
        await conn.close()
        log.record("closed", (conn,))

    ours: Evts = {E.RECEIVED: close_self, E.DISCONNECT: log.callback("DISCONNECT")}
    theirs = other.evts(*CLIENT_KEYS)
    server = TcpServer(LOCALHOST, 0, evts=ours if side == "server" else theirs)
    client = TcpClient(evts=ours if side == "client" else theirs)
    async with server, client:
        await client.connect(*server.host)
        await other.wait_for("CONNECTED")
        if side == "client":
            await server.send("bye")
        else:
            await client.send("bye")
        await log.wait_for("DISCONNECT")
        await other.wait_for("DISCONNECT")
        assert not client.isAlive
    assert log.names() == ["RECEIVED", "closed", "DISCONNECT"]
    assert other.count("DISCONNECT") == 1


async def test_server_close_from_inside_received_and_echo_from_callback() -> None:
    """A server callback can send (echo) and close its client without deadlock."""
    client_log = EventLog()

    async def echo_or_close(side: TcpClient, data: object) -> None:
        if data == "quit":
            await side.close()
        else:
            await side.send(f"echo {data}")

    async with (
        TcpServer(LOCALHOST, 0, evts={E.RECEIVED: echo_or_close}, framing="line") as server,
        TcpClient(evts=client_log.evts(*CLIENT_KEYS), framing="line") as client,
    ):
        await client.connect(*server.host)
        for word in ("a", "b", "c"):
            await client.send(word)
        await client_log.wait_for("RECEIVED", 3)
        await client.send("quit")
        await client_log.wait_for("DISCONNECT")
        with trio.fail_after(5):
            while server.clients:
                await trio.sleep(0)
    assert client_log.data("RECEIVED") == ["echo a", "echo b", "echo c"]
    assert client_log.count("DISCONNECT") == 1


@pytest.mark.parametrize("event", [E.STARTED, E.CONNECTED, E.RECEIVED])
async def test_server_stop_from_inside_a_callback(event: EventTypes) -> None:
    """``await server.stop()`` from a server callback: no deadlock; every DISCONNECT,
    then one STOPED; leaving the block later is fine."""
    log = EventLog()
    stopped = trio.Event()

    async def stop(*args: object) -> None:
        log.record(event.name, args)
        server = args[0] if event is E.STARTED else owner
        assert isinstance(server, TcpServer)
        await server.stop()
        stopped.set()

    evts = log.evts(E.DISCONNECT, E.STOPED, E.STARTED, E.CONNECTED, E.RECEIVED)
    evts[event] = stop
    owner = TcpServer(LOCALHOST, 0, evts=evts)
    async with owner, TcpClient() as client:
        if event is not E.STARTED:
            await client.connect(*owner.host)
            await client.send("trigger")
        with trio.fail_after(5):
            await stopped.wait()
        await log.wait_for("STOPED")
        assert not owner.isAlive and owner.clients == {}
    names = log.names()
    assert names.count("STOPED") == 1 and names[-1] == "STOPED"
    assert names.count("DISCONNECT") == (0 if event is E.STARTED else 1)


async def test_two_connections_closing_each_other_from_callbacks() -> None:
    """Server-side clients A and B, each closing the other from its RECEIVED callback
    while both callbacks run: no deadlock, two DISCONNECT (child process: the
    failure hangs under a shield)."""
    result = await run_isolated("mutual_close")
    assert result.returncode == 0, result.stderr.decode()
