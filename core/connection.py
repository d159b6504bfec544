"""One TCP connection: its lifecycle, its send ledger, its incoming data.

Rules of this module (the tables below are the whole of them):

* states: IDLE (never connected, or a connect failed) -> CONNECTING -> OPEN
  -> CLOSING (a local close waits for sends already accepted) -> CLOSED.
  An accepted or adopted socket goes IDLE -> OPEN directly.  A client may
  connect again from CLOSED;
* TLS: once the socket is connected, HANDSHAKING comes before OPEN (from
  CONNECTING for a client that dials, from IDLE for an accepted socket), with
  a deadline ``handshake_timeout`` after it began.  CONNECTED waits for the
  handshake; a failed or late one sends a dialing client back to IDLE (its
  ``connect`` raises 1006 around the TLS error, or around 1008) and closes an
  accepted one with a warning that names the remote and the reason, with no
  event at all: there was no CONNECTED, so there is no DISCONNECT;
* half-close: the peer's EOF moves OPEN -> READ_CLOSED, where we may still
  send.  What the framer and decoder held is delivered first; once the
  binding has run every event up to the EOF (:meth:`Connection.eof_dispatched`)
  the connection closes as a local ``close()`` does, unless ``half_open``
  keeps it until the user closes.  ``shutdown()`` moves OPEN -> WRITE_CLOSED
  (sends refused, receiving goes on) and the peer's EOF then ends it;
* a user input its state refuses raises :class:`SocketError` with the code in
  ``_REFUSED`` (connect while busy: 1000; send while not open: 1001);
* a binding input its state does not allow raises :class:`LocalProtocolError`;
* late inputs (data after close, a second close, a loss after close) are
  no-ops: they are the normal race of a reader and a closer, not errors;
* DISCONNECT is emitted once per OPEN, as the last event; every send still
  open at that moment gets its SENDFAIL first (see :mod:`.ledger`);
* the binding closes the socket when :attr:`Connection.closed` turns true.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import Enum, IntEnum, auto
from typing import Final

from .callbacks import SENT_SLOT
from .dispatch import Dispatcher
from .errors import (
    ErrorCode,
    LocalProtocolError,
    OsContext,
    RemoteProtocolError,
    SocketError,
    translate_os_error,
)
from .events import Address, Connected, Data, Disconnected, Event, Received, SendFailed
from .framing import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_RECV_BUFFER,
    Framing,
    MessageReader,
    encode_payload,
    validate_encoding,
    validate_framing,
    validate_line_ending,
    validate_max_message_size,
    validate_recv_buffer,
)
from .ledger import SendLedger
from .stats import Stats
from .timing import (
    DEFAULT_MAX_PENDING,
    validate_keepalive,
    validate_max_pending,
    validate_timeout,
)
from .tls import TlsInfo

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "OVERFLOW",
    "Connection",
    "ConnectionOptions",
    "ConnectionState",
    "Input",
]

logger = logging.getLogger("jfsocket")


class ConnectionState(Enum):
    """Where a connection is in its life."""

    IDLE = auto()
    CONNECTING = auto()
    HANDSHAKING = auto()  # the socket is connected; TLS is not yet agreed
    OPEN = auto()
    READ_CLOSED = auto()  # the peer sent EOF; we may still send
    WRITE_CLOSED = auto()  # we shut our sending side; we still receive
    CLOSING = auto()
    CLOSED = auto()


class Input(IntEnum):
    """What can happen to a connection (an IntEnum: it hashes at C speed)."""

    CONNECT = auto()  # user: connect()
    MADE = auto()  # binding: the socket is connected
    CONNECT_FAILED = auto()  # binding: it is not (or its TLS handshake failed)
    HANDSHAKE = auto()  # binding: the socket is connected, its TLS handshake begins
    SEND = auto()  # user: send()
    SETTLE = auto()  # binding: a write finished or failed
    DATA = auto()  # binding: bytes arrived
    EOF = auto()  # binding: the peer closed its side
    CLOSE = auto()  # user: close()
    ABORT = auto()  # user: close(abort=True), or a deadline or limit the core enforces
    SHUTDOWN = auto()  # user: shutdown()
    DISPATCHED = auto()  # binding: every event up to the EOF has run
    LOST = auto()  # binding: the socket broke, or the local close is done


_S = ConnectionState
_I = Input
_OPEN: Final = ConnectionState.OPEN
_SEND: Final = Input.SEND
_RAW: Final = Framing.RAW
#: The ticket ``send`` gives for a send that makes the connection a slow consumer.
OVERFLOW: Final = -1
#: Seconds a TLS handshake may take (SPEC section 10).
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0

#: Allowed (state, input) -> next state.  CLOSING -> CLOSED on the last
#: settlement, SETTLE in CLOSED (a late writer), and HANDSHAKING -> CLOSED when
#: an accepted connection's handshake fails, are decided in code.
_TRANSITIONS: Final[Mapping[tuple[ConnectionState, Input], ConnectionState]] = {
    (_S.IDLE, _I.CONNECT): _S.CONNECTING,
    (_S.CLOSED, _I.CONNECT): _S.CONNECTING,
    (_S.IDLE, _I.MADE): _S.OPEN,
    (_S.CONNECTING, _I.MADE): _S.OPEN,
    (_S.CONNECTING, _I.CONNECT_FAILED): _S.IDLE,
    # TLS: the handshake, then OPEN; an accepted one that fails is closed in code.
    (_S.IDLE, _I.HANDSHAKE): _S.HANDSHAKING,
    (_S.CONNECTING, _I.HANDSHAKE): _S.HANDSHAKING,
    (_S.HANDSHAKING, _I.MADE): _S.OPEN,
    (_S.HANDSHAKING, _I.CONNECT_FAILED): _S.IDLE,
    (_S.HANDSHAKING, _I.CLOSE): _S.CLOSED,
    (_S.HANDSHAKING, _I.ABORT): _S.CLOSED,
    (_S.HANDSHAKING, _I.SETTLE): _S.HANDSHAKING,
    (_S.HANDSHAKING, _I.DISPATCHED): _S.HANDSHAKING,
    (_S.CONNECTING, _I.CLOSE): _S.CLOSED,
    (_S.OPEN, _I.SEND): _S.OPEN,
    (_S.OPEN, _I.SETTLE): _S.OPEN,
    (_S.CLOSING, _I.SETTLE): _S.CLOSING,
    (_S.CLOSED, _I.SETTLE): _S.CLOSED,
    # A writer of the previous connection finishing after a reconnect began.
    (_S.IDLE, _I.SETTLE): _S.IDLE,
    (_S.CONNECTING, _I.SETTLE): _S.CONNECTING,
    (_S.OPEN, _I.DATA): _S.OPEN,
    (_S.OPEN, _I.EOF): _S.READ_CLOSED,
    (_S.OPEN, _I.SHUTDOWN): _S.WRITE_CLOSED,
    (_S.OPEN, _I.CLOSE): _S.CLOSING,
    (_S.OPEN, _I.LOST): _S.CLOSED,
    # The peer is done sending; our sends go on until the EOF's events ran
    # (or, half open, until we close).  Both ends done is a close.
    (_S.READ_CLOSED, _I.SEND): _S.READ_CLOSED,
    (_S.READ_CLOSED, _I.SETTLE): _S.READ_CLOSED,
    (_S.READ_CLOSED, _I.DISPATCHED): _S.CLOSING,
    (_S.READ_CLOSED, _I.CLOSE): _S.CLOSING,
    (_S.READ_CLOSED, _I.SHUTDOWN): _S.CLOSING,
    (_S.READ_CLOSED, _I.LOST): _S.CLOSED,
    # We are done sending: what we sent before settles, the peer's EOF ends it.
    (_S.WRITE_CLOSED, _I.SETTLE): _S.WRITE_CLOSED,
    (_S.WRITE_CLOSED, _I.DATA): _S.WRITE_CLOSED,
    (_S.WRITE_CLOSED, _I.EOF): _S.CLOSED,
    (_S.WRITE_CLOSED, _I.CLOSE): _S.CLOSING,
    (_S.WRITE_CLOSED, _I.LOST): _S.CLOSED,
    (_S.CLOSING, _I.LOST): _S.CLOSED,
    (_S.CLOSING, _I.EOF): _S.CLOSED,
    # Late or repeated inputs: accepted, nothing happens.
    (_S.READ_CLOSED, _I.EOF): _S.READ_CLOSED,
    (_S.WRITE_CLOSED, _I.SHUTDOWN): _S.WRITE_CLOSED,
    (_S.WRITE_CLOSED, _I.DISPATCHED): _S.WRITE_CLOSED,
    (_S.OPEN, _I.DISPATCHED): _S.OPEN,
    (_S.CLOSING, _I.DATA): _S.CLOSING,
    (_S.CLOSING, _I.CLOSE): _S.CLOSING,
    (_S.CLOSING, _I.SHUTDOWN): _S.CLOSING,
    (_S.CLOSING, _I.DISPATCHED): _S.CLOSING,
    (_S.CLOSED, _I.DATA): _S.CLOSED,
    (_S.CLOSED, _I.EOF): _S.CLOSED,
    (_S.CLOSED, _I.CLOSE): _S.CLOSED,
    (_S.CLOSED, _I.SHUTDOWN): _S.CLOSED,
    (_S.CLOSED, _I.DISPATCHED): _S.CLOSED,
    (_S.CLOSED, _I.LOST): _S.CLOSED,
    (_S.IDLE, _I.CLOSE): _S.IDLE,
    (_S.IDLE, _I.LOST): _S.IDLE,
    # An abort ends at once: what is unwritten fails, no waiting for it.
    (_S.CONNECTING, _I.ABORT): _S.CLOSED,
    (_S.OPEN, _I.ABORT): _S.CLOSED,
    (_S.READ_CLOSED, _I.ABORT): _S.CLOSED,
    (_S.WRITE_CLOSED, _I.ABORT): _S.CLOSED,
    (_S.CLOSING, _I.ABORT): _S.CLOSED,
    (_S.CLOSED, _I.ABORT): _S.CLOSED,
    (_S.IDLE, _I.ABORT): _S.IDLE,
    (_S.IDLE, _I.DISPATCHED): _S.IDLE,
    (_S.CONNECTING, _I.DISPATCHED): _S.CONNECTING,
}

#: User inputs a state refuses, and the code they are refused with.
_REFUSED: Final[Mapping[tuple[ConnectionState, Input], ErrorCode]] = {
    (_S.CONNECTING, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.HANDSHAKING, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.HANDSHAKING, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.HANDSHAKING, _I.SHUTDOWN): ErrorCode.NOT_CONNECTED,
    (_S.OPEN, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.READ_CLOSED, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.WRITE_CLOSED, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.CLOSING, _I.CONNECT): ErrorCode.CONNECTION_EXISTS,
    (_S.IDLE, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.CONNECTING, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.WRITE_CLOSED, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.CLOSING, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.CLOSED, _I.SEND): ErrorCode.NOT_CONNECTED,
    (_S.IDLE, _I.SHUTDOWN): ErrorCode.NOT_CONNECTED,
    (_S.CONNECTING, _I.SHUTDOWN): ErrorCode.NOT_CONNECTED,
}

#: States in which the socket is the connection's and its end is still to report.
_LIVE: Final = frozenset({_S.OPEN, _S.READ_CLOSED, _S.WRITE_CLOSED, _S.CLOSING})
#: States in which the peer may still send: the idle clock runs.
_IDLE_WATCHED: Final = frozenset({_S.OPEN, _S.WRITE_CLOSED})


# The same tables, one row per state, so that a step costs two lookups by Input.
_ROWS: Final = {
    state: {event: new for (at, event), new in _TRANSITIONS.items() if at is state}
    for state in ConnectionState
}
_REFUSED_ROWS: Final = {
    state: {event: code for (at, event), code in _REFUSED.items() if at is state}
    for state in ConnectionState
}


class ConnectionOptions:
    """The data options of a connection, validated once and shared by copies."""

    __slots__ = (
        "encoding",
        "framing",
        "half_open",
        "handshake_timeout",
        "idle_timeout",
        "keepalive",
        "line_ending",
        "max_message_size",
        "max_pending",
        "recv_buffer",
        "send_timeout",
    )

    # Typed object: each is checked here, with messages a compiled core's own checks lack.
    def __init__(
        self,
        *,
        encoding: object = "utf-8",
        framing: object = None,
        max_message_size: object = DEFAULT_MAX_MESSAGE_SIZE,
        recv_buffer: object = DEFAULT_RECV_BUFFER,
        line_ending: object = "\n",
        half_open: object = False,
        idle_timeout: object = None,
        send_timeout: object = None,
        max_pending: object = DEFAULT_MAX_PENDING,
        keepalive: object = False,
        handshake_timeout: object = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.encoding = validate_encoding(encoding)
        self.framing = validate_framing(framing)
        self.max_message_size = validate_max_message_size(max_message_size)
        self.recv_buffer = validate_recv_buffer(recv_buffer)
        self.line_ending = validate_line_ending(line_ending)
        if not isinstance(half_open, bool):
            raise TypeError(f"half_open must be a bool, not {type(half_open).__name__}")
        #: A peer's EOF leaves the connection open for our sends until we close.
        self.half_open = half_open
        #: Nothing received for this long (seconds) closes the connection (1008).
        self.idle_timeout = validate_timeout(idle_timeout, "idle_timeout")
        #: A send not written within this long closes the connection (1008).
        self.send_timeout = validate_timeout(send_timeout, "send_timeout")
        #: More bytes accepted and unwritten than this: a slow consumer (1009).
        self.max_pending = validate_max_pending(max_pending)
        #: The OS's TCP keepalive, which the binding sets on the socket.
        self.keepalive = validate_keepalive(keepalive)
        #: A TLS handshake not done within this long fails (1008); ``None``: no limit.
        self.handshake_timeout = validate_timeout(handshake_timeout, "handshake_timeout")

    def copy(self) -> ConnectionOptions:
        """Independent options with the same values."""
        return ConnectionOptions(
            encoding=self.encoding,
            framing=self.framing,
            max_message_size=self.max_message_size,
            recv_buffer=self.recv_buffer,
            line_ending=self.line_ending,
            half_open=self.half_open,
            idle_timeout=self.idle_timeout,
            send_timeout=self.send_timeout,
            max_pending=self.max_pending,
            keepalive=self.keepalive or False,
            handshake_timeout=self.handshake_timeout,
        )


class Connection:
    """The sans-I/O model of one TCP connection.

    *source* is the user-facing object events are about.  Inputs are method
    calls; outputs are the returned events, to dispatch in order.
    """

    closed: bool

    __slots__ = (
        "_aborted",
        "_attempt",
        "_dialed",
        "_expired",
        "_handshake_deadline",
        "_in_order",
        "_last_input",
        "_ledger",
        "_options",
        "_queue",
        "_raw_bytes",
        "_reader",
        "_refusals",
        "_row",
        "_sends",
        "_source",
        "_state",
        "asked",
        "bytes_in",
        "clocked",
        "closed",
        "ended_by",
        "epoch",
        "host",
        "messages_in",
        "remote",
        "sooner",
        "tls",
    )

    def __init__(
        self,
        source: object,
        options: ConnectionOptions | None = None,
        queue: Dispatcher | None = None,
    ) -> None:
        self._source = source
        #: Where :meth:`feed` and :meth:`settle` dispatch (the bindings' fast path).
        self._queue = queue
        self._options = options if options is not None else ConnectionOptions()
        self._move(ConnectionState.IDLE)
        self._ledger = SendLedger(source)
        self._reader = self._new_reader()
        #: Each read is one RECEIVED of its bytes: feed() needs no reader.
        self._raw_bytes = self._options.framing is _RAW and self._options.encoding is None
        self._aborted = False  # close() came while connecting
        self._in_order = True  # see ends_in_order
        #: Which connection this is (1 for the first; read it, the core sets it): a
        #: binding hands it back with the reports of that connection's reader or
        #: transport, and a report from one since replaced (a reconnect) is ignored.
        self.epoch = 0
        self._attempt = 0  # connects begun so far: names the one that counts
        #: Local and remote ``(ip, port)``, known from the first connection on.
        self.host: Address | None = None
        self.remote: Address | None = None
        options = self._options
        #: A deadline is configured: the inputs that take ``now`` need it.
        self.clocked = options.idle_timeout is not None or options.send_timeout is not None
        self._last_input = 0.0  # when bytes last arrived (or the connection was made)
        #: The last ``send`` may have brought :meth:`timer` forward (re-arm then).
        self.sooner = False
        #: The user asked for this connection's end (``close``, ``shutdown``):
        #: a client with ``reconnect`` does not dial again then.
        self.asked = False
        #: What ended the last connection (``None``: an orderly close).
        self.ended_by: BaseException | None = None
        #: Bytes read, and RECEIVED events made of them (statistics, every connection's).
        self.bytes_in = 0
        self.messages_in = 0
        #: What the last TLS handshake agreed on (``None``: plaintext).
        self.tls: TlsInfo | None = None
        self._handshake_deadline: float | None = None
        self._dialed = False  # the handshake is of a connect (not an accepted socket)
        self._expired = False  # the handshake's deadline passed

    def _new_reader(self) -> MessageReader:
        opts = self._options
        return MessageReader(opts.framing, opts.encoding, opts.max_message_size, opts.line_ending)

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._state

    @property
    def is_open(self) -> bool:
        """Connected in at least one direction, not closing (the seed's ``isAlive``)."""
        state = self._state  # compared by identity: an Enum member hashes slowly
        return state is _OPEN or state is _S.READ_CLOSED or state is _S.WRITE_CLOSED

    @property
    def live(self) -> bool:
        """The socket is this connection's, and its end has not been reported yet."""
        return self._state in _LIVE

    def current(self, epoch: int) -> bool:
        """The connection of *epoch* is this one, and its end is still to report."""
        return epoch == self.epoch and self._state in _LIVE

    @property
    def ends_in_order(self) -> bool:
        """This connection ends (or ended) in order: not aborted (by ``close(abort=True)``,
        a deadline or a limit), its transport not broken, and its sending side not
        shut down by ``shutdown()``.  Over TLS the binding then ends it with
        close_notify, where its I/O lets it (nothing half written)."""
        return self._in_order

    @property
    def write_closed(self) -> bool:
        """``shutdown()`` was accepted: the binding shuts the socket's sending side
        once the sends accepted before it are written."""
        return self._state is ConnectionState.WRITE_CLOSED

    @property
    def pending(self) -> int:
        """Sends accepted and not yet settled."""
        return len(self._ledger)

    @property
    def options(self) -> ConnectionOptions:
        """Encoding, framing, sizes."""
        return self._options

    @property
    def recv_buffer(self) -> int:
        """Most bytes read at once (``recvBuffer``)."""
        return self._options.recv_buffer

    @recv_buffer.setter
    def recv_buffer(self, value: object) -> None:
        size = validate_recv_buffer(value)
        # Copied first: a server's clients share its options until one changes.
        options = self._options.copy()
        options.recv_buffer = size
        self._options = options

    def _move(self, state: ConnectionState) -> None:
        self._state = state
        #: The socket, if any, must be closed now (an attribute: the bindings
        #: ask after every read and write).
        self.closed = state is ConnectionState.CLOSED
        self._row = _ROWS[state]
        self._refusals = _REFUSED_ROWS[state]
        # Whether a send leaves this state as it is: send() then needs no step.
        self._sends = self._row.get(_SEND) is state

    def _step(self, event: Input) -> ConnectionState:
        """Validate *event* against the tables and move; the one place that decides."""
        new = self._row.get(event)
        if new is None:
            code = self._refusals.get(event)
            if code is not None:
                raise SocketError(code)
            state = self._state
            raise LocalProtocolError(f"{event.name} is not allowed in state {state.name}")
        if new is not self._state:
            self._move(new)
        return new

    def _abort(self) -> None:
        """End at once (the user's abort, a deadline, a limit): out of order."""
        self._step(Input.ABORT)
        self._in_order = False

    def _disconnect(
        self, error: BaseException | None, send_error: SocketError | None = None
    ) -> list[Event]:
        """SENDFAIL for what is still open (with *send_error*, else 1001 around
        *error*), then the one DISCONNECT."""
        host, remote = self.host, self.remote
        if host is None or remote is None:  # pragma: no cover - OPEN implies both
            raise AssertionError("disconnect before connection_made")
        cause = (
            send_error if send_error is not None else SocketError(ErrorCode.NOT_CONNECTED, error)
        )
        events: list[Event] = list(self._ledger.fail_all(cause))
        try:
            tail = self._reader.end()
        except RemoteProtocolError as exc:
            logger.warning("connection %s -> %s: %s", self.host, self.remote, exc)
            tail = []
            error = error or exc
        self.ended_by = error
        # Data that completed before the end still arrives before DISCONNECT.
        events[:0] = self._messages(tail)
        events.append(Disconnected(source=self._source, host=host, remote=remote, error=error))
        if not self._raw_bytes:  # a raw bytes reader holds nothing: the next connection's too
            self._reader = self._new_reader()
        return events

    # -- connecting ------------------------------------------------------------

    def start_connect(self) -> int:
        """User ``connect()``: 1000 if already connected or connecting.

        Returns the attempt's number: a binding whose connects can overlap
        (one abandoned by ``close()``, then a new one) hands it back with the
        outcome, so that the abandoned one's is not taken for the new one's.
        """
        self._step(Input.CONNECT)
        self._attempt += 1
        self._aborted = False
        return self._attempt

    def _abandoned(self, attempt: int | None) -> bool:
        """This outcome is of a connect that ``close()`` (or a newer connect) gave up."""
        if attempt is not None and attempt != self._attempt:
            return True
        if self._state is ConnectionState.CLOSED and self._aborted:
            self._aborted = False  # reported once
            return True
        return False

    def connection_made(
        self,
        host: Address,
        remote: Address,
        *,
        attempt: int | None = None,
        now: float | None = None,
        tls: TlsInfo | None = None,
    ) -> list[Event]:
        """The socket is connected (at *now*, which starts the idle clock), and
        its TLS handshake, if any, agreed on *tls*: CONNECTED.

        If ``close()`` came while connecting (or *attempt* is not the latest
        connect), this raises SocketError 1006 and the binding closes the new
        socket.
        """
        if self._abandoned(attempt):
            raise SocketError(
                ErrorCode.CONNECT_FAILED, ConnectionAbortedError("closed while connecting")
            )
        self._step(Input.MADE)
        self.tls = tls
        self._handshake_deadline = None
        self._last_input = self._clock(now)
        self.asked = False
        self.ended_by = None
        self._in_order = True
        self.epoch += 1
        self._ledger.new_epoch()
        self.host, self.remote = host, remote
        return [Connected(source=self._source, host=host, remote=remote)]

    def connect_failed(self, exc: BaseException, *, attempt: int | None = None) -> SocketError:
        """The connect failed: back to IDLE; returns the 1006 error to raise."""
        if self._abandoned(attempt):
            return SocketError(ErrorCode.CONNECT_FAILED, exc)
        self._step(Input.CONNECT_FAILED)
        return translate_os_error(OsContext.CONNECT, exc)

    # -- TLS -------------------------------------------------------------------

    @property
    def handshaking(self) -> bool:
        """The TLS handshake is under way (neither done, failed, late nor closed)."""
        return self._state is ConnectionState.HANDSHAKING

    def handshake_started(
        self,
        host: Address,
        remote: Address,
        *,
        attempt: int | None = None,
        now: float | None = None,
    ) -> None:
        """The socket is connected and its TLS handshake begins at *now* (needed
        when ``handshake_timeout`` is set): :meth:`timer` says when it is late.

        1006 as in :meth:`connection_made` if ``close()`` came while connecting.
        """
        if self._abandoned(attempt):
            raise SocketError(
                ErrorCode.CONNECT_FAILED, ConnectionAbortedError("closed while connecting")
            )
        self._dialed = self._state is ConnectionState.CONNECTING
        self._step(Input.HANDSHAKE)
        self._expired = False
        self.host, self.remote = host, remote
        limit = self._options.handshake_timeout
        if limit is None:
            self._handshake_deadline = None
        elif now is None:
            raise LocalProtocolError("a handshake with a deadline needs now")
        else:
            self._handshake_deadline = now + limit

    def handshake_done(
        self, tls: TlsInfo, *, attempt: int | None = None, now: float | None = None
    ) -> list[Event]:
        """The handshake succeeded, agreeing on *tls*: CONNECTED, between the
        addresses :meth:`handshake_started` was given (the socket may have
        lost them since).  Closed or late meanwhile: 1006, and the binding
        closes the socket.
        """
        if self._abandoned(attempt) or self._state is not ConnectionState.HANDSHAKING:
            raise SocketError(
                ErrorCode.CONNECT_FAILED, ConnectionAbortedError("closed during the TLS handshake")
            )
        host, remote = self.host, self.remote
        assert host is not None and remote is not None  # set when the handshake began
        return self.connection_made(host, remote, now=now, tls=tls)

    def handshake_failed(self, exc: BaseException, *, attempt: int | None = None) -> SocketError:
        """The handshake failed with *exc* (or the binding stopped it once
        :meth:`handle_timer` said it was late): returns the 1006 for ``connect``
        to raise, ``err`` the TLS error or 1008.  A dialing client is IDLE
        again; an accepted connection is closed and the failure logged."""
        cause: BaseException = SocketError(ErrorCode.TIMED_OUT) if self._expired else exc
        if self._abandoned(attempt) or self._state is not ConnectionState.HANDSHAKING:
            return SocketError(ErrorCode.CONNECT_FAILED, cause)  # closed, or late: told already
        if self._dialed:
            self._step(Input.CONNECT_FAILED)
        else:
            logger.warning("TLS handshake with %s failed: %s", _peer(self.remote), _reason(cause))
            self._move(ConnectionState.CLOSED)
        return SocketError(ErrorCode.CONNECT_FAILED, cause)

    def _handshake_late(self) -> None:
        """The handshake's deadline passed: it has failed with 1008."""
        self._expired = True
        if self._dialed:
            self._step(Input.CONNECT_FAILED)
            return
        logger.warning(
            "TLS handshake with %s failed: not done within %g s",
            _peer(self.remote),
            self._options.handshake_timeout,
        )
        self._move(ConnectionState.CLOSED)

    # -- sending ---------------------------------------------------------------

    def send(self, data: Data, now: float | None = None) -> tuple[int, bytes]:
        """User ``send(data)`` at *now*: ``(ticket, bytes to write)``.

        Raises ``TypeError``/``ValueError`` for bad data and SocketError 1001
        when not connected; nothing changes then.  A ticket of ``OVERFLOW``
        means the connection is a slow consumer: write nothing, dispatch
        :meth:`overflowed`, close the socket.
        """
        # The common cases without a call: bytes go as they are, raw framing adds nothing.
        options = self._options
        payload = data if type(data) is bytes else encode_payload(data, options.encoding)
        if options.framing is not _RAW:
            payload = self._reader.frame(payload)
        if not self._sends:  # refused (or a move): the table decides
            self._step(_SEND)
        ledger = self._ledger
        # One send bigger than the limit may go to a connection with nothing pending.
        if ledger.bytes and ledger.bytes + len(payload) > options.max_pending:
            return OVERFLOW, b""
        if now is None:  # inline, not _clock(): this is every send's path
            if self.clocked:
                raise LocalProtocolError("this connection has deadlines: pass now")
            now = 0.0
        else:
            # Only a send that becomes the oldest unwritten one can bring the next
            # deadline forward: the binding re-arms its timer only then.
            self.sooner = options.send_timeout is not None and not ledger
        return ledger.open(data, len(payload), now), payload

    def overflowed(self, data: Data) -> list[Event]:
        """After ``send`` said ``OVERFLOW`` for *data*: SENDFAIL for it and for
        every pending send, then DISCONNECT, each with SocketError 1009."""
        if not self._sends:  # closed meanwhile: only this send's failure is left
            return [SendFailed(source=self._source, data=data, error=SocketError(1009))]
        pending = self._ledger.bytes
        logger.warning(
            "connection %s -> %s: slow consumer, %d bytes unwritten (max_pending %d): closed",
            self.host,
            self.remote,
            pending,
            self._options.max_pending,
        )
        self._ledger.open(data)
        self._abort()
        return self._disconnect(
            SocketError(ErrorCode.SLOW_CONSUMER), SocketError(ErrorCode.SLOW_CONSUMER)
        )

    def _clock(self, now: float | None) -> float:
        """*now*, which a connection with deadlines must be given."""
        if now is not None:
            return now
        if self.clocked:
            raise LocalProtocolError("this connection has deadlines: pass now")
        return 0.0

    def sent(self, ticket: int) -> list[Event]:
        """*ticket* was written in full: SENDED (and DISCONNECT if a close waited)."""
        self._step(Input.SETTLE)
        events: list[Event] = list(self._ledger.sent(ticket, late_ok=not self.is_open))
        return self._after_settle(events)

    def send_failed(self, ticket: int, exc: BaseException) -> list[Event]:
        """*ticket* could not be written: SENDFAIL.

        The stream may now hold part of it, so the binding should also report
        :meth:`connection_lost`.
        """
        self._step(Input.SETTLE)
        events: list[Event] = list(self._ledger.failed(ticket, exc, late_ok=not self.is_open))
        return self._after_settle(events)

    def _after_settle(self, events: list[Event]) -> list[Event]:
        if self._state is ConnectionState.CLOSING and not self._ledger:
            self._move(ConnectionState.CLOSED)
            events += self._disconnect(None)
        return events

    # -- receiving -------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> list[Event]:
        """Bytes from the peer at *now*: RECEIVED per message (and DISCONNECT on a
        framing error).

        With raw framing each RECEIVED holds at most ``recv_buffer`` bytes,
        however much *data* a binding read at once.
        """
        state = self._step(Input.DATA)
        if state is not ConnectionState.OPEN and state is not ConnectionState.WRITE_CLOSED:
            return []
        self._last_input = self._clock(now)
        self.bytes_in += len(data)
        try:
            payloads = self._reader.feed(data, self._options.recv_buffer)
        except RemoteProtocolError as exc:
            return self._framing_failed(exc)
        return self._messages(payloads)

    def _messages(self, payloads: Sequence[str | bytes]) -> list[Event]:
        """A RECEIVED for each of *payloads*, counted."""
        self.messages_in += len(payloads)
        source = self._source
        return [Received(source=source, data=p) for p in payloads]

    def _framing_failed(self, exc: RemoteProtocolError) -> list[Event]:
        """The peer broke the framing: the whole messages before it, then the end."""
        logger.error("connection %s -> %s closed: %s", self.host, self.remote, exc)
        self._move(ConnectionState.CLOSED)
        self._reader = self._new_reader()
        return self._messages(exc.complete) + self._disconnect(exc)

    def feed(self, data: bytes, now: float | None = None) -> bool:
        """:meth:`receive_data`, pushed onto the dispatch queue: ``True`` if the
        caller must drain.  On an open connection no event object is built."""
        queue = self._queue
        assert queue is not None, "feed() needs the connection's Dispatcher"
        if self._state is not _OPEN:
            return queue.push(self.receive_data(data, now))
        if now is not None:
            self._last_input = now
        elif self.clocked:
            raise LocalProtocolError("this connection has deadlines: pass now")
        self.bytes_in += len(data)
        if self._raw_bytes and len(data) <= self._options.recv_buffer:
            self.messages_in += 1
            return queue.received(self._source, [data])  # MessageReader.feed's answer, inline
        try:
            payloads = self._reader.feed(data, self._options.recv_buffer)
        except RemoteProtocolError as exc:
            return queue.push(self._framing_failed(exc))
        self.messages_in += len(payloads)
        return queue.received(self._source, payloads)

    def settle(self, ticket: int) -> bool:
        """:meth:`sent`, pushed onto the dispatch queue: ``True`` if the caller
        must drain.  A SENDED nobody would see (no callback, no stream) is not made."""
        queue = self._queue
        assert queue is not None, "settle() needs the connection's Dispatcher"
        state = self._state
        up = state is _OPEN or state is _S.READ_CLOSED or state is _S.WRITE_CLOSED
        if up and queue.quiet(SENT_SLOT):
            self._ledger.settle(ticket)
            return False
        return queue.push(self.sent(ticket))

    def receive_eof(self) -> list[Event]:
        """The peer will send no more: what the framer and decoder held.

        The connection can still send (READ_CLOSED); once the binding has run
        every event up to here it reports :meth:`eof_dispatched`.  With
        ``half_open`` the EOF itself is one more RECEIVED, with empty data.
        After our ``shutdown()`` it is the end: the rest, then DISCONNECT.
        """
        before = self._state
        if before is ConnectionState.OPEN:
            try:
                tail = self._reader.end()
            except RemoteProtocolError as exc:
                logger.warning("connection %s -> %s: %s", self.host, self.remote, exc)
                self._move(ConnectionState.CLOSED)
                return self._disconnect(exc)
            self._step(Input.EOF)
            source = self._source
            events = self._messages(tail)
            if self._options.half_open:
                empty = b"" if self._options.encoding is None else ""
                events.append(Received(source=source, data=empty, eof=True))
            return events
        self._step(Input.EOF)
        if before is ConnectionState.WRITE_CLOSED or before is ConnectionState.CLOSING:
            return self._disconnect(None)
        return []

    def eof_dispatched(self) -> list[Event]:
        """Every event up to the peer's EOF has run (replies sent from them are
        accepted): close as ``close()`` does, unless ``half_open``."""
        if self._state is ConnectionState.READ_CLOSED and self._options.half_open:
            return []
        return self._close_step(Input.DISPATCHED)

    # -- closing ---------------------------------------------------------------

    def close(self, abort: bool = False) -> list[Event]:
        """User ``close()``: DISCONNECT now, or once the accepted sends settle.

        With *abort* it ends now: the unwritten sends fail, and the binding
        resets the connection (RST) instead of closing it.
        """
        before = self._state
        self.asked = True
        if before is ConnectionState.CONNECTING or (
            before is ConnectionState.HANDSHAKING and self._dialed
        ):
            self._aborted = True
        if not abort:
            return self._close_step(Input.CLOSE)
        self._abort()
        if before in _LIVE:
            return self._disconnect(None)
        return []

    # -- statistics ------------------------------------------------------------

    def stats(self, reconnects: int = 0) -> Stats:
        """What this client has done so far, every connection of it (and the
        *reconnects* its redialer counted)."""
        ledger = self._ledger
        return Stats(
            bytes_in=self.bytes_in,
            messages_in=self.messages_in,
            bytes_out=ledger.sent_bytes,
            messages_out=ledger.sent_count,
            sends_failed=ledger.failed_count,
            reconnects=reconnects,
        )

    # -- time ------------------------------------------------------------------

    def timer(self) -> float | None:
        """The next deadline (the handshake's, idle, or the oldest unwritten send's)."""
        if self._state is ConnectionState.HANDSHAKING:
            return self._handshake_deadline
        if not self.clocked or self._state not in _LIVE:
            return None
        options = self._options
        deadline: float | None = None
        if options.idle_timeout is not None and self._state in _IDLE_WATCHED:
            deadline = self._last_input + options.idle_timeout
        if options.send_timeout is not None:
            oldest = self._ledger.oldest_time()
            if oldest is not None:
                due = oldest + options.send_timeout
                if deadline is None or due < deadline:
                    deadline = due
        return deadline

    def handle_timer(self, now: float) -> list[Event]:
        """What is due at *now*: a stalled send or an idle peer closes the
        connection (SENDFAIL for the unwritten, DISCONNECT, each with 1008);
        the binding then closes the socket.  A TLS handshake still under way at
        its deadline fails: the binding stops it, then reports
        :meth:`handshake_failed`.  Early or late calls do nothing."""
        if self._state is ConnectionState.HANDSHAKING:
            deadline = self._handshake_deadline
            if deadline is not None and now >= deadline:
                self._handshake_late()
            return []
        if not self.clocked or self._state not in _LIVE:
            return []
        options = self._options
        send_timeout = options.send_timeout
        if send_timeout is not None:
            oldest = self._ledger.oldest_time()
            if oldest is not None and now >= oldest + send_timeout:
                logger.warning(
                    "connection %s -> %s: a send was not written within %g s: closed",
                    self.host,
                    self.remote,
                    send_timeout,
                )
                return self._time_out()
        idle = options.idle_timeout
        if idle is not None and self._state in _IDLE_WATCHED and now >= self._last_input + idle:
            logger.info(
                "connection %s -> %s: nothing received for %g s: closed",
                self.host,
                self.remote,
                idle,
            )
            return self._time_out()
        return []

    def _time_out(self) -> list[Event]:
        self._abort()
        timed_out = SocketError(ErrorCode.TIMED_OUT)
        return self._disconnect(timed_out, timed_out)

    def shutdown(self) -> list[Event]:
        """User ``shutdown()``: no more sends (1001 if not connected).

        From OPEN the binding then shuts the socket's sending side (see
        :attr:`write_closed`); after the peer's EOF it is a close.
        """
        events = self._close_step(Input.SHUTDOWN)
        self.asked = True
        if self._state is ConnectionState.WRITE_CLOSED:
            self._in_order = False  # our FIN goes: no close_notify after it
        return events

    def _close_step(self, event: Input) -> list[Event]:
        """*event* and, if it led to CLOSING with nothing left to settle, the end."""
        before = self._state
        closing = self._step(event) is ConnectionState.CLOSING
        if closing and before is not ConnectionState.CLOSING and not self._ledger:
            self._move(ConnectionState.CLOSED)
            return self._disconnect(None)
        return []

    def connection_lost(
        self, exc: BaseException | None = None, *, epoch: int | None = None
    ) -> list[Event]:
        """The socket is gone (error, or a close finished): fail the rest, DISCONNECT.

        With *epoch*, a report about a connection that has been replaced (or
        whose end was reported already) is ignored.
        """
        if epoch is not None and not self.current(epoch):
            return []
        before = self._state
        if exc is not None and before in _LIVE:
            self._in_order = False  # the transport broke
        self._step(Input.LOST)
        if before in _LIVE:
            return self._disconnect(exc)
        return []


def _peer(remote: Address | None) -> str:
    """*remote* as the warnings write it."""
    if remote is None:  # pragma: no cover - a handshake begins with both addresses
        return "an unknown peer"
    return f"{remote[0]}:{remote[1]}" if ":" not in remote[0] else f"[{remote[0]}]:{remote[1]}"


def _reason(exc: BaseException) -> str:
    """Why a handshake failed, in a few words."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
