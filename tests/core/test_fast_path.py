"""Connection.feed / settle, the bindings' fast path, against the event API.

They must dispatch exactly what ``push(receive_data(...))`` and
``push(sent(...))`` would, in the same order, with the same errors: only
whether an event object is built may differ.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from jfsocket.core import (
    CallbackRegistry,
    Connection,
    ConnectionOptions,
    Dispatcher,
    EventTypes,
    LocalProtocolError,
    Role,
)

HOST, REMOTE = ("127.0.0.1", 1), ("127.0.0.1", 2)
Trace = list[tuple[object, ...]]


def _plain(value: object) -> object:
    """Exceptions compare by identity: compare what they say."""
    return repr(value) if isinstance(value, BaseException) else value


def _pair(fast: bool, **options: object) -> tuple[Connection, Dispatcher, Trace]:
    registry = CallbackRegistry(Role.CLIENT)
    queue = Dispatcher(registry)
    conn = Connection("me", ConnectionOptions(**options), queue)
    trace: Trace = []
    for key in ("onReceived", "onDisconnect", "onSendFail"):
        registry.bind(key, lambda *args, key=key: trace.append((key, *map(_plain, args[1:]))))
    conn.start_connect()
    queue.push(conn.connection_made(HOST, REMOTE))
    return conn, queue, trace


def _drain(queue: Dispatcher, run: bool) -> None:
    if run:
        queue.run()


Script = Callable[[Connection, Dispatcher, bool], None]


def _feed(conn: Connection, queue: Dispatcher, fast: bool, data: bytes) -> None:
    _drain(queue, conn.feed(data) if fast else queue.push(conn.receive_data(data)))


def _settle(conn: Connection, queue: Dispatcher, fast: bool, ticket: int) -> None:
    _drain(queue, conn.settle(ticket) if fast else queue.push(conn.sent(ticket)))


def _same(script: Script, **options: object) -> Trace:
    traces = []
    for fast in (False, True):
        conn, queue, trace = _pair(fast, **options)
        script(conn, queue, fast)
        traces.append(trace)
    assert traces[0] == traces[1]
    return traces[1]


def test_data_and_replies() -> None:
    """Raw and line data, sends settled with nobody listening for SENDED."""

    def script(conn: Connection, queue: Dispatcher, fast: bool) -> None:
        _feed(conn, queue, fast, b"one\ntw")
        ticket, _ = conn.send("x")
        _settle(conn, queue, fast, ticket)
        _feed(conn, queue, fast, b"o\n")
        assert conn.pending == 0

    assert _same(script, framing="line") == [("onReceived", "one"), ("onReceived", "two")]


def test_a_framing_error_is_the_same_end() -> None:
    """An oversized line: the whole lines before it, SENDFAIL for what is pending, DISCONNECT."""

    def script(conn: Connection, queue: Dispatcher, fast: bool) -> None:
        conn.send("q")
        _feed(conn, queue, fast, b"ok\ntoo long\n")
        assert conn.closed

    trace = _same(script, framing="line", max_message_size=4)
    assert [entry[0] for entry in trace] == ["onReceived", "onSendFail", "onDisconnect"]


def test_settling_while_closing_and_late() -> None:
    """The last settle of a close gives DISCONNECT; a settle of a ticket the end failed
    already is ignored; one never issued is a LocalProtocolError, on both paths."""

    def script(conn: Connection, queue: Dispatcher, fast: bool) -> None:
        first, _ = conn.send("a")
        second, _ = conn.send("b")
        _drain(queue, queue.push(conn.close()))
        _settle(conn, queue, fast, first)
        _drain(queue, queue.push(conn.connection_lost(OSError("gone"))))
        _settle(conn, queue, fast, second)  # late: failed already
        with pytest.raises(LocalProtocolError):
            _settle(conn, queue, fast, 99)

    trace = _same(script)
    assert [entry[0] for entry in trace] == ["onSendFail", "onDisconnect"]


def test_sended_is_built_when_someone_listens() -> None:
    """With a SENDED callback the fast path dispatches SENDED like the event API."""
    conn, queue, trace = _pair(True)
    queue._registry.bind(EventTypes.SENDED, lambda c, d: trace.append(("onSended", d)))
    ticket, _ = conn.send("hi")
    assert conn.settle(ticket) is True
    _drain(queue, True)
    assert trace == [("onSended", "hi")]


def test_feed_after_the_peers_eof_and_without_a_queue() -> None:
    """Data after EOF is the binding's mistake on both paths; feed needs a queue."""
    conn, queue, _ = _pair(True)
    queue.push(conn.receive_eof())
    with pytest.raises(LocalProtocolError):
        conn.feed(b"late")
    bare = Connection("me")
    with pytest.raises(AssertionError, match="Dispatcher"):
        bare.feed(b"x")
    with pytest.raises(AssertionError, match="Dispatcher"):
        bare.settle(0)


# -- datagrams ----------------------------------------------------------------------


def _receiver(encoding: str | None = None) -> tuple[object, Dispatcher, Trace]:
    from jfsocket.core import ReceiverModel

    registry = CallbackRegistry(Role.RECEIVER)
    queue = Dispatcher(registry)
    model = ReceiverModel("rx", 5007, encoding=encoding, recv_buffer=8)
    trace: Trace = []
    registry.bind("onReceived", lambda *args: trace.append(args))
    return model, queue, trace


def test_a_whole_datagram_reaches_its_callback_with_no_event_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """feed(): the callback gets (source, data); no Received is made and the
    sender's address is not normalised (neither would be seen)."""
    from jfsocket.core import ReceiverModel, multicast

    model, queue, trace = _receiver(encoding="utf-8")
    assert isinstance(model, ReceiverModel)

    def no_event(**_: object) -> None:
        raise AssertionError("an event was built")

    monkeypatch.setattr(multicast, "Received", no_event)
    monkeypatch.setattr(multicast, "normalize_sockaddr", no_event)
    assert model.feed(b"hi \xff", ("127.0.0.1", 9), queue) is True
    queue.run()
    assert trace == [("rx", "hi \udcff")]


def test_a_cut_a_long_or_a_streamed_datagram_is_the_full_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Truncated (by the OS or here) or seen by a stream: the typed event, with the
    normalised remote and the flag, exactly as receive_datagram() makes it."""
    from jfsocket.core import Received, ReceiverModel

    model, queue, trace = _receiver()
    assert isinstance(model, ReceiverModel)
    assert model.feed(b"0123456789", ("::ffff:127.0.0.1", 9, 0, 0), queue) is True
    queue.run()
    assert trace == []  # a cut datagram has no callback
    assert "was cut" in caplog.text
    seen: list[object] = []

    class Stream:
        def send_nowait(self, event: object) -> None:
            seen.append(event)

        def close(self) -> None:
            pass

    queue.subscribe(Stream())
    assert queue.streamed
    assert model.feed(b"ok", ("127.0.0.1", 9), queue) is True
    queue.run()
    assert trace == [("rx", b"ok")]
    assert seen[-1] == Received(source="rx", data=b"ok", remote=("127.0.0.1", 9))


def test_a_whole_bytes_datagram_is_its_bytes() -> None:
    model, queue, trace = _receiver(encoding=None)
    from jfsocket.core import ReceiverModel

    assert isinstance(model, ReceiverModel)
    assert model.feed(b"\xff\x00", ("127.0.0.1", 9), queue) is True
    queue.run()
    assert trace == [("rx", b"\xff\x00")]
