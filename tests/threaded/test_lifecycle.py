"""The threaded TcpServer's ``with``: entering starts nothing, leaving stops it.

Everything else about lifecycles is in ``tests/conformance``.
"""

from __future__ import annotations

import pytest
from jfsocket.bindings.threaded import TcpServer

from .conftest import SERVER_KEYS, EventLog


def test_server_context_manager_stops_on_exit() -> None:
    """``with TcpServer(...) as s: s.start()`` stops it on exit (STOPED fired)."""
    log = EventLog()
    with TcpServer("127.0.0.1", 0, log.evts(SERVER_KEYS)) as server:
        assert not server.isAlive  # entering starts nothing
        server.start()
        assert server.isAlive
    assert not server.isAlive
    assert log.names() == ["onStarted", "onStoped"]


def test_server_context_manager_stops_on_error() -> None:
    """Leaving the ``with`` block by an exception stops the server too."""
    log = EventLog()
    server = TcpServer("127.0.0.1", 0, log.evts(SERVER_KEYS))

    def fail_inside() -> None:
        with server:
            server.start()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not server.isAlive
    assert log.names() == ["onStarted", "onStoped"]
