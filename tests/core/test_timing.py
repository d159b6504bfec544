"""Time as an input (SPEC section 9): deadlines, slow consumers, abort, backoff.

The core is driven with plain numbers for ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from jfsocket.core import (
    OVERFLOW,
    Backoff,
    Connection,
    ConnectionOptions,
    ConnectionState,
    Disconnected,
    ErrorCode,
    Event,
    GaveUp,
    Keepalive,
    LocalProtocolError,
    Received,
    Reconnecting,
    Redialer,
    SendFailed,
    Sent,
    ServerModel,
    SocketError,
    validate_reconnect,
)

HOST = ("127.0.0.1", 40000)
REMOTE = ("127.0.0.1", 50000)


def made(now: float = 0.0, **options: object) -> Connection:
    conn = Connection("me", ConnectionOptions(**options))
    conn.start_connect()
    conn.connection_made(HOST, REMOTE, now=now)
    return conn


def codes(events: list[Event]) -> list[tuple[str, int | None]]:
    """Each event's kind and, for SENDFAIL/DISCONNECT, the code of its error."""
    out: list[tuple[str, int | None]] = []
    for event in events:
        if isinstance(event, SendFailed):
            assert isinstance(event.error, SocketError)
            out.append(("SENDFAIL", int(event.error.errno)))
        elif isinstance(event, Disconnected):
            error = event.error
            out.append(("DISCONNECT", int(error.errno) if isinstance(error, SocketError) else None))
        else:
            out.append((type(event).__name__, None))
    return out


# -- options ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["idle_timeout", "send_timeout"])
@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf])
def test_a_timeout_must_be_positive_and_finite(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match=name):
        ConnectionOptions(**{name: bad})


@pytest.mark.parametrize("name", ["idle_timeout", "send_timeout"])
@pytest.mark.parametrize("bad", ["1", True, [1]])
def test_a_timeout_must_be_a_number(name: str, bad: object) -> None:
    with pytest.raises(TypeError, match=name):
        ConnectionOptions(**{name: bad})


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-5, ValueError), (1.5, TypeError)])
def test_max_pending_is_a_positive_int(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_pending"):
        ConnectionOptions(max_pending=bad)


def test_keepalive_forms() -> None:
    assert ConnectionOptions().keepalive is None
    assert ConnectionOptions(keepalive=False).keepalive is None
    assert ConnectionOptions(keepalive=True).keepalive == Keepalive()
    custom = Keepalive(idle=5, interval=1.5, count=3)
    assert ConnectionOptions(keepalive=custom).keepalive is custom
    assert custom.whole_seconds() == (5, 2, 3)
    with pytest.raises(TypeError, match="keepalive"):
        ConnectionOptions(keepalive=30)
    with pytest.raises(ValueError, match="idle"):
        Keepalive(idle=0)
    with pytest.raises(ValueError, match="count"):
        Keepalive(count=0)


def test_options_copy_keeps_the_deadlines() -> None:
    opts = ConnectionOptions(idle_timeout=3, send_timeout=4, max_pending=10, keepalive=True)
    copy = opts.copy()
    assert (copy.idle_timeout, copy.send_timeout, copy.max_pending, copy.keepalive) == (
        3.0,
        4.0,
        10,
        Keepalive(),
    )


def test_new_codes() -> None:
    assert SocketError(ErrorCode.TIMED_OUT).errno == 1008
    assert SocketError(1008).message == "timed out"
    assert SocketError(1009).message.startswith("slow consumer")


# -- idle timeout ---------------------------------------------------------------


def test_no_deadline_without_timeouts() -> None:
    conn = made()
    assert conn.timer() is None
    assert conn.handle_timer(1e9) == []
    assert not conn.clocked


def test_idle_deadline_moves_with_received_bytes() -> None:
    conn = made(now=100.0, idle_timeout=5, encoding=None)
    assert conn.timer() == 105.0
    assert conn.receive_data(b"x", now=103.0) == [Received(source="me", data=b"x")]
    assert conn.timer() == 108.0
    assert conn.handle_timer(107.9) == []  # never early
    assert conn.state is ConnectionState.OPEN


def test_idle_timeout_fails_pending_sends_then_disconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = made(now=0.0, idle_timeout=5, encoding=None)
    conn.send(b"a", now=1.0)
    caplog.set_level(logging.INFO, logger="jfsocket")
    events = conn.handle_timer(5.0)
    assert codes(events) == [("SENDFAIL", 1008), ("DISCONNECT", 1008)]
    assert conn.closed
    assert "nothing received for 5 s" in caplog.text
    assert conn.handle_timer(10.0) == []  # once
    assert conn.timer() is None


def test_the_peers_eof_stops_the_idle_clock() -> None:
    conn = made(now=0.0, idle_timeout=5, half_open=True)
    conn.receive_eof()
    assert conn.timer() is None
    assert conn.handle_timer(100.0) == []


def test_a_connection_with_deadlines_needs_now() -> None:
    conn = Connection("me", ConnectionOptions(idle_timeout=1))
    conn.start_connect()
    with pytest.raises(LocalProtocolError, match="now"):
        conn.connection_made(HOST, REMOTE)


def test_feed_takes_now() -> None:
    from jfsocket.core import CallbackRegistry, Dispatcher, Role

    registry = CallbackRegistry(Role.CLIENT)
    conn = Connection("me", ConnectionOptions(idle_timeout=2, encoding=None), Dispatcher(registry))
    conn.start_connect()
    conn.connection_made(HOST, REMOTE, now=0.0)
    conn.feed(b"x", now=1.5)
    assert conn.timer() == 3.5
    with pytest.raises(LocalProtocolError, match="now"):
        conn.feed(b"x")


# -- send timeout -----------------------------------------------------------------


def test_send_deadline_is_the_oldest_unwritten_send() -> None:
    conn = made(now=0.0, send_timeout=2, encoding=None)
    assert conn.timer() is None  # nothing unwritten
    first, _ = conn.send(b"a", now=1.0)
    conn.send(b"b", now=1.5)
    assert conn.timer() == 3.0
    assert conn.sent(first) == [Sent(source="me", data=b"a")]
    assert conn.timer() == 3.5
    events = conn.handle_timer(3.5)
    assert codes(events) == [("SENDFAIL", 1008), ("DISCONNECT", 1008)]
    assert isinstance(events[0], SendFailed) and events[0].data == b"b"


def test_the_earlier_of_idle_and_send_deadlines() -> None:
    conn = made(now=0.0, send_timeout=2, idle_timeout=10, encoding=None)
    assert conn.timer() == 10.0
    conn.send(b"a", now=1.0)
    assert conn.timer() == 3.0


def test_a_close_waiting_for_a_stalled_send_ends_at_the_send_deadline() -> None:
    conn = made(now=0.0, send_timeout=2, encoding=None)
    conn.send(b"a", now=0.0)
    assert conn.close() == []  # waits for the send
    assert conn.timer() == 2.0
    assert codes(conn.handle_timer(2.0)) == [("SENDFAIL", 1008), ("DISCONNECT", 1008)]


# -- slow consumer ----------------------------------------------------------------------


def test_over_max_pending_is_a_slow_consumer(caplog: pytest.LogCaptureFixture) -> None:
    conn = made(max_pending=10, encoding=None)
    conn.send(b"123456")  # unwritten
    assert conn.pending == 1
    ticket, payload = conn.send(b"12345")  # 11 > 10
    assert (ticket, payload) == (OVERFLOW, b"")
    assert conn.state is ConnectionState.OPEN  # nothing changed until the binding says so
    events = conn.overflowed(b"12345")
    assert codes(events) == [("SENDFAIL", 1009), ("SENDFAIL", 1009), ("DISCONNECT", 1009)]
    assert [e.data for e in events if isinstance(e, SendFailed)] == [b"123456", b"12345"]
    assert conn.closed
    assert "slow consumer" in caplog.text


def test_one_big_send_to_an_idle_connection_is_not_a_slow_consumer() -> None:
    conn = made(max_pending=10, encoding=None)
    ticket, payload = conn.send(bytes(100))
    assert ticket != OVERFLOW and len(payload) == 100


def test_written_bytes_no_longer_count() -> None:
    conn = made(max_pending=10, encoding=None)
    for _ in range(5):
        ticket, _ = conn.send(b"12345678")
        conn.sent(ticket)


# -- abort ----------------------------------------------------------------------------


def test_abort_fails_the_unwritten_at_once() -> None:
    conn = made(encoding=None)
    conn.send(b"a")
    events = conn.close(abort=True)
    assert codes(events) == [("SENDFAIL", 1001), ("DISCONNECT", None)]
    assert conn.closed
    assert conn.close(abort=True) == []


def test_abort_while_a_close_waits() -> None:
    conn = made(encoding=None)
    conn.send(b"a")
    assert conn.close() == []
    assert codes(conn.close(abort=True)) == [("SENDFAIL", 1001), ("DISCONNECT", None)]


def test_abort_while_connecting_abandons_the_connect() -> None:
    conn = Connection("me")
    attempt = conn.start_connect()
    assert conn.close(abort=True) == []
    with pytest.raises(SocketError) as info:
        conn.connection_made(HOST, REMOTE, attempt=attempt)
    assert info.value.errno == 1006


# -- backoff ------------------------------------------------------------------------


def test_backoff_defaults_and_validation() -> None:
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum, backoff.factor, backoff.jitter) == (0.5, 30, 2, 0.5)
    assert backoff.attempts is None and backoff.reset_after == 10
    with pytest.raises(ValueError, match="maximum"):
        Backoff(initial=5, maximum=1)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)
    with pytest.raises(ValueError, match="attempts"):
        Backoff(attempts=0)
    with pytest.raises(TypeError, match="initial"):
        Backoff(initial="1")


@given(
    initial=st.floats(0.01, 5),
    extra=st.floats(0, 100),
    factor=st.floats(1, 4),
    jitter=st.floats(0, 1, exclude_max=True),
    attempt=st.integers(1, 5000),
    random=st.floats(0, 1, exclude_max=True),
)
def test_backoff_delay_is_bounded(
    initial: float, extra: float, factor: float, jitter: float, attempt: int, random: float
) -> None:
    backoff = Backoff(initial=initial, maximum=initial + extra, factor=factor, jitter=jitter)
    try:
        base = min(backoff.maximum, initial * factor ** (attempt - 1))
    except OverflowError:
        base = backoff.maximum
    delay = backoff.delay(attempt, random)
    assert 0 < delay <= backoff.maximum
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9


# -- a state machine with a fake clock ---------------------------------------------------


class TimedConnection(RuleBasedStateMachine):
    """Random sends, writes, data, closes and clock steps over a connection with
    every deadline: a due deadline is always reported by ``timer()``, never
    fires early, fires once, and every send settles exactly once."""

    @initialize(
        idle=st.one_of(st.none(), st.floats(0.5, 5)),
        send=st.one_of(st.none(), st.floats(0.5, 5)),
        limit=st.integers(1, 40),
    )
    def start(self, idle: float | None, send: float | None, limit: int) -> None:
        self.now = 0.0
        self.conn = made(
            now=0.0, idle_timeout=idle, send_timeout=send, max_pending=limit, encoding=None
        )
        self.unsettled: dict[int, bytes] = {}
        self.settled: list[bytes] = []
        self.sent_data: list[bytes] = []
        self.disconnects = 0
        self.last: list[Event] = []

    def _take(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, (Sent, SendFailed)):
                assert isinstance(event.data, bytes)
                self.settled.append(event.data)
            elif isinstance(event, Disconnected):
                self.disconnects += 1
                self.unsettled.clear()
        self.last = events

    @rule(size=st.integers(1, 20))
    def send(self, size: int) -> None:
        data = bytes([len(self.sent_data) % 256]) * size
        if self.conn.state not in (ConnectionState.OPEN, ConnectionState.READ_CLOSED):
            with pytest.raises(SocketError) as info:
                self.conn.send(data, now=self.now)
            assert info.value.errno == 1001
            return
        ticket, _ = self.conn.send(data, now=self.now)
        self.sent_data.append(data)
        if ticket == OVERFLOW:
            self._take(self.conn.overflowed(data))
            end = self.last[-1]
            assert isinstance(end, Disconnected) and isinstance(end.error, SocketError)
            assert end.error.errno == 1009
        else:
            self.unsettled[ticket] = data

    @precondition(lambda self: bool(self.unsettled))
    @rule(data=st.data())
    def write_one(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(sorted(self.unsettled)))
        del self.unsettled[ticket]
        self._take(self.conn.sent(ticket))

    @rule()
    def receive(self) -> None:
        self._take(self.conn.receive_data(b"x", now=self.now))

    @rule(abort=st.booleans())
    def close(self, abort: bool) -> None:
        self._take(self.conn.close(abort=abort))

    @rule(step=st.floats(0, 3))
    def advance(self, step: float) -> None:
        deadline = self.conn.timer()
        self.now += step
        events = self.conn.handle_timer(self.now)
        if deadline is None or self.now < deadline:
            assert events == []  # never early, nothing unannounced
        else:
            assert events and isinstance(events[-1], Disconnected)
            error = events[-1].error
            assert isinstance(error, SocketError) and error.errno == 1008
            assert self.conn.handle_timer(self.now) == []  # once
        self._take(events)

    @invariant()
    def exactly_once(self) -> None:
        assert self.disconnects <= 1
        assert len(self.settled) == len(set(map(id, self.settled)))
        if self.conn.closed:
            assert self.disconnects == 1
            assert sorted(self.settled) == sorted(self.sent_data)
            assert self.conn.timer() is None

    @invariant()
    def deadline_is_current(self) -> None:
        deadline = self.conn.timer()
        if deadline is not None:
            assert deadline >= 0


TestTimedConnection = TimedConnection.TestCase
TestTimedConnection.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# -- a server's stop with a grace period -----------------------------------------------


def _listening_server() -> ServerModel[str]:
    model: ServerModel[str] = ServerModel("srv", "127.0.0.1", 0)
    model.start()
    model.listening(("127.0.0.1", 5000))
    model.accept(("127.0.0.1", 1), "a")
    model.accept(("127.0.0.1", 2), "b")
    return model


def test_stop_without_grace_closes_every_client_at_once() -> None:
    model = _listening_server()
    assert model.stop(now=10.0) == ["a", "b"]
    assert model.handle_timer(10.0) == ["a", "b"]  # also those accepted meanwhile
    assert model.timer() == -math.inf  # due at once


def test_stop_with_grace_waits_then_closes_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jfsocket")
    model = _listening_server()
    assert model.stop(grace=5, now=10.0) == []
    assert model.timer() == 15.0
    assert model.handle_timer(14.9) == []  # never early
    model.remove(("127.0.0.1", 1))  # "a" finished by itself
    assert model.handle_timer(15.0) == ["b"]
    assert "grace period over, closing 1 clients" in caplog.text
    model.remove(("127.0.0.1", 2))
    assert model.timer() is None  # nobody left to wait for
    model.stopped()
    assert model.handle_timer(100.0) == []


def test_a_grace_period_must_be_positive() -> None:
    model = _listening_server()
    with pytest.raises(ValueError, match="grace"):
        model.stop(grace=0)
    with pytest.raises(TypeError, match="grace"):
        model.stop(grace="soon")
    assert model.is_listening  # refused: nothing changed


# -- reconnecting -----------------------------------------------------------------------


def test_redialer_backs_off_and_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff(initial=1, maximum=10, factor=2, jitter=0.5, attempts=2, reset_after=5)
    redial = Redialer("c", backoff)
    redial.connected(now=0.0)
    error = ConnectionResetError()
    (first,) = redial.lost(now=1.0, random=0.5, error=error)
    assert first == Reconnecting(source="c", attempt=1, delay=1.0, error=error)
    assert redial.timer() == 2.0
    assert not redial.handle_timer(1.9)  # never early
    assert redial.handle_timer(2.0)
    assert not redial.handle_timer(2.0)  # once
    (second,) = redial.lost(now=2.1, random=0.0, error=None)  # the redial failed
    assert isinstance(second, Reconnecting) and second.attempt == 2 and second.delay == 1.0
    assert redial.handle_timer(3.1)
    (gave_up,) = redial.lost(now=3.2, random=0.0, error=None)
    assert gave_up == GaveUp(source="c", attempts=2, error=None)
    assert not redial.active and redial.timer() is None
    assert "gave up reconnecting after 2 tries" in caplog.text


def test_a_connection_that_lasted_resets_the_count() -> None:
    redial = Redialer("c", Backoff(initial=1, maximum=30, jitter=0, reset_after=5))
    redial.connected(now=0.0)
    redial.lost(now=0.1, random=0.5, error=None)  # try 1
    redial.handle_timer(10.0)
    redial.lost(now=10.0, random=0.5, error=None)  # try 2: delay 2
    redial.handle_timer(20.0)
    redial.connected(now=20.0)
    (notice,) = redial.lost(now=26.0, random=0.5, error=None)  # lasted 6 s >= 5
    assert isinstance(notice, Reconnecting) and notice.attempt == 1 and notice.delay == 1.0


def test_a_close_the_user_asked_for_stops_redialing() -> None:
    redial = Redialer("c", Backoff())
    redial.connected(now=0.0)
    assert redial.lost(now=1.0, random=0.5, error=None, asked=True) == []
    assert not redial.active and redial.timer() is None


def test_reconnect_forms() -> None:
    assert validate_reconnect(None) is None and validate_reconnect(False) is None
    assert validate_reconnect(True) == Backoff()
    with pytest.raises(TypeError, match="reconnect"):
        validate_reconnect(3)


def test_the_core_knows_who_ended_a_connection() -> None:
    conn = made(encoding=None)
    conn.receive_eof()
    conn.eof_dispatched()  # the peer closed: not asked
    assert conn.closed and not conn.asked and conn.ended_by is None
    conn = made()
    conn.connection_lost(ConnectionResetError())
    assert not conn.asked and isinstance(conn.ended_by, ConnectionResetError)
    conn = made()
    conn.close()
    assert conn.asked


def test_a_failed_redial_backs_off_unless_the_user_connected() -> None:
    redial = Redialer("c", Backoff(initial=1, maximum=5, jitter=0))
    redial.connected(now=0.0)
    redial.lost(now=0.0, random=0.5, error=None)
    refused = ConnectionRefusedError()
    (notice,) = redial.failed(now=1.0, random=0.5, error=SocketError(1006, refused))
    assert isinstance(notice, Reconnecting) and notice.attempt == 2 and notice.error is refused
    assert redial.failed(now=2.0, random=0.5, error=SocketError(1000)) == []
    assert not redial.active
