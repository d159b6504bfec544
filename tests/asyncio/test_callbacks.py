"""Callbacks: plain and ``async def``, in order, one at a time per connection,
in the loop's thread; errors in them logged; the objects' methods from inside."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest
from jfsocket.bindings.asyncio import EventTypes, TcpClient, TcpServer
from jfsocket.core import Callback

from ..eventlog import Evts
from .helpers import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    connected,
    quiesce,
    run_isolated,
    within,
)

pytestmark = pytest.mark.asyncio
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


@pytest.mark.parametrize("use_async", [False, True], ids=["plain", "async"])
async def test_callbacks_run_in_the_loops_thread(use_async: bool) -> None:
    """Every callback runs in the thread of the loop the objects live in, with that
    loop running (so a plain callback may call ``asyncio.get_running_loop()``)."""
    loop = asyncio.get_running_loop()
    main = threading.current_thread()
    log = EventLog()

    def where(name: str) -> Callback:
        def plain(*args: object) -> None:
            running = asyncio.get_running_loop()
            log.record(name, (running is loop and threading.current_thread() is main,))

        async def asynchronous(*args: object) -> None:
            plain(*args)

        return asynchronous if use_async else plain

    server_evts: Evts = {key: where(f"server {key.name}") for key in SERVER_KEYS}
    client_evts: Evts = {key: where(f"client {key.name}") for key in CLIENT_KEYS}
    async with (
        TcpServer(LOCALHOST, 0, evts=server_evts) as server,
        TcpClient(evts=client_evts) as client,
    ):
        await client.connect(*server.host)
        await log.wait_for("server CONNECTED")
        await client.send("up")
        await server.send("down")
        await log.wait_for("server RECEIVED")
        await log.wait_for("client RECEIVED")
    assert len(log.records) == 10 and all(args == (True,) for _, args in log.records), log.records


async def test_an_awaiting_callback_holds_back_the_next_ones() -> None:
    """An async RECEIVED callback waiting on something: the next RECEIVED and the
    SENDED of a concurrent send do not start until it returns; then all run, in
    order, one at a time."""
    log = EventLog()
    gate = asyncio.Event()
    active: list[str] = []
    overlaps: list[tuple[str, str]] = []

    def track(name: str, data: object) -> None:
        if active:
            overlaps.append((active[0], f"{name} {data}"))
        log.record(name, (data,))

    async def received(client: TcpClient, data: object) -> None:
        track("RECEIVED", data)
        active.append(f"RECEIVED {data}")
        try:
            if data == "a":
                await gate.wait()
            else:
                await asyncio.sleep(0)
        finally:
            active.pop()

    async def sended(client: TcpClient, data: object) -> None:
        track("SENDED", data)
        active.append(f"SENDED {data}")
        try:
            await asyncio.sleep(0)
        finally:
            active.pop()

    server_log = EventLog()
    async with connected(server_log, EventLog(), framing="line") as (server, _, _side):
        client = TcpClient(evts={E.RECEIVED: received, E.SENDED: sended}, framing="line")
        async with client:
            await client.connect(*server.host)
            await server_log.wait_for("CONNECTED", 2)
            (side,) = (c for c in server.clients.values() if c.remote == client.host)
            await side.send("a")
            await log.wait_for("RECEIVED")
            await side.send("b")
            await side.send("c")
            sending = asyncio.ensure_future(client.send("x"))
            await server_log.wait_for(lambda: "x" in server_log.data("RECEIVED"))
            await quiesce(log.names)
            assert log.names() == ["RECEIVED"], "a callback started beside a running one"
            assert not sending.done(), "send returned before its SENDED ran"
            gate.set()
            await within(sending)
            await log.wait_for(lambda: len(log.names()) == 4)
    assert overlaps == []
    records = [f"{name} {args[0]}" for name, args in log.records]
    assert records[0] == "RECEIVED a"
    assert [r for r in records if r.startswith("RECEIVED")] == [
        "RECEIVED a",
        "RECEIVED b",
        "RECEIVED c",
    ]
    assert records.count("SENDED x") == 1


async def test_async_callbacks_never_overlap_and_keep_order() -> None:
    """Slow async callbacks of one connection run one at a time, in order, with
    events arriving and sends from several tasks meanwhile."""
    log = EventLog()
    active: list[str] = []
    overlaps: list[tuple[str, str]] = []

    def slow(name: str) -> Callback:
        async def callback(*args: object) -> None:
            if active:
                overlaps.append((active[0], name))
            active.append(name)
            for _ in range(5):
                await asyncio.sleep(0)
            log.record(f"{name}:{args[1]}" if len(args) == 2 else name, args)
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
        await within(asyncio.gather(*(client.send(word) for word in ("x", "y", "z"))))
        await log.wait_for(lambda: len(log.records) == 7)
    assert overlaps == []
    order = log.names()
    assert order[0] == "C"
    assert [o for o in order if o.startswith("R")] == ["R:a", "R:b", "R:c"]
    assert [o for o in order if o.startswith("S")] == ["S:x", "S:y", "S:z"]


@pytest.mark.parametrize("use_async", [False, True], ids=["plain", "async"])
async def test_raising_callbacks_are_logged_and_harmless(
    caplog: pytest.LogCaptureFixture, use_async: bool
) -> None:
    """Every callback of a server and a client raises: each is logged on 'jfsocket'
    with its traceback, and every event still happens, in order."""
    log = EventLog()

    def boom(name: str) -> Callback:
        def plain(*args: object) -> None:
            log.record(name, args)
            raise CallbackBoomError(name)

        async def asynchronous(*args: object) -> None:
            await asyncio.sleep(0)
            plain(*args)

        return asynchronous if use_async else plain

    server_evts: Evts = {key: boom(f"server {key.name}") for key in SERVER_KEYS}
    client_evts: Evts = {key: boom(f"client {key.name}") for key in CLIENT_KEYS}
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        async with (
            TcpServer(LOCALHOST, 0, evts=server_evts, framing="line") as server,
            TcpClient(evts=client_evts, framing="line") as client,
        ):
            await client.connect(*server.host)
            await log.wait_for("server CONNECTED")
            await client.send("up")
            await log.wait_for("server RECEIVED")
            await server.send("down")
            await log.wait_for("client RECEIVED")
            assert client.isAlive and server.isAlive and len(server.clients) == 1
        await log.wait_for("client DISCONNECT")
    names = log.names()
    assert [n for n in names if n.startswith("client")] == [
        "client CONNECTED",
        "client SENDED",
        "client RECEIVED",
        "client DISCONNECT",
    ]
    assert [n for n in names if n.startswith("server")] == [
        "server STARTED",
        "server CONNECTED",
        "server RECEIVED",
        "server SENDED",
        "server DISCONNECT",
        "server STOPED",
    ]
    booms = [
        r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], CallbackBoomError)
    ]
    assert sorted(str(r.exc_info[1]) for r in booms if r.exc_info) == sorted(names)
    assert all(r.name.split(".")[0] == "jfsocket" for r in booms)
    assert all(r.exc_info and r.exc_info[2] is not None for r in booms)


# -- the objects' methods from inside callbacks ---------------------------------------


async def test_client_closes_itself_from_its_received_callback() -> None:
    """``await client.close()`` in its RECEIVED callback: returns, DISCONNECT once
    after that callback; the client connects again afterwards."""
    log = EventLog()

    async def close_on_bye(client: TcpClient, data: object) -> None:
        log.record("RECEIVED", (client, data))
        if data == "bye":
            await client.close()
            log.record("closed", (client,))

    client = TcpClient(
        evts={**log.evts(E.CONNECTED, E.DISCONNECT), E.RECEIVED: close_on_bye}, framing="line"
    )
    server_log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS)) as server, client:
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        await server.send("bye\n")
        await log.wait_for("DISCONNECT")
        await server_log.wait_for("DISCONNECT")
        assert not client.isAlive
        await client.connect(*server.host)
        assert client.isAlive
    assert log.names() == [
        "CONNECTED",
        "RECEIVED",
        "closed",
        "DISCONNECT",
        "CONNECTED",
        "DISCONNECT",
    ]


async def test_server_stops_itself_from_a_received_callback() -> None:
    """``await server.stop()`` in a server-side RECEIVED callback: returns; then that
    connection's DISCONNECT and STOPED, once each; the client is disconnected."""
    log, client_log = EventLog(), EventLog()

    async def stop(side: TcpClient, data: object) -> None:
        log.record("RECEIVED", (side, data))
        await server.stop()
        log.record("stopped", (side,))

    server = TcpServer(
        LOCALHOST, 0, evts={**log.evts(E.STARTED, E.DISCONNECT, E.STOPED), E.RECEIVED: stop}
    )
    async with server, TcpClient(evts=client_log.evts(*CLIENT_KEYS)) as client:
        await client.connect(*server.host)
        await client.send("stop")
        await log.wait_for("STOPED")
        await client_log.wait_for("DISCONNECT")
        assert not server.isAlive and server.clients == {}
    assert log.names() == ["STARTED", "RECEIVED", "stopped", "DISCONNECT", "STOPED"]


async def test_echo_from_an_async_callback() -> None:
    """A server-side RECEIVED callback awaiting ``send`` on its connection: the
    echo arrives, SENDED once per echo, no deadlock."""
    server_log, client_log = EventLog(), EventLog()

    async def echo(side: TcpClient, data: object) -> None:
        server_log.record("RECEIVED", (side, data))
        assert isinstance(data, str)
        await side.send(data.upper())

    server = TcpServer(
        LOCALHOST, 0, evts={**server_log.evts(E.SENDED), E.RECEIVED: echo}, framing="line"
    )
    async with server, TcpClient(evts=client_log.evts(*CLIENT_KEYS), framing="line") as client:
        await client.connect(*server.host)
        for word in ("one", "two", "three"):
            await client.send(word)
        await client_log.wait_for("RECEIVED", 3)
        await server_log.wait_for("SENDED", 3)
    assert client_log.data("RECEIVED") == ["ONE", "TWO", "THREE"]
    assert server_log.data("SENDED") == ["ONE", "TWO", "THREE"]


async def test_relay_between_two_clients_from_callbacks() -> None:
    """A callback of one connection awaits ``send`` on another object: what the
    first client sends reaches the second through the server, and back."""
    server_log, one_log, two_log = EventLog(), EventLog(), EventLog()

    async def relay(side: TcpClient, data: object) -> None:
        assert isinstance(data, str)
        for other in server.clients.values():
            if other is not side:
                await other.send(data)

    server = TcpServer(
        LOCALHOST, 0, evts={**server_log.evts(E.CONNECTED), E.RECEIVED: relay}, framing="line"
    )
    async with (
        server,
        TcpClient(evts=one_log.evts(*CLIENT_KEYS), framing="line") as one,
        TcpClient(evts=two_log.evts(*CLIENT_KEYS), framing="line") as two,
    ):
        await one.connect(*server.host)
        await two.connect(*server.host)
        await server_log.wait_for("CONNECTED", 2)
        await one.send("to two")
        await two_log.wait_for("RECEIVED")
        await two.send("to one")
        await one_log.wait_for("RECEIVED")
    assert two_log.data("RECEIVED") == ["to two"] and one_log.data("RECEIVED") == ["to one"]


async def test_plain_callback_schedules_send_and_close_as_tasks() -> None:
    """A plain callback cannot await: it starts ``send`` and ``close`` as tasks.
    They run after it returns, in the order started, without deadlock."""
    log = EventLog()
    tasks: list[asyncio.Task[None]] = []

    def answer(client: TcpClient, data: object) -> None:
        log.record("RECEIVED", (client, data))
        tasks.append(asyncio.ensure_future(client.send(f"re: {data}")))
        if data == "last":
            tasks.append(asyncio.ensure_future(client.close()))

    client = TcpClient(
        evts={**log.evts(E.SENDED, E.DISCONNECT), E.RECEIVED: answer}, framing="line"
    )
    server_log = EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS), framing="line") as server,
        client,
    ):
        await client.connect(*server.host)
        await server_log.wait_for("CONNECTED")
        await server.send("first")
        await server.send("last")
        await log.wait_for("DISCONNECT")
        await within(asyncio.gather(*tasks))
        await server_log.wait_for("RECEIVED", 2)
    assert server_log.data("RECEIVED") == ["re: first", "re: last"]
    assert log.names() == ["RECEIVED", "RECEIVED", "SENDED", "SENDED", "DISCONNECT"]


@pytest.mark.parametrize(
    "scenario",
    [
        "mutual_close",
        "reconnect_from_disconnect",
        "close_from_connected",
        "stop_from_connected",
        "reconnect_after_peer_close",
    ],
)
async def test_from_callbacks_without_deadlock(scenario: str) -> None:
    """Deadlock-prone calls from callbacks, in a child process on this test's loop
    (a deadlock that shields itself from cancellation would hang this one); see
    :mod:`tests.asyncio.isolated`."""
    result = await run_isolated(scenario)
    assert result.returncode == 0, result.stderr.decode()


if sys.version_info >= (3, 11):  # asyncio.timeout and TaskGroup

    async def test_async_callbacks_run_in_a_task_from_their_first_step() -> None:
        """An async callback runs as a task from its first line (it starts right in
        the protocol callback, then continues in a task of its own, started eagerly): a
        timeout, a task group and ``current_task()`` work before and after it first
        suspends, and a timeout that expires reaches the callback as TimeoutError."""
        log = EventLog()

        async def received(side: TcpClient, data: object) -> None:
            first = asyncio.current_task()
            assert first is not None
            async with asyncio.timeout(5):  # needs a task; before any suspension
                await side.send("fast")
            if data == "slow":
                try:
                    async with asyncio.timeout(0):  # expires at the first suspension
                        await asyncio.Event().wait()
                except TimeoutError:
                    log.record("timed out", ())
            async with asyncio.TaskGroup() as group:
                group.create_task(asyncio.sleep(0))
            assert asyncio.current_task() is first  # the same task throughout
            log.record("done", (side, data))

        evts = {**log.evts(E.DISCONNECT), E.RECEIVED: received}
        server = TcpServer(LOCALHOST, 0, evts=evts, framing="line")
        async with server, TcpClient(framing="line") as client:
            await client.connect(*server.host)
            for word in ("quick", "slow", "after"):
                await client.send(word)
            await log.wait_for("done", 3)
        assert log.names()[:4] == ["done", "timed out", "done", "done"]
        assert log.data("done") == ["quick", "slow", "after"]
