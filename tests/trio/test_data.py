"""``await send()`` under trio returns once SENDED has run (SPEC section 6).

Everything else about data is in ``tests/conformance``.
"""

from __future__ import annotations

import pytest

from .conftest import EventLog, connected

pytestmark = pytest.mark.trio


async def test_send_returns_after_sended_ran() -> None:
    """``await send()`` from outside callbacks returns once SENDED ran (even async)."""
    client_log, server_log = EventLog(), EventLog()
    async with connected(server_log, client_log, use_async=True) as (server, client, side):
        for i in range(5):
            data = f"message {i}"
            await client.send(data)
            assert client_log.data("SENDED")[-1] is data
            await side.send(data)
            assert server_log.data("SENDED")[-1] is data
        await server.send("to all")
        assert server_log.data("SENDED")[-1] == "to all"
