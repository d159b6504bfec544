"""Nothing leaks: many start/stop and connect/close cycles; the leak check itself.

After each series the tasks of the loop (:func:`asyncio.all_tasks`) and the
process's file descriptors are what they were before it, at once: no waiting
for the loop to get round to closing something.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from jfsocket.bindings.asyncio import CastReceiver, CastSender, EventTypes, TcpClient, TcpServer

from .conftest import Complaints
from .helpers import (
    LOCALHOST,
    EventLog,
    cancel_and_wait,
    check_clean,
    new_fds,
    open_fds,
    quiesce,
    stray_tasks,
    within,
)

pytestmark = pytest.mark.asyncio
CYCLES = 200
LOG_KEYS = (EventTypes.STARTED, EventTypes.STOPED)
CONN_KEYS = (EventTypes.CONNECTED, EventTypes.DISCONNECT)


def sockets() -> int:
    """How many sockets this process has open."""
    return sum(1 for what in open_fds().values() if what.startswith("socket:"))


async def test_server_start_stop_cycles() -> None:
    """200 ``async with TcpServer`` cycles: fds, sockets and tasks back at once."""
    before, socks = open_fds(), sockets()
    log = EventLog()
    for _ in range(CYCLES):
        async with TcpServer(LOCALHOST, 0, evts=log.evts(*LOG_KEYS)):
            pass
    assert log.count("STARTED") == CYCLES and log.count("STOPED") == CYCLES
    assert sockets() == socks
    check_clean(before)


async def test_server_stop_start_cycles_inside_one_block() -> None:
    """200 stop/start cycles of one server inside one ``async with``: after each
    stop, no task and no descriptor of its own is left."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*LOG_KEYS)) as server:
        await server.stop()
        before = open_fds()
        for _ in range(CYCLES):
            await server.start()
            await server.stop()
            check_clean(before)
        await server.start()
    assert log.count("STARTED") == CYCLES + 2 == log.count("STOPED")


async def start_or_skip(obj: TcpServer | CastReceiver) -> None:
    """``start()`` outside ``async with``; skip if the binding requires the block."""
    try:
        await obj.start()
    except RuntimeError as exc:
        if "async with" not in str(exc):
            raise
        pytest.skip(f"start() needs `async with` in this binding: {exc}")


async def test_server_explicit_start_stop_cycles() -> None:
    """200 ``start()``/``stop()`` cycles without ``async with`` (where the binding
    allows it): nothing left after each stop."""
    before = open_fds()
    log = EventLog()
    server = TcpServer(LOCALHOST, 0, evts=log.evts(*LOG_KEYS))
    await start_or_skip(server)
    await server.stop()
    check_clean(before)
    for _ in range(CYCLES):
        await server.start()
        async with TcpClient() as client:
            await client.connect(*server.host)
        await server.stop()
        check_clean(before)
    assert log.count("STARTED") == CYCLES + 1 == log.count("STOPED")


async def test_client_connect_close_cycles() -> None:
    """200 connect/close cycles of one client: descriptors back at once, every
    DISCONNECT delivered on both sides."""
    server_log, client_log = EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*CONN_KEYS)) as server,
        TcpClient(evts=client_log.evts(*CONN_KEYS)) as client,
    ):
        before = open_fds()
        for _ in range(CYCLES):
            await client.connect(*server.host)
            await client.close()
        await server_log.wait_for("DISCONNECT", CYCLES)
        assert server.clients == {}
        await quiesce(sockets)  # a server side closes its socket after its DISCONNECT
        check_clean(before)
    assert client_log.count("CONNECTED") == CYCLES == client_log.count("DISCONNECT")
    assert server_log.count("CONNECTED") == CYCLES == server_log.count("DISCONNECT")


async def test_client_explicit_connect_close_cycles() -> None:
    """200 connect/close cycles of one client never entered with ``async with``
    (where the binding allows it): after each close, nothing of it is left."""
    server_log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(*CONN_KEYS)) as server:
        before, socks = open_fds(), sockets()
        client = TcpClient()
        try:
            await client.connect(*server.host)
        except RuntimeError as exc:
            if "async with" not in str(exc):
                raise
            pytest.skip(f"connect() needs `async with` in this binding: {exc}")
        await client.close()
        for _ in range(CYCLES):
            await client.connect(*server.host)
            await client.close()
            assert stray_tasks() == []
            assert sockets() <= socks + 1  # ours is closed; the server's side may lag
        await server_log.wait_for("DISCONNECT", CYCLES + 1)
        await quiesce(sockets)  # a server side closes its socket after its DISCONNECT
        check_clean(before)


async def test_client_objects_cycles() -> None:
    """200 fresh ``async with TcpClient`` objects, each connecting once."""
    server_log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(*CONN_KEYS)) as server:
        before = open_fds()
        for _ in range(CYCLES):
            async with TcpClient() as client:
                await client.connect(*server.host)
        await server_log.wait_for("DISCONNECT", CYCLES)
        assert server.clients == {}
        await quiesce(sockets)  # a server side closes its socket after its DISCONNECT
        check_clean(before)


async def test_multicast_cycles() -> None:
    """100 receiver start/stop and sender send/close cycles leave nothing."""
    before = open_fds()
    log = EventLog()
    for _ in range(CYCLES // 2):
        receiver = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
        receiver.joinGroup("239.255.213.7")
        async with (
            receiver,
            CastSender(evts=log.evts(EventTypes.SENDED), ttl=0, interface="127.0.0.1") as cast,
        ):
            await cast.send(("239.255.213.7", receiver.host[1]), "x")
    assert log.count("SENDED") == CYCLES // 2
    check_clean(before)


async def test_the_leak_check_sees_a_stray_task_and_a_descriptor() -> None:
    """The suite's check finds a task left running and a socket left open."""
    before = open_fds()
    release = asyncio.Event()
    stray = asyncio.ensure_future(release.wait())
    with pytest.raises(AssertionError, match="tasks left behind"):
        check_clean(before)
    release.set()
    await within(stray)
    check_clean(before)
    with socket.socket() as sock:
        with pytest.raises(AssertionError, match="file descriptors leaked"):
            check_clean(before)
        assert list(new_fds(before)) == [sock.fileno()]
    check_clean(before)
    await cancel_and_wait(stray)


async def test_the_leak_check_hears_asyncio_complain(no_leaks: Complaints) -> None:
    """What asyncio logs (here an exception in a loop callback, as a protocol method
    that raised would give) is collected, and fails the test at its end."""

    def broken() -> None:
        raise RuntimeError("raised in a loop callback")

    called = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_soon(broken)
    loop.call_soon(called.set)
    await within(called.wait())
    assert len(no_leaks.messages) == 1 and "raised in a loop callback" in no_leaks.messages[0]
    no_leaks.messages.clear()
