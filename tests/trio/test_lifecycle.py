"""TcpServer's ``async with`` under trio: its tasks, and the RuntimeError without it.

The lifecycle every binding shares is in ``tests/conformance``.
"""

from __future__ import annotations

import pytest
from jfsocket.bindings.trio import TcpServer

from .conftest import LOCALHOST, SERVER_KEYS, EventLog, jfsocket_tasks

pytestmark = pytest.mark.trio


async def test_async_with_starts_and_resolves_port() -> None:
    """Entering starts the server: STARTED has run, ``host`` has the real port."""
    log = EventLog()
    async with TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS)) as server:
        assert log.names() == ["STARTED"]
        assert log.args("STARTED") == [(server,)]
        assert server.isAlive
        ip, port = server.host
        assert ip == LOCALHOST and port > 0
        assert jfsocket_tasks(), "a listening server has its accept task"
    assert log.names() == ["STARTED", "STOPED"]
    assert log.args("STOPED") == [(server,)]
    assert not server.isAlive


async def test_start_without_async_with_is_runtime_error() -> None:
    """``start()`` outside ``async with``: RuntimeError naming what to do."""
    server = TcpServer(LOCALHOST, 0)
    with pytest.raises(RuntimeError, match="async with"):
        await server.start()
    assert not server.isAlive
