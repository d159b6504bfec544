"""Nothing leaks: many start/stop and connect/close cycles; the leak check itself."""

from __future__ import annotations

import pytest
import trio
from jfsocket.bindings.trio import CastReceiver, CastSender, EventTypes, TcpClient, TcpServer

from .conftest import LOCALHOST, EventLog, blocked, jfsocket_tasks, open_fds

pytestmark = pytest.mark.trio
CYCLES = 200
LOG_KEYS = (EventTypes.STARTED, EventTypes.STOPED)
CONN_KEYS = (EventTypes.CONNECTED, EventTypes.DISCONNECT)


async def test_server_start_stop_cycles() -> None:
    """200 ``async with TcpServer`` cycles: fds and tasks back to where they began."""
    before = open_fds()
    log = EventLog()
    with trio.fail_after(30):
        for _ in range(CYCLES):
            async with TcpServer(LOCALHOST, 0, evts=log.evts(*LOG_KEYS)):
                pass
    assert log.count("STARTED") == CYCLES and log.count("STOPED") == CYCLES
    assert open_fds() == before
    assert jfsocket_tasks() == []


async def test_server_stop_start_cycles_inside_one_block() -> None:
    """200 stop/start cycles of one server inside one ``async with``."""
    async with TcpServer(LOCALHOST, 0) as server:
        await blocked()
        before = open_fds()
        with trio.fail_after(30):
            for _ in range(CYCLES):
                await server.stop()
                await server.start()
        await blocked()
        assert open_fds() == before
        assert len(jfsocket_tasks()) == 1  # one accept loop, not 200


async def test_client_connect_close_cycles() -> None:
    """200 connect/close cycles of one client: fds back, every DISCONNECT delivered."""
    server_log, client_log = EventLog(), EventLog()
    async with (
        TcpServer(LOCALHOST, 0, evts=server_log.evts(*CONN_KEYS)) as server,
        TcpClient(evts=client_log.evts(*CONN_KEYS)) as client,
    ):
        await blocked()
        before = open_fds()
        with trio.fail_after(30):
            for _ in range(CYCLES):
                await client.connect(*server.host)
                await client.close()
            await server_log.wait_for("DISCONNECT", CYCLES)
        await blocked()
        assert open_fds() == before
        assert server.clients == {}
        assert len(jfsocket_tasks()) == 1  # the accept loop only
    assert client_log.count("CONNECTED") == CYCLES == client_log.count("DISCONNECT")
    assert server_log.count("CONNECTED") == CYCLES == server_log.count("DISCONNECT")


async def test_client_objects_cycles() -> None:
    """200 fresh ``async with TcpClient`` objects, each connecting once."""
    async with TcpServer(LOCALHOST, 0) as server:
        await blocked()
        before = open_fds()
        with trio.fail_after(30):
            for _ in range(CYCLES):
                async with TcpClient() as client:
                    await client.connect(*server.host)
        await blocked()
        assert open_fds() == before and server.clients == {}


async def test_multicast_cycles() -> None:
    """100 receiver start/stop and sender send/close cycles leave no fd."""
    before = open_fds()
    with trio.fail_after(30):
        for _ in range(CYCLES // 2):
            rec = CastReceiver(("0.0.0.0", 0), interface="127.0.0.1")
            rec.joinGroup("239.255.213.7")
            async with rec, CastSender(ttl=0, interface="127.0.0.1") as sender:
                await sender.send(("239.255.213.7", rec.host[1]), "x")
    assert open_fds() == before


async def test_the_task_check_sees_a_stray_task() -> None:
    """The suite's task check finds a jfsocket task even in trio's system nursery."""
    assert jfsocket_tasks() == []
    release, finished = trio.Event(), trio.Event()

    async def stray() -> None:
        try:
            await release.wait()
        finally:
            finished.set()

    trio.lowlevel.spawn_system_task(stray, name="jfsocket.stray")
    await blocked()
    assert [task.name for task in jfsocket_tasks()] == ["jfsocket.stray"]
    release.set()
    await finished.wait()
    await blocked()
    assert jfsocket_tasks() == []
