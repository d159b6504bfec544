"""Scenarios run in a child interpreter: ``python -m tests.asyncio.isolated LOOP NAME``.

Calls made from inside callbacks can deadlock, and a binding that protects its
cleanup from cancellation (as it should) then cannot be interrupted: leaving
the ``async with`` would hang the whole test run.  So these scenarios run in
their own process, on the loop named ``asyncio`` or ``uvloop``.  Each waits for
its expected outcome at most :data:`WAIT` seconds (yielding to the loop, no
sleeping); if it is not there by then it reports on stderr and leaves with
``os._exit(1)``, skipping the exits that would hang.  Exit status 0 means it
went right.  Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from jfsocket.bindings.asyncio import CastReceiver, EventTypes, TcpClient, TcpServer

from .helpers import (
    CLIENT_KEYS,
    RECEIVER_KEYS,
    SERVER_KEYS,
    EventLog,
    cancel_after,
    new_fds,
    one_disconnect_per_connected,
    open_fds,
    per_connection_pairs,
    quiesce,
    settled,
    stray_tasks,
    warm_up,
)

E = EventTypes
T = TypeVar("T")
LOCALHOST = "127.0.0.1"
GROUP = "239.255.91.2"
#: The most seconds a scenario waits for what must happen.
WAIT = 5.0
#: Most loop iterations a cancel-at-every-step scenario tries before it must be done.
MAX_STEPS = 400


def fail(message: str) -> None:
    """Report *message* and leave at once, without running any cleanup."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


async def expect(condition: Callable[[], bool], message: Callable[[], str]) -> None:
    """Yield to the loop until *condition()* holds; after :data:`WAIT` s, :func:`fail`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            fail(message())
        await asyncio.sleep(0)


async def finish(coro: Coroutine[Any, Any, T], what: Callable[[], str]) -> T:
    """Run *coro* in a task of its own and return its result; if it has not ended
    after :data:`WAIT` s, :func:`fail` (without waiting for it any longer)."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=WAIT)
    if not done:
        fail(f"hangs: {what()}")
    return task.result()


async def mutual_close() -> None:
    """Two server-side clients, each closing the other from its RECEIVED callback
    while both callbacks run."""
    entered: list[TcpClient] = []
    both = asyncio.Event()
    disconnects: list[object] = []

    async def close_other(side: TcpClient, data: object) -> None:
        entered.append(side)
        if len(entered) == 2:
            both.set()
        await both.wait()  # both callbacks are running now
        for other in server.clients.values():
            if other is not side:
                await other.close()

    server = TcpServer(
        LOCALHOST,
        0,
        evts={E.RECEIVED: close_other, E.DISCONNECT: lambda *args: disconnects.append(args)},
    )
    async with server, TcpClient() as one, TcpClient() as two:
        await one.connect(*server.host)
        await two.connect(*server.host)
        await one.send("1")
        await two.send("2")
        await expect(
            lambda: len(disconnects) == 2,
            lambda: f"deadlock: {len(entered)} callbacks entered, {len(disconnects)} DISCONNECT",
        )


async def reconnect_from_disconnect() -> None:
    """The server drops us; our DISCONNECT callback connects again."""
    names: list[str] = []
    accepted: list[object] = []

    async def reconnect(client: TcpClient, host: object, remote: object) -> None:
        names.append("DISCONNECT")
        if names.count("DISCONNECT") == 1:
            await client.connect(*server.host)
            names.append("reconnected")

    server = TcpServer(LOCALHOST, 0, evts={E.CONNECTED: lambda *args: accepted.append(args)})
    client = TcpClient(
        evts={E.CONNECTED: lambda *args: names.append("CONNECTED"), E.DISCONNECT: reconnect}
    )
    async with server, client:
        await client.connect(*server.host)
        await expect(lambda: len(accepted) == 1, lambda: "the server never accepted")
        await server.close()
        await expect(
            lambda: "reconnected" in names and names.count("CONNECTED") == 2 and client.isAlive,
            lambda: f"deadlock: connect from the DISCONNECT callback never returned: {names}",
        )
    # From inside its own callback, connect() returns before the new CONNECTED
    # runs: that runs right after the callback (callbacks never nest).
    if names != ["CONNECTED", "DISCONNECT", "reconnected", "CONNECTED", "DISCONNECT"]:
        fail(f"wrong events: {names}")


async def close_from_connected() -> None:
    """The client closes itself from its CONNECTED callback: connect() returns,
    the DISCONNECT runs after that callback."""
    names: list[str] = []

    async def close(client: TcpClient, host: object, remote: object) -> None:
        names.append("CONNECTED")
        await client.close()
        names.append("closed")

    client = TcpClient(
        evts={E.CONNECTED: close, E.DISCONNECT: lambda *a: names.append("DISCONNECT")}
    )
    async with TcpServer(LOCALHOST, 0) as server, client:
        connecting = asyncio.ensure_future(client.connect(*server.host))
        await expect(
            lambda: connecting.done() and "DISCONNECT" in names,
            lambda: f"deadlock: connect done: {connecting.done()}, events: {names}",
        )
        connecting.result()
        if client.isAlive:
            fail("still connected after closing from CONNECTED")
    if names != ["CONNECTED", "closed", "DISCONNECT"]:
        fail(f"wrong events: {names}")


async def stop_from_connected() -> None:
    """A server stops itself from a server-side CONNECTED callback: stop() returns,
    then that connection's DISCONNECT and STOPED."""
    names: list[str] = []
    gone: list[object] = []

    async def stop(side: TcpClient, host: object, remote: object) -> None:
        names.append("CONNECTED")
        await server.stop()
        names.append("stopped")

    server = TcpServer(
        LOCALHOST,
        0,
        evts={
            E.CONNECTED: stop,
            E.DISCONNECT: lambda *a: names.append("DISCONNECT"),
            E.STOPED: lambda *a: names.append("STOPED"),
        },
    )
    async with server, TcpClient(evts={E.DISCONNECT: lambda *a: gone.append(a)}) as client:
        await client.connect(*server.host)
        await expect(
            lambda: "STOPED" in names and len(gone) == 1,
            lambda: f"deadlock: server events {names}, client DISCONNECT {len(gone)}",
        )
        if server.isAlive or server.clients:
            fail(f"not stopped: alive {server.isAlive}, clients {server.clients}")
    if names != ["CONNECTED", "stopped", "DISCONNECT", "STOPED"]:
        fail(f"wrong events: {names}")


async def reconnect_after_peer_close() -> None:
    """Up to 50 times: the peer closes, and as soon as our DISCONNECT callback has
    run we connect again (from the task that waited for it, not from a callback)."""
    loop = asyncio.get_running_loop()
    with socket.socket() as listener:
        listener.bind((LOCALHOST, 0))
        listener.listen(64)
        listener.setblocking(False)
        address = listener.getsockname()
        for attempt in range(50):
            gone = asyncio.Event()
            client = TcpClient(evts={E.DISCONNECT: lambda *args, done=gone: done.set()})
            async with client:
                await client.connect(*address)
                peer, _ = await loop.sock_accept(listener)
                peer.close()
                await gone.wait()
                try:
                    await client.connect(*address)
                except BaseException as exc:
                    fail(f"attempt {attempt}: reconnect raised {exc!r}")
                if not client.isAlive:
                    fail(f"attempt {attempt}: not connected after connect returned")
                again, _ = await loop.sock_accept(listener)
                again.close()


async def connect_cancelled_at_every_step() -> None:
    """A connect cancelled after n loop iterations, for every n until it completes
    first: IDLE with no event, IDLE after CONNECTED and DISCONNECT (the connection
    was made, and the cancellation closed it), or connected with one CONNECTED;
    either way the client connects again and closes with one DISCONNECT, without
    hanging; the server sees one DISCONNECT per CONNECTED."""
    server_log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=server_log.evts(E.CONNECTED, E.DISCONNECT)) as server:
        for steps in range(MAX_STEPS):
            log = EventLog()
            state: list[str] = []

            async def attempt(
                log: EventLog = log, state: list[str] = state, steps: int = steps
            ) -> bool:
                async with TcpClient(evts=log.evts(*CLIENT_KEYS)) as client:
                    connect = functools.partial(client.connect, *server.host)
                    outcome = await cancel_after(steps, connect)
                    await quiesce(log.names)
                    state.append(f"after the cancel: alive={client.isAlive} {log.names()}")
                    if client.isAlive:
                        assert log.names() == ["CONNECTED"], state
                    else:
                        # Never connected; or connected, and closed by the cancellation.
                        assert log.names() in ([], ["CONNECTED", "DISCONNECT"]), state
                        await client.connect(*server.host)
                    assert client.isAlive
                    state.append("leaving")
                return outcome.completed

            def describe(steps: int = steps, state: list[str] = state) -> str:
                return f"step {steps}: {state}"

            completed = await finish(attempt(), describe)
            assert log.names()[-2:] == ["CONNECTED", "DISCONNECT"], (steps, log.names())
            one_disconnect_per_connected(log)
            if completed:
                break
        else:
            fail(f"connect never completed within {MAX_STEPS} steps")

        def all_gone() -> bool:
            count = server_log.count("DISCONNECT")
            return count > steps and count == server_log.count("CONNECTED")

        await server_log.wait_for(all_gone)
    per_connection_pairs(server_log)


async def lifecycle_cancelled_at_every_step() -> None:
    """Server and client through start, connect, send both ways and exit, the task
    cancelled after n iterations for every n until it completes: after each, no
    task and no descriptor left, nothing alive, and each log consistent."""
    for steps in range(MAX_STEPS):
        server_log, client_log = EventLog(), EventLog()
        objects: list[TcpServer | TcpClient] = []
        data = "one"

        async def lifecycle(
            server_log: EventLog = server_log,
            client_log: EventLog = client_log,
            objects: list[TcpServer | TcpClient] = objects,
            data: str = data,
        ) -> None:
            server = TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS))
            client = TcpClient(evts=client_log.evts(*CLIENT_KEYS))
            objects += [server, client]
            async with server, client:
                await client.connect(*server.host)
                await client.send(data)
                await server_log.wait_for("RECEIVED")
                await server.send("two")
                await client_log.wait_for("RECEIVED")

        before = open_fds()

        def describe(
            steps: int = steps, server_log: EventLog = server_log, client_log: EventLog = client_log
        ) -> str:
            return f"step {steps}: server {server_log.names()}, client {client_log.names()}"

        outcome = await finish(cancel_after(steps, lifecycle), describe)
        assert stray_tasks() == [], (steps, stray_tasks())
        assert new_fds(before) == {}, (steps, new_fds(before))
        assert all(not obj.isAlive for obj in objects), steps
        one_disconnect_per_connected(client_log)
        per_connection_pairs(server_log)
        started = server_log.count("STARTED")
        assert started <= 1 and server_log.count("STOPED") == started, (steps, server_log.names())
        if started:
            assert server_log.names()[-1] == "STOPED", (steps, server_log.names())
        assert settled(client_log, data) <= 1
        if outcome.completed:
            assert client_log.names() == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
            break
    else:
        fail(f"the lifecycle never completed within {MAX_STEPS} steps")


async def receiver_start_and_stop_cancelled() -> None:
    """CastReceiver.stop cancelled after n iterations: it still stops (STOPED once);
    start cancelled: listening with STARTED, or neither, and no socket left open;
    then start/stop work as usual; after each round no task and no descriptor."""
    before = open_fds()
    for steps in range(1, MAX_STEPS):
        log = EventLog()
        receiver = CastReceiver(("0.0.0.0", 0), evts=log.evts(*RECEIVER_KEYS), interface=LOCALHOST)
        receiver.joinGroup(GROUP)

        async def round_trip(
            log: EventLog = log, receiver: CastReceiver = receiver, steps: int = steps
        ) -> bool:
            async with receiver:
                stopping = await cancel_after(steps, receiver.stop)
                assert not receiver.isAlive, steps
                await log.wait_for("STOPED")
                stopped = open_fds()
                starting = await cancel_after(steps, receiver.start)
                await quiesce(log.names)
                if not receiver.isAlive:
                    assert log.names() == ["STARTED", "STOPED"], (steps, log.names())
                    leaked = new_fds(stopped)
                    assert not leaked, f"start cancelled after {steps} steps leaked {leaked}"
                    await receiver.start()
                assert receiver.isAlive and receiver.groups == [GROUP]
            return stopping.completed and starting.completed

        def describe(steps: int = steps, log: EventLog = log) -> str:
            return f"step {steps}: {log.names()}"

        completed = await finish(round_trip(), describe)
        assert log.names() == ["STARTED", "STOPED", "STARTED", "STOPED"], describe()
        assert stray_tasks() == [], (steps, stray_tasks())
        assert new_fds(before) == {}, (steps, new_fds(before))
        if completed:
            break
    else:
        fail(f"start/stop never completed within {MAX_STEPS} steps")


SCENARIOS: dict[str, Callable[[], Awaitable[None]]] = {
    "mutual_close": mutual_close,
    "reconnect_from_disconnect": reconnect_from_disconnect,
    "close_from_connected": close_from_connected,
    "stop_from_connected": stop_from_connected,
    "reconnect_after_peer_close": reconnect_after_peer_close,
    "connect_cancelled_at_every_step": connect_cancelled_at_every_step,
    "lifecycle_cancelled_at_every_step": lifecycle_cancelled_at_every_step,
    "receiver_start_and_stop_cancelled": receiver_start_and_stop_cancelled,
}


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A fresh loop of the kind *name* (``asyncio`` or ``uvloop``)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def main(loop_name: str, scenario: str) -> None:
    """Run *scenario* on a new loop of kind *loop_name*; any exception is a failure,
    reported without running the cleanup that could hang."""
    loop = new_loop(loop_name)
    try:
        loop.run_until_complete(warm_up())
        loop.run_until_complete(SCENARIOS[scenario]())
    except BaseException:
        fail(traceback.format_exc())
    loop.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
