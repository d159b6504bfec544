"""Cancellation: every async method, slow callbacks, whole blocks, body exceptions."""

from __future__ import annotations

import socket

import pytest
import trio
from jfsocket.bindings.trio import (
    CastReceiver,
    CastSender,
    EventTypes,
    TcpClient,
    TcpServer,
)

from .conftest import (
    CLIENT_KEYS,
    LOCALHOST,
    RECEIVER_KEYS,
    SENDER_KEYS,
    SERVER_KEYS,
    EventLog,
    blocked,
    connected,
    jfsocket_tasks,
    raw_listener,
)

pytestmark = pytest.mark.trio
E = EventTypes
GROUP = "239.255.91.1"
HUGE = 16 * 1024 * 1024


def cancelled_scope() -> trio.CancelScope:
    """A cancel scope that is already cancelled: the first checkpoint inside raises."""
    scope = trio.CancelScope()
    scope.cancel()
    return scope


# -- TcpClient.connect -----------------------------------------------------------


async def test_connect_cancelled_while_the_peer_never_accepts() -> None:
    """connect to a listener whose backlog is full, cancelled: not connected, no
    task left, no event; connecting elsewhere afterwards works."""
    log = EventLog()
    async with (
        raw_listener() as listener,
        TcpServer(LOCALHOST, 0) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
    ):
        listener.listen(0)
        with socket.create_connection(listener.getsockname(), timeout=5):  # fills the backlog
            with trio.CancelScope() as scope:

                async def cancel_when_stuck() -> None:
                    await blocked()
                    scope.cancel()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cancel_when_stuck)
                    await client.connect(*listener.getsockname())
                    pytest.fail("connect must not succeed")
            assert scope.cancelled_caught
            assert not client.isAlive
            assert len(jfsocket_tasks()) == 1  # the server's accept loop only
        await client.connect(*server.host)
        assert client.isAlive
    assert log.names() == ["CONNECTED", "DISCONNECT"]


async def test_connect_cancelled_before_it_starts_leaves_client_usable() -> None:
    """connect inside an already cancelled scope: Cancelled, not connected, and a
    later connect works."""
    async with TcpServer(LOCALHOST, 0) as server, TcpClient() as client:
        with cancelled_scope() as scope:
            await client.connect(*server.host)
        assert scope.cancelled_caught and not client.isAlive
        await client.connect(*server.host)
        assert client.isAlive


# -- TcpClient.send / close ------------------------------------------------------


async def test_send_cancelled_while_blocked() -> None:
    """A send stuck on a peer that never reads, cancelled: trio.Cancelled itself
    propagates; one SENDFAIL, then one DISCONNECT; no task left."""
    log = EventLog()
    big = bytes(HUGE)
    raised: list[BaseException] = []
    async with (
        raw_listener(rcvbuf=4096) as listener,
        TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
    ):
        await client.connect(*listener.getsockname())
        peer, _ = await listener.accept()
        with peer:
            scope = trio.CancelScope()

            async def send_big() -> None:
                with scope:
                    try:
                        await client.send(big)
                    except BaseException as exc:
                        raised.append(exc)
                        raise

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_big)
                await blocked()
                assert log.names() == ["CONNECTED"]
                scope.cancel()
            assert scope.cancelled_caught
            assert len(raised) == 1 and type(raised[0]) is trio.Cancelled
            assert log.names() == ["CONNECTED", "SENDFAIL", "DISCONNECT"]
            assert log.data("SENDFAIL") == [big]
            assert not client.isAlive
    assert log.count("DISCONNECT") == 1


async def test_send_cancelled_before_it_starts() -> None:
    """send in an already cancelled scope: Cancelled, and the send is settled once."""
    log = EventLog()
    async with connected(EventLog(), log) as (_, client, _side):
        data = "never written"
        with cancelled_scope() as scope:
            await client.send(data)
        assert scope.cancelled_caught
        settled = log.data("SENDED") + log.data("SENDFAIL")
        assert len(settled) == 1 and settled[0] is data
    assert log.count("DISCONNECT") == 1


async def test_close_in_a_cancelled_scope_still_closes() -> None:
    """close in an already cancelled scope: the connection is closed, DISCONNECT once."""
    log = EventLog()
    async with connected(EventLog(), log) as (_, client, _side):
        with cancelled_scope():
            await client.close()
        assert not client.isAlive
        assert log.names() == ["CONNECTED", "DISCONNECT"]
    assert log.count("DISCONNECT") == 1


# -- TcpServer.start / stop / send / close ---------------------------------------


async def test_server_start_cancelled_then_started() -> None:
    """start in a cancelled scope: not listening, no STARTED; start again works."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
        await server.stop()
        with cancelled_scope():
            await server.start()
        assert not server.isAlive and log.names() == ["STARTED", "STOPED"]
        await blocked()  # let the old accept loop see its listener closed
        assert jfsocket_tasks() == []
        await server.start()
        assert server.isAlive
    assert log.names() == ["STARTED", "STOPED", "STARTED", "STOPED"]


async def test_server_stop_in_a_cancelled_scope_still_stops() -> None:
    """stop in a cancelled scope: clients closed, STOPED once, no task left."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log) as (server, _, _side):
        with cancelled_scope():
            await server.stop()
        assert not server.isAlive and server.clients == {}
        assert server_log.names()[-2:] == ["DISCONNECT", "STOPED"]
        await client_log.wait_for("DISCONNECT")
    assert server_log.count("STOPED") == 1 and server_log.count("DISCONNECT") == 1


async def test_server_send_cancelled_settles_once() -> None:
    """server.send in a cancelled scope: Cancelled, the data settled once at most."""
    server_log = EventLog()
    async with connected(server_log, EventLog()) as (server, _, side):
        data = "to all"
        with cancelled_scope() as scope:
            await server.send(data)
        assert scope.cancelled_caught
        settled = server_log.data("SENDED") + server_log.data("SENDFAIL")
        assert [s is data for s in settled] == [True]
        assert server_log.count("DISCONNECT") == (0 if side.isAlive else 1)
    assert server_log.count("DISCONNECT") == 1


async def test_server_close_in_a_cancelled_scope_still_closes() -> None:
    """server.close in a cancelled scope: the clients are closed, DISCONNECT once."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log) as (server, _, _side):
        with cancelled_scope():
            await server.close()
        assert server.clients == {} and server_log.count("DISCONNECT") == 1
        await client_log.wait_for("DISCONNECT")
    assert server_log.count("DISCONNECT") == 1


# -- multicast -------------------------------------------------------------------


async def test_receiver_start_and_stop_cancelled() -> None:
    """CastReceiver.start cancelled: not listening; stop cancelled: still stops."""
    log = EventLog()
    receiver = CastReceiver(("0.0.0.0", 0), evts=log.evts(*RECEIVER_KEYS), interface="127.0.0.1")
    receiver.joinGroup(GROUP)
    async with receiver:
        with cancelled_scope():
            await receiver.stop()
        assert not receiver.isAlive and log.names() == ["STARTED", "STOPED"]
        with cancelled_scope():
            await receiver.start()
        assert not receiver.isAlive and log.names() == ["STARTED", "STOPED"]
        await receiver.start()
        assert receiver.isAlive and receiver.groups == [GROUP]
    assert log.names() == ["STARTED", "STOPED", "STARTED", "STOPED"]


async def test_sender_send_and_close_cancelled() -> None:
    """CastSender.send cancelled: Cancelled propagates, SENDFAIL once; close cancelled
    still releases the socket; a later send works."""
    log = EventLog()
    async with CastSender(evts=log.evts(*SENDER_KEYS), ttl=0, interface="127.0.0.1") as sender:
        data = b"cancelled"
        with cancelled_scope() as scope:
            await sender.send((GROUP, 9), data)
        assert scope.cancelled_caught
        assert log.data("SENDFAIL") == [data] and log.count("SENDED") == 0
        with cancelled_scope():
            await sender.close()
        await sender.send((GROUP, 9), "after")
        assert log.data("SENDED") == ["after"]


# -- slow callbacks ----------------------------------------------------------------


async def test_cancelling_a_slow_callback_in_the_callers_task() -> None:
    """A SENDED callback stuck in the sending task is cancelled with the send's scope:
    the events queued behind it are still delivered; one DISCONNECT on close."""
    log = EventLog()
    stuck = trio.Event()

    async def slow_sended(client: TcpClient, data: object) -> None:
        log.record("SENDED", (client, data))
        stuck.set()
        await trio.sleep_forever()

    async with connected(EventLog(), EventLog(), framing="line") as (server, _, _side):
        client = TcpClient(
            evts={
                **log.evts(E.RECEIVED, E.DISCONNECT),
                E.SENDED: slow_sended,
            },
            framing="line",
        )
        async with client:
            await client.connect(*server.host)
            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    scope = trio.CancelScope()

                    async def send() -> None:
                        with scope:
                            await client.send("x")

                    nursery.start_soon(send)
                    await stuck.wait()
                    for word in ("a", "b", "c"):
                        await server.send(word)
                    await blocked()  # the reader queued them behind SENDED
                    assert log.count("RECEIVED") == 0
                    scope.cancel()
                await log.wait_for("RECEIVED", 3)
            assert client.isAlive
            await client.close()
            assert log.count("DISCONNECT") == 1
    assert log.names() == ["SENDED", "RECEIVED", "RECEIVED", "RECEIVED", "DISCONNECT"]
    assert log.data("RECEIVED") == ["a", "b", "c"]


async def test_cancelling_the_block_around_a_stuck_reader_callback() -> None:
    """A RECEIVED callback that never returns, with more RECEIVED queued behind it;
    the scope around both blocks is cancelled: the queued events still run, and
    DISCONNECT/STOPED come once each."""
    client_log, server_log = EventLog(), EventLog()
    stuck = trio.Event()

    async def slow_received(client: TcpClient, data: object) -> None:
        client_log.record("RECEIVED", (client, data))
        if data == "a":
            stuck.set()
            await trio.sleep_forever()

    client = TcpClient(
        evts={**client_log.evts(E.DISCONNECT), E.RECEIVED: slow_received}, framing="line"
    )
    server = TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS))
    with trio.fail_after(5), trio.CancelScope() as outer:
        async with server, client:
            await client.connect(*server.host)
            await server.send("a\nb\nc\n")  # one write, one read: three RECEIVED queued
            await stuck.wait()
            await blocked()
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert client_log.data("RECEIVED") == ["a", "b", "c"]
    assert client_log.names()[-1] == "DISCONNECT" and client_log.count("DISCONNECT") == 1
    assert server_log.count("DISCONNECT") == 1 and server_log.count("STOPED") == 1
    assert not client.isAlive and not server.isAlive


async def test_cancelling_the_whole_block() -> None:
    """Cancel the scope around ``async with`` server and client: all closed, each
    DISCONNECT and STOPED delivered exactly once, no task left."""
    server_log, client_log = EventLog(), EventLog()
    with trio.CancelScope() as outer:
        async with connected(server_log, client_log) as (server, client, _side):
            await client.send("hi")
            await server_log.wait_for("RECEIVED")
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert not server.isAlive and not client.isAlive
    assert client_log.names() == ["CONNECTED", "SENDED", "DISCONNECT"]
    assert server_log.names() == ["STARTED", "CONNECTED", "RECEIVED", "DISCONNECT", "STOPED"]


class BodyError(Exception):
    """Raised by a test body on purpose."""


@pytest.mark.parametrize("kind", ["server", "client", "receiver", "sender"])
async def test_body_exception_propagates_as_itself(kind: str) -> None:
    """An exception from the body of ``async with`` is that exception, not a group;
    the object is still closed or stopped."""
    log = EventLog()
    obj: TcpServer | TcpClient | CastReceiver | CastSender
    if kind == "server":
        obj = TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS))
    elif kind == "client":
        obj = TcpClient(evts=log.evts(*CLIENT_KEYS))
    elif kind == "receiver":
        obj = CastReceiver(("0.0.0.0", 0), evts=log.evts(*RECEIVER_KEYS), interface="127.0.0.1")
    else:
        obj = CastSender(evts=log.evts(*SENDER_KEYS), ttl=0, interface="127.0.0.1")

    async def body(address: tuple[str, int]) -> None:
        async with obj:
            if isinstance(obj, TcpClient):
                await obj.connect(*address)
            raise BodyError(kind)

    async with TcpServer(LOCALHOST, 0) as other:
        with pytest.raises(BodyError) as info:
            await body(other.host)
        assert type(info.value) is BodyError
    if isinstance(obj, TcpClient):
        assert log.names() == ["CONNECTED", "DISCONNECT"]
    elif not isinstance(obj, CastSender):
        assert log.names() == ["STARTED", "STOPED"] and not obj.isAlive
