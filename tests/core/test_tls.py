"""TLS in the core (SPEC section 10): the HANDSHAKING state, its deadline, TlsInfo.

The core runs no TLS: a binding reports that a handshake began, succeeded or
failed, and hands the core the time; these tests are those reports.
"""

from __future__ import annotations

import logging

import attrs
import pytest
from jfsocket.core import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    Connected,
    Connection,
    ConnectionOptions,
    ConnectionState,
    ErrorCode,
    LocalProtocolError,
    SocketError,
    TlsInfo,
)

HOST = ("127.0.0.1", 40000)
REMOTE = ("127.0.0.1", 50000)
INFO = TlsInfo(
    version="TLSv1.3",
    cipher="TLS_AES_256_GCM_SHA384",
    peer_certificate={"subject": ((("commonName", "x"),),)},
    alpn_protocol=None,
)


def dialing(**options: object) -> Connection:
    conn = Connection("me", ConnectionOptions(**options))
    conn.start_connect()
    conn.handshake_started(HOST, REMOTE, now=100.0)
    return conn


def accepted(**options: object) -> Connection:
    conn = Connection("me", ConnectionOptions(**options))
    conn.handshake_started(HOST, REMOTE, now=100.0)
    return conn


def test_connected_waits_for_the_handshake() -> None:
    """HANDSHAKING refuses sends (1001) and connects (1000); CONNECTED comes with the record."""
    conn = dialing()
    assert conn.state is ConnectionState.HANDSHAKING and conn.handshaking
    assert not conn.is_open and not conn.live and not conn.closed
    assert (conn.host, conn.remote) == (HOST, REMOTE)
    with pytest.raises(SocketError) as refused:
        conn.send(b"early", 100.0)
    assert refused.value.errno == ErrorCode.NOT_CONNECTED
    with pytest.raises(SocketError) as busy:
        conn.start_connect()
    assert busy.value.errno == ErrorCode.CONNECTION_EXISTS
    with pytest.raises(SocketError):
        conn.shutdown()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"plaintext before the handshake")
    events = conn.connection_made(HOST, REMOTE, now=101.0, tls=INFO)
    assert events == [Connected(source="me", host=HOST, remote=REMOTE)]
    assert conn.tls is INFO and conn.is_open and conn.timer() is None


def test_the_deadline_is_handshake_timeout_after_it_began() -> None:
    """timer() is the deadline; handle_timer before it does nothing, at it fails the handshake."""
    conn = dialing(handshake_timeout=2.5)
    assert conn.timer() == 102.5
    assert conn.handle_timer(102.0) == [] and conn.handshaking
    assert conn.handle_timer(102.5) == []
    assert not conn.handshaking and conn.state is ConnectionState.IDLE  # reusable
    error = conn.handshake_failed(ConnectionAbortedError("stopped by the binding"))
    assert error.errno == ErrorCode.CONNECT_FAILED
    assert isinstance(error.err, SocketError) and error.err.errno == ErrorCode.TIMED_OUT
    conn.start_connect()  # a dialing client may try again


def test_the_default_deadline_and_no_deadline() -> None:
    assert dialing().timer() == 100.0 + DEFAULT_HANDSHAKE_TIMEOUT == 110.0
    endless = dialing(handshake_timeout=None)
    assert endless.timer() is None and endless.handle_timer(1e9) == [] and endless.handshaking
    conn = Connection("me", ConnectionOptions(handshake_timeout=None))
    conn.handshake_started(HOST, REMOTE)  # no deadline: no time needed


def test_a_deadline_needs_the_time() -> None:
    conn = Connection("me")
    with pytest.raises(LocalProtocolError):
        conn.handshake_started(HOST, REMOTE)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
def test_handshake_timeout_is_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="handshake_timeout"):
        ConnectionOptions(handshake_timeout=bad)


def test_handshake_timeout_type() -> None:
    with pytest.raises(TypeError, match="handshake_timeout"):
        ConnectionOptions(handshake_timeout="10")
    assert ConnectionOptions(handshake_timeout=3).copy().handshake_timeout == 3.0


def test_a_dialing_client_that_fails_is_idle_with_the_tls_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """connect raises 1006 around the error; no warning (the caller gets the error)."""
    conn = dialing()
    cause = ValueError("certificate verify failed")
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        error = conn.handshake_failed(cause)
    assert error.errno == ErrorCode.CONNECT_FAILED and error.err is cause
    assert conn.state is ConnectionState.IDLE and not caplog.records


def test_an_accepted_one_that_fails_is_closed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """No event, closed, one warning naming the remote and the reason."""
    conn = accepted()
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        conn.handshake_failed(ValueError("wrong version number"))
        conn.handshake_failed(ValueError("reported twice"))  # once closed: nothing more
    assert conn.closed and conn.state is ConnectionState.CLOSED
    assert [r.getMessage() for r in caplog.records] == [
        "TLS handshake with 127.0.0.1:50000 failed: ValueError: wrong version number"
    ]


def test_an_accepted_one_that_is_late_is_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = Connection("me", ConnectionOptions(handshake_timeout=1.0))
    conn.handshake_started(HOST, ("::1", 5), now=0.0)
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        assert conn.handle_timer(1.0) == []
    assert conn.closed
    assert [r.getMessage() for r in caplog.records] == [
        "TLS handshake with [::1]:5 failed: not done within 1 s"
    ]
    error = conn.handshake_failed(OSError())  # the binding's stopped handshake: no second word
    assert isinstance(error.err, SocketError) and error.err.errno == ErrorCode.TIMED_OUT
    assert len(caplog.records) == 1


def test_a_reason_without_text_is_its_type(caplog: pytest.LogCaptureFixture) -> None:
    conn = accepted()
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        conn.handshake_failed(ConnectionResetError())
    assert caplog.records[0].getMessage().endswith("failed: ConnectionResetError")


def test_close_while_handshaking() -> None:
    """A client's connect is abandoned (1006); an accepted one just closes; no events."""
    conn = dialing()
    assert conn.close() == [] and conn.closed
    error = conn.handshake_failed(OSError("shut down under the handshake"))
    assert error.errno == ErrorCode.CONNECT_FAILED
    conn.start_connect()
    server_side = accepted()
    assert server_side.close(abort=True) == [] and server_side.closed
    assert server_side.handshake_failed(OSError()).errno == ErrorCode.CONNECT_FAILED


def test_close_after_a_dial_before_the_handshake_is_reported() -> None:
    """close() while connecting: the handshake that would begin is refused with 1006."""
    conn = Connection("me")
    conn.start_connect()
    conn.close()
    with pytest.raises(SocketError) as refused:
        conn.handshake_started(HOST, REMOTE, now=0.0)
    assert refused.value.errno == ErrorCode.CONNECT_FAILED
    attempt = conn.start_connect()
    conn.handshake_started(HOST, REMOTE, now=0.0, attempt=attempt)
    assert conn.handshake_failed(OSError(), attempt=attempt - 1).errno == 1006  # a stale one
    assert conn.handshaking


def test_handshake_done_uses_the_addresses_it_began_with() -> None:
    """handshake_done: CONNECTED between the addresses given when it began; closed
    or late meanwhile, 1006 (the binding closes the socket)."""
    conn = accepted()
    assert conn.handshake_done(INFO, now=101.0) == [
        Connected(source="me", host=HOST, remote=REMOTE)
    ]
    assert conn.tls is INFO and conn.is_open
    closed = accepted()
    closed.close()
    with pytest.raises(SocketError) as refused:
        closed.handshake_done(INFO, now=101.0)
    assert refused.value.errno == ErrorCode.CONNECT_FAILED
    late = dialing()
    late.handle_timer(200.0)
    with pytest.raises(SocketError):
        late.handshake_done(INFO, now=200.0)
    abandoned = dialing()
    abandoned.close()
    with pytest.raises(SocketError):
        abandoned.handshake_done(INFO, now=101.0)


def test_a_new_connection_forgets_the_last_record() -> None:
    conn = dialing()
    conn.connection_made(HOST, REMOTE, now=100.0, tls=INFO)
    conn.close()
    conn.start_connect()
    conn.connection_made(HOST, REMOTE, now=200.0)
    assert conn.tls is None


def test_tls_info_is_frozen_and_checked() -> None:
    """A frozen record; the certificate is copied; wrong types are refused."""
    cert = {"subject": ()}
    info = TlsInfo(version="TLSv1.2", cipher="X", peer_certificate=cert, alpn_protocol="h2")
    cert["issuer"] = ()
    assert info.peer_certificate == {"subject": ()}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.version = "TLSv1.3"  # type: ignore[misc]
    assert hash(info) == hash(attrs.evolve(info, peer_certificate=None))
    assert TlsInfo(version=None, cipher=None, peer_certificate=None, alpn_protocol=None)
    with pytest.raises(TypeError, match="mapping"):
        TlsInfo(version="v", cipher="c", peer_certificate=[1], alpn_protocol=None)
    with pytest.raises(TypeError, match="str"):
        TlsInfo(version=1, cipher="c", peer_certificate=None, alpn_protocol=None)
