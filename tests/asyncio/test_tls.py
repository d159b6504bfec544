"""TLS handshakes cancelled (SPEC section 10 and section 6's "cancellation never
leaves a half-open object or a stray task"), on asyncio and uvloop.

The autouse leak check (tests/asyncio/conftest.py) holds every test here to
no task and no descriptor left.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from jfsocket.bindings.asyncio import SocketError, TcpClient, TcpServer

from ..certs import Certs
from .helpers import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    cancel_after,
    quiesce,
    raw_listener,
    read_to_eof,
    within,
)

pytestmark = pytest.mark.asyncio
#: Most loop iterations a cancel-at-every-step test tries before it must be done.
MAX_STEPS = 400
CERTS = Certs()


async def test_connect_cancelled_mid_handshake() -> None:
    """connect to a peer that accepts and never answers the ClientHello, cancelled:
    CancelledError, not connected, no event; the client then connects over TLS."""
    log = EventLog()
    with raw_listener() as listener:
        async with (
            TcpServer(LOCALHOST, 0, ssl=CERTS.server_context()) as server,
            TcpClient(evts=log.evts(*CLIENT_KEYS), ssl=CERTS.client_context()) as client,
        ):
            connecting = asyncio.ensure_future(client.connect(*listener.getsockname()))
            await quiesce(lambda: connecting.done())
            assert not connecting.done(), "a handshake with a silent peer finished"
            connecting.cancel()
            await within(asyncio.wait({connecting}))
            assert connecting.cancelled()
            assert not client.isAlive and client.tls is None and log.names() == []
            await within(client.connect(*server.host))
            assert client.isAlive and client.tls is not None
            assert log.names() == ["CONNECTED"]
    assert log.names() == ["CONNECTED", "DISCONNECT"]


async def test_connect_cancelled_at_every_step() -> None:
    """A TLS connect cancelled after 0, 1, 2, ... loop iterations: each time either
    cancelled with no event, or connected (CONNECTED once) and then closed; the
    server sees a CONNECTED only for a connection that completed."""
    server_log = EventLog()
    async with TcpServer(
        LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS), ssl=CERTS.server_context()
    ) as server:
        for steps in range(MAX_STEPS):
            log = EventLog()
            async with TcpClient(evts=log.evts(*CLIENT_KEYS), ssl=CERTS.client_context()) as client:
                outcome = await cancel_after(steps, lambda: client.connect(*server.host))
                if not outcome.completed:
                    assert log.names() == [] and not client.isAlive
                    continue
                assert log.names() == ["CONNECTED"]
            assert log.names() == ["CONNECTED", "DISCONNECT"]
            break
        else:
            pytest.fail(f"a TLS connect did not complete within {MAX_STEPS} loop iterations")
    names = server_log.names()
    assert names.count("CONNECTED") == names.count("DISCONNECT")


async def test_server_left_while_a_peer_handshakes() -> None:
    """Leaving the server's block with a peer mid-handshake: the peer is closed,
    no event for it, no task left."""
    log = EventLog()
    async with TcpServer(
        LOCALHOST, 0, evts=log.evts(*SERVER_KEYS), ssl=CERTS.server_context()
    ) as server:
        peer = socket.create_connection(server.host)
        peer.setblocking(False)
        peer.send(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        await quiesce(lambda: log.names())
    try:
        assert await read_to_eof(peer) == b""  # an EOF, or an RST (it had bytes unread)
    finally:
        peer.close()
    assert log.names() == ["STARTED", "STOPED"]


async def test_a_deadline_woken_early_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timer that fires before its time (uvloop's do, by up to half a millisecond)
    must not cost the handshake its deadline: the core, asked too early, is
    asked again at it; 1006 with 1008, well before asyncio's own later timeout."""
    loop = asyncio.get_running_loop()
    call_at = loop.call_at

    def early(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        return call_at(when - 0.05, callback, *args, context=context)

    try:
        monkeypatch.setattr(loop, "call_at", early)
    except AttributeError:
        pytest.skip("this loop's methods cannot be replaced (uvloop's)")
    with raw_listener() as listener:
        async with TcpClient(ssl=CERTS.client_context(), handshake_timeout=0.3) as client:
            began = loop.time()
            with pytest.raises(SocketError) as caught:
                await within(client.connect(*listener.getsockname()))
            assert loop.time() - began < 1.0, "the core's deadline did not end the handshake"
    assert caught.value.errno == 1006
    assert isinstance(caught.value.err, SocketError) and caught.value.err.errno == 1008
