"""Slow ``async def`` callbacks under trio: one at a time, in order, with concurrent sends.

Arguments, binding rules and errors in callbacks are in ``tests/conformance``.
"""

from __future__ import annotations

import pytest
import trio
from jfsocket.bindings.trio import (
    EventTypes,
    TcpClient,
    TcpServer,
)
from jfsocket.core import Callback

from .conftest import LOCALHOST, SERVER_KEYS, EventLog

pytestmark = pytest.mark.trio
E = EventTypes


class CallbackBoomError(Exception):
    """Raised on purpose by a callback."""


async def test_async_callbacks_never_overlap_and_keep_order() -> None:
    """Slow async callbacks run one at a time, in order, even with sends meanwhile."""
    order: list[str] = []
    active: list[str] = []
    overlaps: list[tuple[str, str]] = []

    def slow(name: str) -> Callback:
        async def callback(*args: object) -> None:
            if active:
                overlaps.append((active[0], name))
            active.append(name)
            for _ in range(5):
                await trio.sleep(0)
            order.append(f"{name}:{args[1]}" if len(args) == 2 else name)
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
        async with trio.open_nursery() as nursery:
            for word in ("x", "y", "z"):
                nursery.start_soon(client.send, word)
        with trio.fail_after(5):
            while len(order) < 7:
                await trio.sleep(0)
    assert overlaps == []
    received = [o for o in order if o.startswith("R")]
    assert received == ["R:a", "R:b", "R:c"]
    assert order[0] == "C"
    assert sorted(o for o in order if o.startswith("S")) == ["S:x", "S:y", "S:z"]
