"""The connection state machine: every transition, refusal, and the send ledger."""

from __future__ import annotations

import errno
import logging

import pytest
from jfsocket.core import (
    Connected,
    Connection,
    ConnectionOptions,
    ConnectionState,
    Disconnected,
    LocalProtocolError,
    Received,
    SendFailed,
    Sent,
    SocketError,
)
from jfsocket.core.connection import _REFUSED, _TRANSITIONS, Input

HOST = ("127.0.0.1", 40000)
REMOTE = ("127.0.0.1", 50000)
S = ConnectionState


def state_of(conn: Connection) -> ConnectionState:
    """The state, read through a call so that mypy does not pin an earlier reading."""
    return conn.state


def open_conn(**options: object) -> Connection:
    """A connection that has fired CONNECTED."""
    conn = Connection("me", ConnectionOptions(**options))
    conn.start_connect()
    conn.connection_made(HOST, REMOTE)
    return conn


def test_client_lifecycle() -> None:
    """IDLE -> CONNECTING -> OPEN -> CLOSED, with CONNECTED and one DISCONNECT."""
    conn = Connection("me")
    assert conn.state is S.IDLE and not conn.is_open and not conn.closed
    conn.start_connect()
    assert state_of(conn) is S.CONNECTING
    assert conn.connection_made(HOST, REMOTE) == [Connected(source="me", host=HOST, remote=REMOTE)]
    assert conn.is_open and (conn.host, conn.remote) == (HOST, REMOTE)
    assert conn.close() == [Disconnected(source="me", host=HOST, remote=REMOTE)]
    assert conn.closed
    assert conn.close() == []
    assert conn.connection_lost(OSError()) == []
    assert conn.receive_eof() == []
    assert conn.receive_data(b"late") == []


def test_accepted_socket_opens_from_idle() -> None:
    """A server's connection is made without a connect."""
    conn = Connection("srv-side")
    assert conn.connection_made(HOST, REMOTE)[0].type.value == "onConnected"
    assert conn.is_open


def test_connect_refusals_are_1000() -> None:
    """connect while connecting, open (either way) or closing: SocketError 1000, no change."""
    conn = Connection("me")
    conn.start_connect()
    with pytest.raises(SocketError) as info:
        conn.start_connect()
    assert info.value.errno == 1000 and conn.state is S.CONNECTING
    conn.connection_made(HOST, REMOTE)
    with pytest.raises(SocketError, match="1000"):
        conn.start_connect()
    read_closed, write_closed = open_conn(), open_conn()
    read_closed.receive_eof()
    write_closed.shutdown()
    for half in (read_closed, write_closed):
        before = half.state
        with pytest.raises(SocketError, match="1000"):
            half.start_connect()
        assert half.state is before
    assert (read_closed.state, write_closed.state) == (S.READ_CLOSED, S.WRITE_CLOSED)
    conn.send(b"x")
    conn.close()
    assert state_of(conn) is S.CLOSING
    with pytest.raises(SocketError, match="1000"):
        conn.start_connect()


@pytest.mark.parametrize("state", [S.IDLE, S.CONNECTING, S.WRITE_CLOSED, S.CLOSING, S.CLOSED])
def test_send_refusals_are_1001(state: ConnectionState) -> None:
    """send unless OPEN or READ_CLOSED: SocketError 1001, no ticket, nothing changes."""
    conn = Connection("me")
    if state is not S.IDLE:
        conn.start_connect()
    if state in (S.WRITE_CLOSED, S.CLOSING, S.CLOSED):
        conn.connection_made(HOST, REMOTE)
        if state is not S.CLOSED:
            conn.send(b"keep")
        if state is S.WRITE_CLOSED:
            conn.shutdown()
        else:
            conn.close()
    assert conn.state is state
    pending = conn.pending
    with pytest.raises(SocketError) as info:
        conn.send("x")
    assert info.value.errno == 1001
    assert conn.state is state and conn.pending == pending


def test_connect_failure_is_1006_and_allows_a_retry() -> None:
    """A failed connect goes back to IDLE; the OS error is the inner error."""
    conn = Connection("me")
    conn.start_connect()
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    error = conn.connect_failed(refused)
    assert error.errno == 1006 and error.err is refused
    assert conn.state is S.IDLE
    conn.start_connect()
    assert conn.connection_made(HOST, REMOTE)


def test_close_while_connecting_aborts_the_connect() -> None:
    """close() during connect wins: the late socket is refused with 1006."""
    conn = Connection("me")
    conn.start_connect()
    assert conn.close() == []
    assert conn.closed
    with pytest.raises(SocketError) as info:
        conn.connection_made(HOST, REMOTE)
    assert info.value.errno == 1006
    assert conn.closed
    with pytest.raises(LocalProtocolError):  # the abort is reported once
        conn.connection_made(HOST, REMOTE)
    conn.start_connect()
    conn.close()
    assert conn.connect_failed(OSError()).errno == 1006  # the connect failed anyway
    with pytest.raises(LocalProtocolError):
        conn.connect_failed(OSError())


def test_a_late_writer_after_a_reconnect_is_ignored() -> None:
    """A settle for a ticket of the previous connection changes nothing, in any state."""
    conn = open_conn()
    ticket, _ = conn.send(b"x")
    assert [type(e) for e in conn.connection_lost(BrokenPipeError())] == [
        SendFailed,
        Disconnected,
    ]
    conn.start_connect()
    assert conn.sent(ticket) == []
    conn.connection_made(HOST, REMOTE)
    assert conn.send_failed(ticket, OSError()) == []
    with pytest.raises(LocalProtocolError):
        conn.sent(ticket + 1)  # never issued


def test_reconnect_after_close() -> None:
    """A client can connect again; the new connection has its own DISCONNECT."""
    conn = open_conn()
    conn.close()
    conn.start_connect()
    conn.connection_made(HOST, REMOTE)
    assert conn.receive_eof() == []
    assert [type(e) for e in conn.eof_dispatched()] == [Disconnected]


def test_send_returns_ticket_and_framed_bytes() -> None:
    """The ledger keeps the caller's object; the payload is encoded and framed."""
    conn = open_conn(framing="length")
    data = "héllo"
    ticket, payload = conn.send(data)
    assert payload == b"\x00\x00\x00\x06h\xc3\xa9llo"
    assert conn.pending == 1
    (event,) = conn.sent(ticket)
    assert event == Sent(source="me", data=data)
    assert event.data is data
    assert conn.pending == 0


def test_bad_data_changes_nothing() -> None:
    """TypeError/ValueError before any state change."""
    conn = open_conn(framing="line")
    with pytest.raises(TypeError, match="data"):
        conn.send(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="newline"):
        conn.send("a\nb")
    assert conn.pending == 0 and conn.is_open


def test_every_send_settles_exactly_once() -> None:
    """SENDED or SENDFAIL once; reports for settled tickets are refused while open."""
    conn = open_conn()
    t1, _ = conn.send(b"1")
    t2, _ = conn.send(b"2")
    assert [type(e) for e in conn.sent(t1)] == [Sent]
    boom = OSError("broken pipe")
    (failed,) = conn.send_failed(t2, boom)
    assert failed == SendFailed(source="me", data=b"2", error=boom)
    with pytest.raises(LocalProtocolError):
        conn.sent(t1)
    with pytest.raises(LocalProtocolError):
        conn.send_failed(t2, boom)
    with pytest.raises(LocalProtocolError):
        conn.sent(99)


def test_pending_sends_fail_before_the_one_disconnect() -> None:
    """The peer vanishes with data queued: SENDFAIL for each, then DISCONNECT."""
    conn = open_conn()
    t1, _ = conn.send(b"a")
    conn.send(b"b")
    reset = ConnectionResetError(errno.ECONNRESET, "reset")
    events = conn.connection_lost(reset)
    assert [type(e) for e in events] == [SendFailed, SendFailed, Disconnected]
    assert [e.data for e in events[:2]] == [b"a", b"b"]  # type: ignore[union-attr]
    cause = events[0].error  # type: ignore[union-attr]
    assert isinstance(cause, SocketError) and cause.errno == 1001 and cause.err is reset
    assert events[-1] == Disconnected(source="me", host=HOST, remote=REMOTE, error=reset)
    # A writer that finishes late is ignored: the send already failed.
    assert conn.sent(t1) == []
    assert conn.send_failed(t1, reset) == []


def test_graceful_close_waits_for_accepted_sends() -> None:
    """close() with sends in flight: CLOSING, then SENDED, then DISCONNECT."""
    conn = open_conn()
    t1, _ = conn.send(b"a")
    t2, _ = conn.send(b"b")
    assert conn.close() == []
    assert conn.state is S.CLOSING and not conn.closed
    assert conn.receive_data(b"ignored") == []
    assert conn.close() == []
    assert [type(e) for e in conn.sent(t1)] == [Sent]
    assert [type(e) for e in conn.send_failed(t2, OSError())] == [SendFailed, Disconnected]
    assert conn.closed


def test_closing_connection_lost_fails_the_rest() -> None:
    """A close that cannot flush (peer gone) still ends with exactly one DISCONNECT."""
    conn = open_conn()
    conn.send(b"a")
    conn.close()
    assert [type(e) for e in conn.receive_eof()] == [SendFailed, Disconnected]
    assert conn.connection_lost() == []


def test_receive_raw_str_and_bytes() -> None:
    """Raw framing: each read is one RECEIVED, str by default, bytes with encoding=None."""
    conn = open_conn()
    assert conn.receive_data(b"hi") == [Received(source="me", data="hi")]
    assert conn.receive_data(b"") == []
    conn = open_conn(encoding=None)
    assert conn.receive_data(b"\xff") == [Received(source="me", data=b"\xff")]


def test_split_character_at_eof_is_delivered_before_disconnect() -> None:
    """Nothing is lost at the end: undecodable tail bytes arrive surrogate-escaped,
    while the connection can still send; DISCONNECT comes once they were dispatched."""
    conn = open_conn()
    assert conn.receive_data(b"\xe4\xb8") == []
    assert conn.receive_eof() == [Received(source="me", data="\udce4\udcb8")]
    assert conn.state is S.READ_CLOSED and conn.is_open
    assert conn.eof_dispatched() == [Disconnected(source="me", host=HOST, remote=REMOTE)]
    assert conn.closed


def test_protocol_violation_closes_with_a_logged_error(caplog: pytest.LogCaptureFixture) -> None:
    """An oversized framed message: messages before it arrive, then DISCONNECT with the error."""
    conn = open_conn(framing="line", max_message_size=4)
    conn.send(b"q")
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        events = conn.receive_data(b"ok\ntoo long\n")
    # The line that was whole before the bad one still arrives.
    assert [type(e) for e in events] == [Received, SendFailed, Disconnected]
    assert events[0] == Received(source="me", data="ok")
    disconnect = events[-1]
    assert isinstance(disconnect, Disconnected)
    assert disconnect.error is not None and "max_message_size" in str(disconnect.error)
    assert conn.closed
    assert any("max_message_size" in r.getMessage() for r in caplog.records)


def test_length_stream_cut_at_eof_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """EOF inside a length-prefixed message: DISCONNECT carries the protocol error."""
    conn = open_conn(framing="length")
    assert conn.receive_data(b"\x00\x00\x00\x09abc") == []
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        (event,) = conn.receive_eof()
    assert isinstance(event, Disconnected) and event.error is not None
    assert "pending" in caplog.text


def test_binding_inputs_out_of_order_are_local_protocol_errors() -> None:
    """A binding that feeds an impossible input is told, not obeyed."""
    conn = Connection("me")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.connect_failed(OSError())
    with pytest.raises(LocalProtocolError):
        conn.sent(0)
    with pytest.raises(LocalProtocolError):
        conn.receive_eof()
    conn = open_conn()
    with pytest.raises(LocalProtocolError):
        conn.connection_made(HOST, REMOTE)
    assert conn.is_open
    conn.receive_eof()
    with pytest.raises(LocalProtocolError, match="DATA"):  # nothing comes after the EOF
        conn.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.connection_made(HOST, REMOTE)
    assert conn.state is S.READ_CLOSED


def test_idle_close_and_loss_are_no_ops() -> None:
    """Closing a never-connected client does nothing (idempotent close)."""
    conn = Connection("me")
    assert conn.close() == []
    assert conn.connection_lost() == []
    assert conn.state is S.IDLE


def test_recv_buffer_is_validated_and_options_copy() -> None:
    """recvBuffer default 256; settable; validated; server options are copied to clients."""
    conn = Connection("me")
    assert conn.recv_buffer == 256
    conn.recv_buffer = 4096
    assert conn.recv_buffer == 4096
    with pytest.raises(ValueError, match="recvBuffer"):
        conn.recv_buffer = 0
    copy = conn.options.copy()
    copy.recv_buffer = 1
    assert conn.recv_buffer == 4096


def test_tables_are_disjoint_and_cover_every_pair() -> None:
    """Each (state, input) is allowed, refused with a code, or a binding error - never two."""
    assert not set(_TRANSITIONS) & set(_REFUSED)
    user_inputs = {Input.CONNECT, Input.SEND, Input.CLOSE, Input.SHUTDOWN}
    for state in S:
        for event in user_inputs:
            assert (state, event) in _TRANSITIONS or (state, event) in _REFUSED, (state, event)
        # A binding may always say "dispatched" and "settled" (late writers).
        assert (state, Input.DISPATCHED) in _TRANSITIONS
        assert (state, Input.SETTLE) in _TRANSITIONS


def test_an_abandoned_connect_is_told_from_the_next() -> None:
    """close() while connecting, then connect again: the first attempt's outcome, when
    it comes, is refused (1006) and changes nothing; the second one's counts."""
    conn = Connection("me")
    first = conn.start_connect()
    conn.close()
    second = conn.start_connect()
    assert second == first + 1
    with pytest.raises(SocketError) as info:
        conn.connection_made(HOST, REMOTE, attempt=first)
    assert info.value.errno == 1006
    assert conn.connect_failed(OSError("late"), attempt=first).errno == 1006
    assert conn.state is ConnectionState.CONNECTING
    assert [type(e) for e in conn.connection_made(HOST, REMOTE, attempt=second)] == [Connected]


def test_reports_of_a_replaced_connection_are_ignored() -> None:
    """A reader of the previous connection reporting its loss after a reconnect: ignored."""
    conn = open_conn()
    old = conn.epoch
    assert conn.current(old)
    conn.close()
    assert not conn.current(old)  # over: its end was reported
    conn.start_connect()
    assert conn.connection_lost(OSError("old reader"), epoch=old) == []
    conn.connection_made(HOST, REMOTE)
    assert conn.epoch == old + 1 and conn.current(conn.epoch) and not conn.current(old)
    assert conn.connection_lost(OSError("old reader"), epoch=old) == []
    assert conn.is_open
    assert [type(e) for e in conn.connection_lost(OSError("now"), epoch=conn.epoch)] == [
        Disconnected
    ]


def test_connections_share_options_until_one_changes_its_recv_buffer() -> None:
    """A server's clients share its options; setting one's recvBuffer touches no other."""
    shared = ConnectionOptions(framing="line", recv_buffer=512)
    a, b = Connection("a", shared), Connection("b", shared)
    assert a.options is b.options is shared
    a.recv_buffer = 64
    assert (a.recv_buffer, b.recv_buffer, shared.recv_buffer) == (64, 512, 512)
    assert a.options.framing is shared.framing and b.options is shared
