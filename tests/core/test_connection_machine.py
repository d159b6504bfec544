"""A hypothesis state machine over :class:`Connection`, checked against a model.

The machine feeds random legal and illegal inputs (user calls and binding
reports) and predicts, from an independent model of the connection's rules,
the state after each input, which inputs raise and with what, and exactly
which events come out: which tickets settle, what is received (the EOF's tail
and, half open, the EOF itself), when the one DISCONNECT comes and with what
error.  Both half-closes are in it: the peer's EOF (READ_CLOSED, then
``eof_dispatched``) and our ``shutdown()`` (WRITE_CLOSED).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from jfsocket.core import (
    Address,
    Connected,
    Connection,
    ConnectionOptions,
    ConnectionState,
    Data,
    Disconnected,
    Event,
    Framing,
    LocalProtocolError,
    Received,
    RemoteProtocolError,
    SendFailed,
    Sent,
    SocketError,
)

S = ConnectionState

#: Connected in at least one direction (``is_open``).
_UP = frozenset({S.OPEN, S.READ_CLOSED, S.WRITE_CLOSED})
#: The connection's end is still to be reported (``live``).
_LIVE = _UP | {S.CLOSING}
#: ``send`` is accepted.
_SENDING = frozenset({S.OPEN, S.READ_CLOSED})
#: Incoming bytes are read.
_READING = frozenset({S.OPEN, S.WRITE_CLOSED})

#: Tells whether an event's error is the one expected.
Check = Callable[[BaseException | None], bool]


def _is(expected: BaseException | None) -> Check:
    """The error must be *expected* itself (or ``None`` when that is expected)."""
    return lambda error: error is expected


def _kind(expected: type[BaseException]) -> Check:
    """The error must be an instance of *expected*."""
    return lambda error: isinstance(error, expected)


def _not_connected(cause: Check | None) -> Check:
    """A SocketError 1001 whose ``err`` passes *cause* (unchecked when ``None``)."""

    def check(error: BaseException | None) -> bool:
        return (
            isinstance(error, SocketError)
            and error.errno == 1001
            and (cause is None or cause(error.err))
        )

    return check


class _Stream:
    """What the incoming byte stream must yield; ``None`` stands for a protocol error."""

    def __init__(self, framing: Framing, limit: int) -> None:
        self.framing = framing
        self.limit = limit
        self.pending = b""

    def feed(self, data: bytes) -> tuple[list[bytes], bool]:
        """The messages *data* completes, and whether the framing was broken.

        On a violation, the messages that were whole before it still count.
        """
        if self.framing is Framing.RAW:
            return ([data] if data else []), False
        buf = self.pending + data
        if self.framing is Framing.LINE:
            *ended, rest = buf.split(b"\n")
            # b"\r\n" is one line end too: one CR before the LF is not data.
            lines = [line.removesuffix(b"\r") for line in ended]
            for index, line in enumerate(lines):
                if len(line) > self.limit:
                    return lines[:index], True
            # A head one byte over may be a whole line whose LF is still to come.
            if len(rest) > self.limit and not (
                len(rest) == self.limit + 1 and rest.endswith(b"\r")
            ):
                return lines, True
            self.pending = rest
            return lines, False
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if size > self.limit:
                return out, True
            if pos + 4 + size > len(buf):
                break
            out.append(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
        self.pending = buf[pos:]
        return out, False

    def end(self) -> list[bytes] | None:
        """The messages due when the stream ends.

        An unterminated line is a line (a CR at its end is then data, so it may be
        one byte too long); an unfinished length message is an error.
        """
        pending, self.pending = self.pending, b""
        if not pending:
            return []
        if self.framing is Framing.LINE and len(pending) <= self.limit:
            return [pending]
        return None


@dataclass
class _Want:
    """The events one input must return."""

    #: Received payloads (as bytes), in order.
    received: list[bytes] = field(default_factory=list)
    #: Settlements in order: (ticket, SENDED?, check of the SENDFAIL error).
    settled: list[tuple[int, bool, Check]] = field(default_factory=list)
    #: Check of the DISCONNECT error, or ``None`` when no DISCONNECT may come.
    disconnect: Check | None = None
    #: The half-open EOF event comes last (after every payload).
    eof: bool = False


_ADDRESSES = st.tuples(st.sampled_from(["127.0.0.1", "::1", "10.0.2.7"]), st.integers(1, 65535))
_ERRORS = st.sampled_from([ConnectionResetError, BrokenPipeError, TimeoutError, OSError]).map(
    lambda kind: kind("boom")
)
_TEXT = st.one_of(
    st.text(max_size=6),
    st.text(st.sampled_from("ab\r\n\u00e9\u20ac\udcff\ud800"), max_size=6),
)
_BLOBS = st.one_of(
    st.binary(max_size=8),
    st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n"]), max_size=4).map(b"".join),
)
_CHUNKS = st.one_of(
    st.binary(max_size=12),
    st.lists(
        st.sampled_from(
            [b"a", b"\n", b"\r", b"\r\n", b"\xc3", b"\xa9", b"\xe2\x82", b"\xff", b"\x00\x00\x00"]
        ),
        max_size=8,
    ).map(b"".join),
    st.binary(max_size=24).map(lambda body: len(body).to_bytes(4, "big") + body),
)
_KINDS = st.sampled_from(["str", "bytes", "bytearray", "memoryview"])
_NOT_DATA = st.one_of(
    st.integers(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.binary(max_size=2), max_size=2),
    st.tuples(st.binary(max_size=2)),
    st.builds(object),
)


@settings(max_examples=300, stateful_step_count=60, deadline=None)
class ConnectionMachine(RuleBasedStateMachine):
    """Random inputs to one Connection; its state, errors and events must match the model."""

    tickets: Bundle[int] = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.source = object()
        self.conn = Connection(self.source)
        self.framing = Framing.RAW
        self.encoding: str | None = "utf-8"
        self.limit = 1
        self.line_ending = b"\n"
        self.half_open = False
        self.stream = _Stream(self.framing, self.limit)
        self.state = S.IDLE
        self.counter = 0
        #: Every accepted send: ticket -> the caller's object.
        self.issued: dict[int, Data] = {}
        #: Tickets the model says are unsettled, oldest first.
        self.open: dict[int, Data] = {}
        #: Which connection (by CONNECTED count) accepted each ticket.
        self.epoch: dict[int, int] = {}
        #: SENDED/SENDFAIL events seen per ticket.
        self.settlements: dict[int, int] = {}
        self.connected = 0
        self.disconnected = 0
        self.live = False
        #: CLOSED by a close() while connecting (the connect's outcome is still due).
        self.aborted = False
        self.peer: tuple[Address, Address] | None = None
        #: Raw framing: bytes fed and bytes received in the current connection.
        self.fed = bytearray()
        self.got = bytearray()

    @initialize(
        encoding=st.sampled_from([None, "utf-8"]),
        framing=st.sampled_from(list(Framing)),
        limit=st.sampled_from([4, 10, 64]),
        line_ending=st.sampled_from(["\n", "\r\n"]),
        half_open=st.booleans(),
        # Mostly open: the states after OPEN are where the rules are.
        opened=st.sampled_from([True, True, True, False]),
    )
    def configure(
        self,
        encoding: str | None,
        framing: Framing,
        limit: int,
        line_ending: str,
        half_open: bool,
        opened: bool,
    ) -> None:
        """Pick the connection's options; maybe start with it open."""
        self.encoding, self.framing, self.limit = encoding, framing, limit
        self.line_ending = line_ending.encode("ascii")
        self.half_open = half_open
        options = ConnectionOptions(
            encoding=encoding,
            framing=framing,
            max_message_size=limit,
            line_ending=line_ending,
            half_open=half_open,
        )
        assert (options.line_ending, options.half_open) == (line_ending, half_open)
        self.conn = Connection(self.source, options)
        self.stream = _Stream(framing, limit)
        if opened:
            self.connection_made(("127.0.0.1", 1), ("127.0.0.1", 2))

    # -- helpers ---------------------------------------------------------------

    def _refused(
        self, call: Callable[[], object], *errors: type[Exception], code: int | None = None
    ) -> None:
        """*call* raises one of *errors* (SocketError with *code*) and changes nothing."""
        conn = self.conn
        before = (conn.state, conn.pending, conn.host, conn.remote)
        with pytest.raises(errors) as info:
            call()
        assert (conn.state, conn.pending, conn.host, conn.remote) == before
        if isinstance(info.value, SocketError):
            assert info.value.errno == code

    def _bytes(self, data: str | bytes) -> bytes:
        """A received payload back as the bytes on the wire."""
        if self.encoding is None:
            assert isinstance(data, bytes)
            return data
        assert isinstance(data, str)
        return data.encode(self.encoding, "surrogateescape")

    def _payload(self, data: Data) -> bytes | type[Exception]:
        """The bytes ``send(data)`` must write, or the error it must raise."""
        if isinstance(data, str):
            if self.encoding is None:
                return TypeError
            try:
                raw = data.encode(self.encoding, "surrogateescape")
            except UnicodeEncodeError:
                return ValueError
        else:
            raw = bytes(data)
        if self.framing is Framing.RAW:
            return raw
        if len(raw) > self.limit:
            return ValueError
        if self.framing is Framing.LINE:
            # A trailing CR would read back as part of a CRLF line end.
            if b"\n" in raw or raw.endswith(b"\r"):
                return ValueError
            return raw + self.line_ending
        return len(raw).to_bytes(4, "big") + raw

    def _teardown_want(
        self, want: _Want, *, lost: BaseException | None = None, protocol_error: bool = False
    ) -> None:
        """Add the end of the connection to *want*: tail, SENDFAILs, DISCONNECT.

        *lost* is the error the binding reported; *protocol_error* means the
        peer broke the framing, which discards whatever was buffered.
        """
        error: Check
        cause: Check | None
        if protocol_error:
            self.stream = _Stream(self.framing, self.limit)
            error = cause = _kind(RemoteProtocolError)
        else:
            tail = self.stream.end()
            cut = tail is None and lost is None
            error = _kind(RemoteProtocolError) if cut else _is(lost)
            cause = None if lost is None else _is(lost)
            want.received += tail or []
        settling = {ticket for ticket, _, _ in want.settled}
        want.settled += [
            (ticket, False, _not_connected(cause)) for ticket in self.open if ticket not in settling
        ]
        want.disconnect = error
        self.state = S.CLOSED

    def _absorb(self, events: list[Event], want: _Want) -> None:
        """Check *events* against *want* and the run-wide rules; update the model."""
        for index, event in enumerate(events):
            assert event.source is self.source
            assert self.live, f"{event!r} outside a connection"
            assert not isinstance(event, Connected), "CONNECTED only from connection_made"
            if isinstance(event, Disconnected):
                assert index == len(events) - 1, "DISCONNECT must be the last event"

        received = [e for e in events if isinstance(e, Received)]
        assert all(e.remote is None and not e.truncated for e in received)
        eofs = [e for e in received if e.eof]
        if want.eof:
            assert eofs == [events[-1]], "one EOF event, after every payload"
            assert type(eofs[0].data) is (bytes if self.encoding is None else str)
            assert not eofs[0].data
        else:
            assert not eofs
        got = [self._bytes(e.data) for e in received if not e.eof]
        if self.framing is Framing.RAW:
            self.got += b"".join(got)
            if self.encoding is None:
                assert got == want.received
        else:
            assert got == want.received

        settles = [e for e in events if isinstance(e, (Sent, SendFailed))]
        assert len(settles) == len(want.settled), (settles, want.settled)
        for event, (ticket, ok, check) in zip(settles, want.settled, strict=True):
            assert event.data is self.issued[ticket]
            if ok:
                assert isinstance(event, Sent)
            else:
                assert isinstance(event, SendFailed)
                assert check(event.error), event.error
            self.settlements[ticket] += 1
            assert self.settlements[ticket] == 1, f"ticket {ticket} settled twice"
            del self.open[ticket]

        disconnects = [e for e in events if isinstance(e, Disconnected)]
        assert len(events) == len(received) + len(settles) + len(disconnects)
        if want.disconnect is None:
            assert not disconnects
            return
        assert len(disconnects) == 1
        (event,) = disconnects
        assert want.disconnect(event.error), event.error
        assert (event.host, event.remote) == self.peer
        assert self.fed == self.got, "raw data lost or invented"
        self.fed.clear()
        self.got.clear()
        self.live = False
        self.disconnected += 1

    # -- connecting --------------------------------------------------------------
    # Rules named ``*_legal`` repeat an input only where it is allowed, so that
    # runs spend time in OPEN, the half-closed states and CLOSING rather than
    # refusing everything.

    @rule()
    def start_connect(self) -> None:
        """User connect(): 1000 while connecting, open (either way) or closing."""
        if self.state is S.CONNECTING or self.state in _LIVE:
            self._refused(self.conn.start_connect, SocketError, code=1000)
            return
        self.conn.start_connect()
        self.state = S.CONNECTING
        self.aborted = False

    @precondition(lambda self: self.state in (S.IDLE, S.CLOSED))
    @rule()
    def start_connect_legal(self) -> None:
        """User connect() where it is allowed."""
        self.start_connect()

    @rule(host=_ADDRESSES, remote=_ADDRESSES)
    def connection_made(self, host: Address, remote: Address) -> None:
        """The socket connected (or was accepted): one CONNECTED."""
        if self.state is S.CLOSED:
            # Documented for a connect that close() abandoned; otherwise it is a
            # binding mistake, and either error will do.
            errors = (SocketError,) if self.aborted else (SocketError, LocalProtocolError)
            self._refused(lambda: self.conn.connection_made(host, remote), *errors, code=1006)
            self.aborted = False  # the abandoned connect is reported once
            return
        if self.state in _LIVE:
            self._refused(lambda: self.conn.connection_made(host, remote), LocalProtocolError)
            return
        events = self.conn.connection_made(host, remote)
        assert not self.live
        assert events == [Connected(source=self.source, host=host, remote=remote)]
        assert (self.conn.host, self.conn.remote) == (host, remote)
        self.live = True
        self.connected += 1
        self.peer = (host, remote)
        self.state = S.OPEN

    @precondition(lambda self: self.state in (S.IDLE, S.CONNECTING))
    @rule(host=_ADDRESSES, remote=_ADDRESSES)
    def connection_made_legal(self, host: Address, remote: Address) -> None:
        """connection_made where it is allowed."""
        self.connection_made(host, remote)

    @precondition(lambda self: self.state in (S.IDLE, S.CLOSED))
    @rule(host=_ADDRESSES, remote=_ADDRESSES)
    def reconnect(self, host: Address, remote: Address) -> None:
        """connect() and its success in one step: back to OPEN, where the action is."""
        self.start_connect()
        self.connection_made(host, remote)

    @rule(exc=_ERRORS)
    def connect_failed(self, exc: OSError) -> None:
        """The connect failed: the 1006 to raise, back to IDLE (or still CLOSED)."""
        if self.state not in (S.CONNECTING, S.CLOSED):
            self._refused(lambda: self.conn.connect_failed(exc), LocalProtocolError)
            return
        if self.state is S.CLOSED and not self.aborted:  # a binding mistake: refuse or ignore
            before = (self.conn.state, self.conn.pending)
            with contextlib.suppress(LocalProtocolError):
                error = self.conn.connect_failed(exc)
                assert (error.errno, error.err) == (1006, exc)
            assert (self.conn.state, self.conn.pending) == before
            return
        error = self.conn.connect_failed(exc)
        assert isinstance(error, SocketError)
        assert error.errno == 1006
        assert error.err is exc
        if self.state is S.CONNECTING:
            self.state = S.IDLE
        self.aborted = False  # the abandoned connect is reported once

    # -- sending -----------------------------------------------------------------

    def _send(self, kind: str, text: str, blob: bytes) -> MultipleResults[int]:
        """User send(valid type): a ticket when OPEN or READ_CLOSED, else 1001; bad values raise."""
        self.counter += 1
        data: Data
        # Prefixes make each object distinct, so identity names the send (and
        # leave the end free to be a CR).
        if kind == "str":
            data = f"{self.counter}~{text}"
        elif kind == "bytes":
            data = b"%d~" % self.counter + blob
        elif kind == "bytearray":
            data = bytearray(blob)
        else:
            data = memoryview(bytearray(blob))
        expected = self._payload(data)
        if isinstance(expected, type):
            errors = (expected,) if self.state in _SENDING else (expected, SocketError)
            self._refused(lambda: self.conn.send(data), *errors, code=1001)
            return multiple()
        if self.state not in _SENDING:
            self._refused(lambda: self.conn.send(data), SocketError, code=1001)
            return multiple()
        ticket, payload = self.conn.send(data)
        assert payload == expected
        assert ticket not in self.issued
        assert all(data is not other for other in self.issued.values())
        self.issued[ticket] = data
        self.open[ticket] = data
        self.epoch[ticket] = self.connected
        self.settlements[ticket] = 0
        return multiple(ticket)

    @rule(target=tickets, kind=_KINDS, text=_TEXT, blob=_BLOBS)
    def send(self, kind: str, text: str, blob: bytes) -> MultipleResults[int]:
        """User send() in any state."""
        return self._send(kind, text, blob)

    @precondition(lambda self: self.state in _SENDING)
    @rule(target=tickets, kind=_KINDS, text=_TEXT, blob=_BLOBS)
    def send_legal(self, kind: str, text: str, blob: bytes) -> MultipleResults[int]:
        """User send() while OPEN, or READ_CLOSED (a reply to the peer's last data)."""
        return self._send(kind, text, blob)

    @precondition(lambda self: self.state is S.READ_CLOSED)
    @rule(target=tickets)
    def reply_to_eof(self) -> MultipleResults[int]:
        """A send every framing takes (a fresh 1-byte bytearray), as a reply to the tail."""
        return self._send("bytearray", "", b"r")

    @rule(bad=_NOT_DATA)
    def send_wrong_type(self, bad: object) -> None:
        """User send(not str/bytes-like): TypeError (or 1001 when not open), nothing changes."""
        errors = (TypeError,) if self.state in _SENDING else (TypeError, SocketError)
        self._refused(lambda: self.conn.send(cast(Data, bad)), *errors, code=1001)

    def _settle(self, ticket: int, ok: bool, exc: OSError) -> None:
        """The binding reports the write of *ticket* done (*ok*) or failed with *exc*."""

        def call() -> list[Event]:
            return self.conn.sent(ticket) if ok else self.conn.send_failed(ticket, exc)

        if ticket in self.open:
            assert self.state in _LIVE
            want = _Want(settled=[(ticket, ok, _is(exc))])
            if self.state is S.CLOSING and list(self.open) == [ticket]:
                self._teardown_want(want)
            self._absorb(call(), want)
        elif ticket in self.issued and (
            self.state not in _UP or self.epoch[ticket] != self.connected
        ):
            # A late writer (the ticket was settled when its connection ended,
            # maybe before a reconnect): ignored, never a second event.
            before = (self.conn.state, self.conn.pending)
            assert call() == []
            assert (self.conn.state, self.conn.pending) == before
        else:
            self._refused(call, LocalProtocolError)

    @rule(ticket=tickets, ok=st.booleans(), exc=_ERRORS)
    def settle(self, ticket: int, ok: bool, exc: OSError) -> None:
        """sent/send_failed for a ticket that was issued (open or already settled)."""
        self._settle(ticket, ok, exc)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), ok=st.booleans(), exc=_ERRORS)
    def settle_legal(self, data: st.DataObject, ok: bool, exc: OSError) -> None:
        """sent/send_failed for a ticket still open."""
        self._settle(data.draw(st.sampled_from(sorted(self.open))), ok, exc)

    @rule(ticket=st.integers(-3, 60), ok=st.booleans(), exc=_ERRORS)
    def settle_any(self, ticket: int, ok: bool, exc: OSError) -> None:
        """sent/send_failed for any number, mostly never issued: LocalProtocolError."""
        self._settle(ticket, ok, exc)

    # -- receiving ---------------------------------------------------------------

    @rule(chunk=_CHUNKS)
    def receive_data(self, chunk: bytes) -> None:
        """Bytes from the peer: the messages they complete, or a protocol-error DISCONNECT.

        Nothing may come after the peer's EOF (READ_CLOSED): a binding mistake.
        """
        if self.state in (S.IDLE, S.CONNECTING, S.READ_CLOSED):
            self._refused(lambda: self.conn.receive_data(chunk), LocalProtocolError)
            return
        if self.state not in _READING:
            assert self.conn.receive_data(chunk) == []
            return
        if self.framing is Framing.RAW:
            self.fed += chunk
        messages, broken = self.stream.feed(chunk)
        want = _Want(received=messages)
        if broken:
            self._teardown_want(want, protocol_error=True)
        self._absorb(self.conn.receive_data(chunk), want)

    @precondition(lambda self: self.state in _READING or self.state is S.CLOSING)
    @rule(chunk=_CHUNKS)
    def receive_data_legal(self, chunk: bytes) -> None:
        """Bytes from the peer while reading (or CLOSING, where they are dropped)."""
        self.receive_data(chunk)

    @rule()
    def receive_eof(self) -> None:
        """The peer will send no more.

        OPEN: the tail (and, half open, the EOF event) while we can still send,
        or a protocol-error DISCONNECT if the tail is a cut message; after our
        shutdown, or while closing, it is the end; a repeated EOF is nothing.
        """
        if self.state in (S.IDLE, S.CONNECTING):
            self._refused(self.conn.receive_eof, LocalProtocolError)
            return
        if self.state in (S.CLOSED, S.READ_CLOSED):
            before = (self.conn.state, self.conn.pending)
            assert self.conn.receive_eof() == []
            assert (self.conn.state, self.conn.pending) == before
            return
        want = _Want()
        if self.state is S.OPEN:
            tail = self.stream.end()
            if tail is None:
                self._teardown_want(want, protocol_error=True)
            else:
                want.received, want.eof = tail, self.half_open
                self.state = S.READ_CLOSED
        else:
            self._teardown_want(want)
        self._absorb(self.conn.receive_eof(), want)

    @precondition(lambda self: self.state in _READING)
    @rule()
    def receive_eof_legal(self) -> None:
        """The peer's EOF while we read."""
        self.receive_eof()

    @precondition(lambda self: self.state is S.WRITE_CLOSED and bool(self.open))
    @rule()
    def receive_eof_pending(self) -> None:
        """The peer's EOF after our shutdown, before what we sent was written: it fails."""
        self.receive_eof()

    @rule()
    def eof_dispatched(self) -> None:
        """The EOF's events have run: READ_CLOSED closes as close() does (unless
        half open); anywhere else it is nothing."""
        if self.state is S.READ_CLOSED and not self.half_open:
            self._close_want(self.conn.eof_dispatched)
            return
        before = (self.conn.state, self.conn.pending)
        assert self.conn.eof_dispatched() == []
        assert (self.conn.state, self.conn.pending) == before

    @precondition(lambda self: self.state is S.READ_CLOSED)
    @rule()
    def eof_dispatched_legal(self) -> None:
        """eof_dispatched where it matters."""
        self.eof_dispatched()

    @precondition(lambda self: self.state is S.READ_CLOSED and bool(self.open))
    @rule()
    def eof_dispatched_pending(self) -> None:
        """eof_dispatched with replies still being written: CLOSING (unless half open)."""
        self.eof_dispatched()

    # -- closing -----------------------------------------------------------------

    def _close_want(self, call: Callable[[], list[Event]]) -> None:
        """*call* closes an open connection: CLOSING while sends are open, else the end now."""
        want = _Want()
        if self.open:
            self.state = S.CLOSING
        else:
            self._teardown_want(want)
        self._absorb(call(), want)

    @rule()
    def close(self) -> None:
        """User close(): DISCONNECT now, or once the accepted sends settle."""
        if self.state in _UP:
            self._close_want(self.conn.close)
            return
        if self.state is S.CONNECTING:
            self.state = S.CLOSED
            self.aborted = True
        self._absorb(self.conn.close(), _Want())

    @precondition(lambda self: self.state in _UP and bool(self.open))
    @rule()
    def close_pending(self) -> None:
        """User close() while open with sends pending: it waits in CLOSING."""
        self.close()

    @rule()
    def shutdown(self) -> None:
        """User shutdown(): OPEN -> WRITE_CLOSED; after the peer's EOF a close;
        1001 before connecting; nothing once closing or closed."""
        if self.state in (S.IDLE, S.CONNECTING):
            self._refused(self.conn.shutdown, SocketError, code=1001)
            return
        if self.state is S.READ_CLOSED:
            self._close_want(self.conn.shutdown)
            return
        if self.state is S.OPEN:
            self.state = S.WRITE_CLOSED
        pending = self.conn.pending
        self._absorb(self.conn.shutdown(), _Want())
        assert self.conn.pending == pending, "shutdown fails no send: they still settle"

    @precondition(lambda self: self.state in _SENDING)
    @rule()
    def shutdown_legal(self) -> None:
        """shutdown() where it does something."""
        self.shutdown()

    @rule(exc=st.one_of(st.none(), _ERRORS))
    def connection_lost(self, exc: OSError | None) -> None:
        """The socket is gone: SENDFAILs and DISCONNECT carrying *exc*."""
        if self.state is S.CONNECTING:
            self._refused(lambda: self.conn.connection_lost(exc), LocalProtocolError)
            return
        want = _Want()
        if self.state in _LIVE:
            self._teardown_want(want, lost=exc)
        self._absorb(self.conn.connection_lost(exc), want)

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        """State, pending count and flags agree with the model."""
        conn = self.conn
        assert conn.state is self.state
        assert conn.pending == len(self.open)
        assert conn.is_open is (self.state in _UP)
        assert conn.live is (self.state in _LIVE)
        assert conn.write_closed is (self.state is S.WRITE_CLOSED)
        assert conn.closed is (self.state is S.CLOSED)
        assert self.live is (self.state in _LIVE)

    @invariant()
    def every_send_settled_once(self) -> None:
        """Never two settlements; none missing once the connection is over."""
        assert all(count <= 1 for count in self.settlements.values())
        if not self.live:
            assert not self.open
            assert all(count == 1 for count in self.settlements.values())

    @invariant()
    def one_disconnect_per_connect(self) -> None:
        """Exactly one DISCONNECT per CONNECTED (the current one may still be open)."""
        assert self.disconnected == self.connected - int(self.live)

    @invariant()
    def raw_stream_is_lossless(self) -> None:
        """Raw reads come out as a prefix of what went in, at most a character behind,
        and all of it once the peer's EOF was delivered."""
        assert self.fed.startswith(self.got)
        assert len(self.fed) - len(self.got) <= (0 if self.encoding is None else 3)
        if self.state is S.READ_CLOSED:
            assert self.fed == self.got


TestConnectionMachine = ConnectionMachine.TestCase
