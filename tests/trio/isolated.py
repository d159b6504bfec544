"""Scenarios run in a child interpreter: ``python -m tests.trio.isolated NAME``.

Some failures of the trio binding are hangs inside a shielded cancel scope:
no ``trio.fail_after`` can interrupt them, and leaving the ``async with`` would
hang the whole test run.  These scenarios run in their own process instead.
Each detects its failure without sleeping: after the action it waits until
every task is blocked (:func:`trio.testing.wait_all_tasks_blocked`); if the
expected outcome has not happened by then, nothing will ever make it happen,
so it reports on stderr and leaves with ``os._exit(1)`` (skipping the
``async with`` exits that would hang).  Exit status 0 means it went right.
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable

import trio
import trio.testing
from jfsocket.bindings.trio import EventTypes, TcpClient, TcpServer

E = EventTypes
LOCALHOST = "127.0.0.1"


def fail(message: str) -> None:
    """Report *message* and leave at once, without running any cleanup."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


async def mutual_close() -> None:
    """Two server-side clients, each closing the other from its RECEIVED callback."""
    entered: list[TcpClient] = []
    both = trio.Event()
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
        await trio.testing.wait_all_tasks_blocked()
        if len(disconnects) != 2:
            fail(f"deadlock: {len(entered)} callbacks entered, {len(disconnects)} DISCONNECT")


async def reconnect_from_disconnect() -> None:
    """The server drops us; our DISCONNECT callback connects again."""
    names: list[str] = []
    accepted = trio.Event()

    async def reconnect(client: TcpClient, host: object, remote: object) -> None:
        names.append("DISCONNECT")
        if names.count("DISCONNECT") == 1:
            await client.connect(*server.host)
            names.append("reconnected")

    server = TcpServer(LOCALHOST, 0, evts={E.CONNECTED: lambda *args: accepted.set()})
    client = TcpClient(
        evts={E.CONNECTED: lambda *args: names.append("CONNECTED"), E.DISCONNECT: reconnect}
    )
    async with server, client:
        await client.connect(*server.host)
        await accepted.wait()
        await server.close()
        await trio.testing.wait_all_tasks_blocked()
        if "reconnected" not in names or not client.isAlive:
            fail(f"deadlock: connect from the DISCONNECT callback never returned: {names}")
    # From inside its own callback, connect() returns before the new CONNECTED
    # runs: that runs right after the callback (callbacks never nest).
    if names != ["CONNECTED", "DISCONNECT", "reconnected", "CONNECTED", "DISCONNECT"]:
        fail(f"wrong events: {names}")


async def reconnect_after_peer_close() -> None:
    """Up to 50 times: the peer closes, and as soon as our DISCONNECT callback has
    run we connect again (from the task that waited for it, not from a callback)."""
    with trio.socket.socket() as listener:
        await listener.bind((LOCALHOST, 0))
        listener.listen(64)
        address = listener.getsockname()
        for attempt in range(50):
            gone = trio.Event()
            client = TcpClient(evts={E.DISCONNECT: lambda *args, done=gone: done.set()})
            async with client:
                await client.connect(*address)
                peer, _ = await listener.accept()
                peer.close()
                await gone.wait()
                try:
                    await client.connect(*address)
                except BaseException as exc:  # a crashed reader cancels us
                    fail(f"attempt {attempt}: reconnect raised {exc!r}")
                if not client.isAlive:
                    fail(f"attempt {attempt}: not connected after connect returned")
                again, _ = await listener.accept()
                again.close()


SCENARIOS: dict[str, Callable[[], Awaitable[None]]] = {
    "mutual_close": mutual_close,
    "reconnect_from_disconnect": reconnect_from_disconnect,
    "reconnect_after_peer_close": reconnect_after_peer_close,
}

if __name__ == "__main__":
    trio.run(SCENARIOS[sys.argv[1]])
