"""TLS handshakes cancelled on trio (SPEC section 10, and section 6's
"cancellation never leaves a half-open object or a stray task").

The autouse leak check (tests/trio/conftest.py) holds every test here to no
task and no descriptor left.
"""

from __future__ import annotations

import contextlib
import socket

import pytest
import trio
from jfsocket.bindings.trio import TcpClient, TcpServer

from ..certs import Certs
from .conftest import CLIENT_KEYS, LOCALHOST, SERVER_KEYS, EventLog, blocked, raw_listener

pytestmark = pytest.mark.trio
CERTS = Certs()


async def test_connect_cancelled_mid_handshake() -> None:
    """connect to a peer that accepts and never answers the ClientHello, cancelled
    once everything is blocked: not connected, no event, no task; the client then
    connects over TLS."""
    log = EventLog()
    async with (
        raw_listener() as listener,
        TcpServer(LOCALHOST, 0, ssl=CERTS.server_context()) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS), ssl=CERTS.client_context()) as client,
    ):
        with trio.CancelScope() as scope:

            async def cancel_when_stuck() -> None:
                await blocked()
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_when_stuck)
                await client.connect(*listener.getsockname())
                pytest.fail("a handshake with a silent peer finished")
        assert scope.cancelled_caught
        assert not client.isAlive and client.tls is None and log.names() == []
        with trio.fail_after(5):
            await client.connect(*server.host)
        assert client.isAlive and client.tls is not None and log.names() == ["CONNECTED"]
    assert log.names() == ["CONNECTED", "DISCONNECT"]


@pytest.mark.parametrize("checkpoints", range(12))
async def test_connect_cancelled_after_some_checkpoints(checkpoints: int) -> None:
    """A TLS connect cancelled after n scheduler turns: either cancelled with no
    event, or connected once; the server's side matches (no CONNECTED without
    its DISCONNECT once everything is closed)."""
    server_log, log = EventLog(), EventLog()
    async with (
        TcpServer(
            LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS), ssl=CERTS.server_context()
        ) as server,
        TcpClient(evts=log.evts(*CLIENT_KEYS), ssl=CERTS.client_context()) as client,
    ):
        with trio.CancelScope() as scope:

            async def cancel_later() -> None:
                for _ in range(checkpoints):
                    await trio.lowlevel.checkpoint()
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_later)
                await client.connect(*server.host)
        if client.isAlive:
            assert log.names() == ["CONNECTED"]
        else:
            assert log.names() == []
    names = server_log.names()
    assert names.count("CONNECTED") == names.count("DISCONNECT")


async def test_server_left_while_a_peer_handshakes() -> None:
    """Leaving the server's block with a peer mid-handshake: the peer is closed,
    no event for it, no task left."""
    log = EventLog()
    with socket.socket() as peer:
        async with TcpServer(
            LOCALHOST, 0, evts=log.evts(*SERVER_KEYS), ssl=CERTS.server_context()
        ) as server:
            peer.connect(server.host)
            peer.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
            await blocked()
        peer.settimeout(5)
        # Closed: an EOF, or an RST (it had bytes it had not read).
        with contextlib.suppress(ConnectionResetError):
            assert peer.recv(100) == b""
    assert log.names() == ["STARTED", "STOPED"]
