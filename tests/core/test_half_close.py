"""Half-close in the core: the peer's EOF (READ_CLOSED), our shutdown (WRITE_CLOSED),
``half_open``, and the options that come with them."""

from __future__ import annotations

import logging

import pytest
from jfsocket.core import (
    Connection,
    ConnectionOptions,
    ConnectionState,
    Disconnected,
    Event,
    LocalProtocolError,
    Received,
    RemoteProtocolError,
    SendFailed,
    Sent,
    SocketError,
)

HOST = ("127.0.0.1", 40000)
REMOTE = ("127.0.0.1", 50000)
S = ConnectionState
BYE = Disconnected(source="me", host=HOST, remote=REMOTE)


def state_of(conn: Connection) -> ConnectionState:
    """The state, read through a call so that mypy does not pin an earlier reading."""
    return conn.state


def open_conn(**options: object) -> Connection:
    """A connection that has fired CONNECTED."""
    conn = Connection("me", ConnectionOptions(**options))
    conn.connection_made(HOST, REMOTE)
    return conn


def kinds(events: list[Event]) -> list[type]:
    """The events' types, in order."""
    return [type(e) for e in events]


def flags(conn: Connection) -> tuple[bool, bool, bool, bool]:
    """``(is_open, live, write_closed, closed)``."""
    return conn.is_open, conn.live, conn.write_closed, conn.closed


# -- the peer's EOF ------------------------------------------------------------


def test_line_tail_arrives_while_a_send_is_still_accepted() -> None:
    """The unterminated last line comes from receive_eof; the reply to it is accepted."""
    conn = open_conn(framing="line")
    assert conn.receive_data(b"one\ntwo") == [Received(source="me", data="one")]
    assert conn.receive_eof() == [Received(source="me", data="two")]
    assert conn.state is S.READ_CLOSED
    assert flags(conn) == (True, True, False, False)
    ticket, payload = conn.send("two")
    assert payload == b"two\n" and conn.pending == 1
    assert conn.sent(ticket) == [Sent(source="me", data="two")]


def test_decoder_tail_arrives_while_a_send_is_still_accepted() -> None:
    """An unfinished character comes out surrogate-escaped at EOF, and can be echoed byte-exact."""
    conn = open_conn()
    assert conn.receive_data(b"abc\xe4") == [Received(source="me", data="abc")]
    (tail,) = conn.receive_eof()
    assert tail == Received(source="me", data="\udce4")
    assert isinstance(tail.data, str)
    _, payload = conn.send(tail.data)
    assert payload == b"\xe4"


def test_reply_settled_before_dispatch_then_disconnect() -> None:
    """A reply written before the EOF's events finish: SENDED, then DISCONNECT from
    eof_dispatched (not before)."""
    conn = open_conn(framing="line")
    conn.receive_data(b"ping")
    (line,) = conn.receive_eof()
    assert isinstance(line, Received)
    ticket, _ = conn.send(line.data)
    assert conn.sent(ticket) == [Sent(source="me", data="ping")]
    assert conn.state is S.READ_CLOSED
    assert conn.eof_dispatched() == [BYE]
    assert conn.closed and flags(conn) == (False, False, False, True)
    assert conn.eof_dispatched() == []  # late or repeated: nothing


def test_reply_pending_at_dispatch_waits_in_closing() -> None:
    """A reply still being written at eof_dispatched: CLOSING, DISCONNECT after its SENDED."""
    conn = open_conn(framing="line")
    conn.receive_data(b"ping")
    conn.receive_eof()
    ticket, _ = conn.send("pong")
    assert conn.eof_dispatched() == []
    assert conn.state is S.CLOSING
    assert flags(conn) == (False, True, False, False)
    with pytest.raises(SocketError) as info:
        conn.send("more")
    assert info.value.errno == 1001
    assert conn.sent(ticket) == [Sent(source="me", data="pong"), BYE]
    assert conn.closed


def test_reply_failing_at_dispatch_still_ends_with_one_disconnect() -> None:
    """The pending reply fails instead: SENDFAIL, then the one DISCONNECT."""
    conn = open_conn()
    conn.receive_eof()
    ticket, _ = conn.send("late")
    conn.eof_dispatched()
    boom = BrokenPipeError("gone")
    assert conn.send_failed(ticket, boom) == [
        SendFailed(source="me", data="late", error=boom),
        BYE,
    ]


def test_loss_in_read_closed_fails_the_replies() -> None:
    """The socket breaks while replies are pending: SENDFAIL for each, DISCONNECT with the error."""
    conn = open_conn()
    conn.receive_eof()
    conn.send("a")
    reset = ConnectionResetError("reset")
    events = conn.connection_lost(reset)
    assert kinds(events) == [SendFailed, Disconnected]
    assert events[-1] == Disconnected(source="me", host=HOST, remote=REMOTE, error=reset)


def test_repeated_eof_and_data_after_it() -> None:
    """A second EOF is nothing; data after the EOF is a binding mistake."""
    conn = open_conn(framing="line")
    conn.receive_data(b"x")
    assert conn.receive_eof() == [Received(source="me", data="x")]
    assert conn.receive_eof() == []
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"y")
    assert conn.state is S.READ_CLOSED


@pytest.mark.parametrize(("encoding", "empty"), [("utf-8", ""), (None, b"")])
def test_half_open_eof_is_one_empty_received(encoding: str | None, empty: str | bytes) -> None:
    """half_open: the tail, then Received(data='' or b'', eof=True); dispatching closes nothing."""
    conn = open_conn(framing="line", encoding=encoding, half_open=True)
    conn.receive_data(b"last")
    tail = b"last" if encoding is None else "last"
    events = conn.receive_eof()
    assert events == [
        Received(source="me", data=tail),
        Received(source="me", data=empty, eof=True),
    ]
    eof = events[-1]
    assert isinstance(eof, Received) and type(eof.data) is type(empty)
    assert conn.eof_dispatched() == []
    assert conn.state is S.READ_CLOSED
    ticket, _ = conn.send(tail)  # we keep sending as long as we like
    assert conn.sent(ticket) == [Sent(source="me", data=tail)]
    assert conn.eof_dispatched() == []
    assert conn.close() == [BYE]


def test_half_open_eof_without_tail_and_a_shutdown_ends_it() -> None:
    """Nothing pending: the EOF event alone; our shutdown after it is a close."""
    conn = open_conn(half_open=True)
    assert conn.receive_eof() == [Received(source="me", data="", eof=True)]
    conn.eof_dispatched()
    ticket, _ = conn.send("bye")
    assert conn.shutdown() == []
    assert conn.state is S.CLOSING
    assert conn.sent(ticket) == [Sent(source="me", data="bye"), BYE]


def test_not_half_open_has_no_eof_event() -> None:
    """The default: an EOF with nothing pending returns nothing; the close comes on dispatch."""
    conn = open_conn(encoding=None)
    assert conn.receive_eof() == []
    assert conn.eof_dispatched() == [BYE]


def test_shutdown_and_close_from_read_closed() -> None:
    """After the peer's EOF, shutdown() and close() are both a close (both ends done)."""
    for end in ("shutdown", "close"):
        conn = open_conn(half_open=True)
        conn.receive_eof()
        assert getattr(conn, end)() == [BYE], end
        assert conn.closed
        # With a reply still being written, it waits for it.
        conn = open_conn(half_open=True)
        conn.receive_eof()
        ticket, _ = conn.send("reply")
        assert getattr(conn, end)() == [], end
        assert conn.state is S.CLOSING
        assert conn.sent(ticket) == [Sent(source="me", data="reply"), BYE]


# -- our shutdown --------------------------------------------------------------


def test_shutdown_then_data_then_eof() -> None:
    """WRITE_CLOSED: sends refused 1001, data still received; the peer's EOF ends it,
    the framer's tail first."""
    conn = open_conn(framing="line")
    assert conn.shutdown() == []
    assert conn.state is S.WRITE_CLOSED
    assert flags(conn) == (True, True, True, False)
    with pytest.raises(SocketError) as info:
        conn.send("no")
    assert info.value.errno == 1001 and conn.pending == 0
    assert conn.receive_data(b"a\r\nb") == [Received(source="me", data="a")]
    assert conn.eof_dispatched() == []  # nothing to do here
    assert conn.receive_eof() == [Received(source="me", data="b"), BYE]
    assert conn.closed and not conn.write_closed


def test_shutdown_while_sends_are_pending() -> None:
    """Sends accepted before shutdown() still settle, each once; then the EOF ends it."""
    conn = open_conn()
    t1, _ = conn.send(b"1")
    t2, _ = conn.send(b"2")
    assert conn.shutdown() == []
    assert conn.write_closed and conn.pending == 2
    assert conn.sent(t1) == [Sent(source="me", data=b"1")]
    with pytest.raises(LocalProtocolError):
        conn.sent(t1)
    assert conn.state is S.WRITE_CLOSED
    events = conn.receive_eof()  # the peer is gone before t2 was written
    assert kinds(events) == [SendFailed, Disconnected]
    failed = events[0]
    assert isinstance(failed, SendFailed) and failed.data == b"2"
    assert isinstance(failed.error, SocketError) and failed.error.errno == 1001
    assert conn.sent(t2) == []  # the writer finishing late is ignored


def test_shutdown_twice_is_one_shutdown() -> None:
    """shutdown() is idempotent: the second changes nothing and returns nothing."""
    conn = open_conn()
    ticket, _ = conn.send("x")
    conn.shutdown()
    assert conn.shutdown() == []
    assert conn.state is S.WRITE_CLOSED and conn.pending == 1
    assert conn.sent(ticket) == [Sent(source="me", data="x")]
    assert conn.receive_eof() == [BYE]


def test_close_after_shutdown_waits_for_the_sends() -> None:
    """close() in WRITE_CLOSED: CLOSING while sends are open, DISCONNECT after the last."""
    conn = open_conn()
    ticket, _ = conn.send("x")
    conn.shutdown()
    assert conn.close() == []
    assert conn.state is S.CLOSING
    assert conn.receive_data(b"dropped") == []
    assert conn.shutdown() == []  # nothing left to shut
    assert conn.sent(ticket) == [Sent(source="me", data="x"), BYE]
    conn = open_conn()
    conn.shutdown()
    assert conn.close() == [BYE]


def test_shutdown_before_connecting_is_1001_and_after_closing_nothing() -> None:
    """IDLE/CONNECTING: SocketError 1001, no change; CLOSING/CLOSED: a no-op."""
    conn = Connection("me")
    for state in (S.IDLE, S.CONNECTING):
        assert conn.state is state
        with pytest.raises(SocketError) as info:
            conn.shutdown()
        assert info.value.errno == 1001 and conn.state is state
        if state is S.IDLE:
            conn.start_connect()
    conn.connection_made(HOST, REMOTE)
    conn.send("x")
    conn.close()
    assert conn.shutdown() == [] and state_of(conn) is S.CLOSING
    conn.connection_lost()
    assert conn.shutdown() == [] and state_of(conn) is S.CLOSED


def test_protocol_error_after_shutdown_disconnects() -> None:
    """An oversized line while WRITE_CLOSED: whole lines, SENDFAILs, a protocol-error DISCONNECT."""
    conn = open_conn(framing="line", max_message_size=3)
    conn.send("abc")
    conn.shutdown()
    events = conn.receive_data(b"ok\ntoo long")
    assert kinds(events) == [Received, SendFailed, Disconnected]
    bye = events[-1]
    assert isinstance(bye, Disconnected) and isinstance(bye.error, RemoteProtocolError)
    assert conn.closed


# -- cut streams ---------------------------------------------------------------


def test_length_message_cut_at_eof_is_a_protocol_error(caplog: pytest.LogCaptureFixture) -> None:
    """EOF inside a length-prefixed message: no READ_CLOSED, a DISCONNECT with the error,
    the pending send failed with it as cause."""
    conn = open_conn(framing="length")
    conn.send(b"q")
    assert conn.receive_data(b"\x00\x00\x00\x05ab") == []
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        events = conn.receive_eof()
    assert kinds(events) == [SendFailed, Disconnected]
    failed, bye = events
    assert isinstance(bye, Disconnected) and isinstance(bye.error, RemoteProtocolError)
    assert isinstance(failed, SendFailed) and isinstance(failed.error, SocketError)
    assert failed.error.err is bye.error
    assert conn.closed and "pending" in caplog.text
    assert conn.eof_dispatched() == []


def test_length_message_cut_at_eof_after_shutdown() -> None:
    """The same after our shutdown: the EOF ends it, DISCONNECT carries the protocol error."""
    conn = open_conn(framing="length")
    conn.shutdown()
    assert conn.receive_data(b"\x00\x00\x00\x01") == []
    (bye,) = conn.receive_eof()
    assert isinstance(bye, Disconnected) and isinstance(bye.error, RemoteProtocolError)


def test_line_with_its_cr_too_long_at_eof_is_a_protocol_error() -> None:
    """max_message_size bytes and a CR wait for their LF; at EOF the CR is data, one too many."""
    conn = open_conn(framing="line", max_message_size=4)
    assert conn.receive_data(b"abcd\r") == []
    (bye,) = conn.receive_eof()
    assert isinstance(bye, Disconnected) and isinstance(bye.error, RemoteProtocolError)
    conn = open_conn(framing="line", max_message_size=4)
    conn.receive_data(b"abcd\r")
    assert conn.receive_data(b"\n") == [Received(source="me", data="abcd")]
    conn = open_conn(framing="line", max_message_size=5)
    conn.receive_data(b"abcd\r")
    assert conn.receive_eof() == [Received(source="me", data="abcd\r")]


# -- CRLF and options ----------------------------------------------------------


@pytest.mark.parametrize(("ending", "wire"), [("\n", b"hi\n"), ("\r\n", b"hi\r\n")])
def test_line_ending_is_what_send_appends(ending: str, wire: bytes) -> None:
    """line_ending picks the line end written; either one is read; a trailing CR is refused."""
    conn = open_conn(framing="line", line_ending=ending)
    assert conn.options.line_ending == ending
    assert conn.send("hi")[1] == wire
    assert conn.receive_data(b"a\r\nb\nc\r\r\n") == [
        Received(source="me", data="a"),
        Received(source="me", data="b"),
        Received(source="me", data="c\r"),
    ]
    for bad in ("x\r", "x\ny", b"x\r"):
        with pytest.raises(ValueError, match="newline"):
            conn.send(bad)
    assert conn.pending == 1
    assert conn.send("a\rb")[1] == b"a\rb" + wire[2:]  # a CR inside is data


def test_options_validate_and_copy_half_open_and_line_ending() -> None:
    """half_open must be a bool, line_ending '\\n' or '\\r\\n'; copies keep both."""
    with pytest.raises(TypeError, match="half_open"):
        ConnectionOptions(half_open="yes")
    with pytest.raises(TypeError, match="half_open"):
        ConnectionOptions(half_open=1)
    with pytest.raises(ValueError, match="line_ending"):
        ConnectionOptions(line_ending="\r")
    with pytest.raises(TypeError, match="line_ending"):
        ConnectionOptions(line_ending=b"\n")
    defaults = ConnectionOptions()
    assert (defaults.half_open, defaults.line_ending) == (False, "\n")
    options = ConnectionOptions(half_open=True, line_ending="\r\n")
    copy = options.copy()
    assert (copy.half_open, copy.line_ending) == (True, "\r\n")
    copy.half_open = False
    assert options.half_open is True


# -- how a connection ends: in order, or not (close_notify over TLS) -----------------


def test_an_orderly_end_is_in_order() -> None:
    """A close, the peer's EOF, a clean loss, a shutdown after the peer's EOF: in order."""
    conn = open_conn()
    conn.close()
    assert conn.closed and conn.ends_in_order
    conn = open_conn()
    conn.receive_eof()
    conn.eof_dispatched()
    assert conn.closed and conn.ends_in_order
    conn = open_conn()
    conn.connection_lost(None)
    assert conn.ends_in_order
    conn = open_conn(half_open=True)
    conn.receive_eof()
    conn.shutdown()  # after the peer's EOF: a close, not a FIN
    assert conn.closed and conn.ends_in_order


def test_an_abort_a_broken_transport_or_our_fin_is_out_of_order() -> None:
    conn = open_conn()
    conn.close(abort=True)
    assert not conn.ends_in_order
    conn = open_conn()
    conn.connection_lost(ConnectionResetError())
    assert not conn.ends_in_order
    conn = open_conn()
    conn.shutdown()  # our FIN goes: nothing of TLS's may follow it
    assert conn.write_closed and not conn.ends_in_order
    conn.receive_eof()
    assert conn.closed and not conn.ends_in_order


def test_a_deadline_or_a_slow_consumer_is_out_of_order() -> None:
    conn = Connection("me", ConnectionOptions(idle_timeout=5))
    conn.connection_made(HOST, REMOTE, now=0.0)
    conn.handle_timer(5.0)
    assert conn.closed and not conn.ends_in_order
    conn = open_conn(max_pending=1, encoding=None)
    conn.send(b"12")
    conn.overflowed(b"12")
    assert conn.closed and not conn.ends_in_order


def test_the_next_connection_starts_in_order() -> None:
    conn = open_conn()
    conn.close(abort=True)
    conn.start_connect()
    conn.connection_made(HOST, REMOTE)
    assert conn.ends_in_order
