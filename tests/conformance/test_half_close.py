"""Half-close (SPEC section 3): what arrives before a peer's EOF can still be
answered, ``shutdown()`` closes our sending side only, ``half_open=True`` keeps
sending after the peer's EOF; and line framing's CRLF line ends."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from .driver import NONE, ClientH, Driver, Ev, RawPeer

#: Our side of a connection to a plain peer: (our object, the peer, our label,
#: our address's label, the peer's address's label).
Pair = tuple[ClientH, RawPeer, str, str, str]
KINDS = ["server", "client"]
#: How long a big echo may take end to end.
BIG_WAIT = 30.0


def _echo(ev: Ev) -> None:
    ev.source.send(ev.data)


def _pair(d: Driver, kind: str, action: Callable[[Ev], object] | None, **options: Any) -> Pair:
    """A connection between a plain peer and ours, *action* run on our RECEIVED.

    ``server``: the plain peer is a client of our TcpServer, ours is the server's
    side; ``client``: our TcpClient connected to a plain listener.
    """
    if kind == "server":
        server = d.server(**options)
        if action is not None:
            server.on("RECEIVED", action)
        peer = d.raw_connect(server.host)
        return server.side(peer), peer, "server:raw1", "server", "raw1"
    listener = d.raw_listener()
    client = d.client(**options)
    if action is not None:
        client.on("RECEIVED", action)
    client.connect(*listener.host)
    return client, listener.accept(), "client1", "client1", "rawserver"


def _names(d: Driver, ours: ClientH) -> list[str]:
    """*ours*' event names, in order, as recorded."""
    return [event for event, _ in d.recorder.raw_args(ours.obj) if event != "note"]


def _data(d: Driver, ours: ClientH, event: str) -> list[object]:
    """The ``data`` of each of *ours*' *event* callbacks, as passed."""
    return [args[0] for name, args in d.recorder.raw_args(ours.obj) if name == event]


def _no_errors_logged(d: Driver) -> None:
    # A reply refused inside a callback is logged, not raised: the log shows it.
    assert d.logs() == [], d.logs()


# -- the peer's EOF: what came before it can be answered ------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_unterminated_last_line_is_answered(d: Driver, kind: str) -> None:
    """Line framing, an echo: the peer writes ``one\\ntwo`` and EOF; it reads both lines
    back, then EOF; the unterminated ``two`` was RECEIVED and its echo SENDED before
    DISCONNECT."""
    _, peer, label, mine, theirs = _pair(d, kind, _echo, framing="line")
    peer.sendall(b"one\ntwo")
    peer.shutdown_write()
    assert peer.read_until_eof() == b"one\ntwo\n"
    connection = ("CONNECTED", mine, theirs)
    end = ("DISCONNECT", mine, theirs)
    d.expect(
        {label: [connection, ("RECEIVED", "one"), ("RECEIVED", "two"), end]},
        partial=True,
        only=("CONNECTED", "RECEIVED", "DISCONNECT"),
    )
    d.expect(
        {label: [connection, ("SENDED", "one"), ("SENDED", "two"), end]},
        partial=True,
        only=("CONNECTED", "SENDED", "SENDFAIL", "DISCONNECT"),
    )
    _no_errors_logged(d)


@pytest.mark.parametrize("kind", KINDS)
def test_unfinished_character_at_eof_is_echoed_exactly(d: Driver, kind: str) -> None:
    """Default framing and encoding, an echo: ``abc\\xe4`` then EOF comes back as exactly
    those bytes, then EOF (the decoder's tail is delivered escaped while we can send)."""
    ours, peer, _, _, _ = _pair(d, kind, _echo)
    peer.sendall(b"abc\xe4")
    peer.shutdown_write()
    assert peer.read_until_eof() == b"abc\xe4"
    ours.wait_for("DISCONNECT")
    received = _data(d, ours, "RECEIVED")
    assert "".join(map(str, received)) == "abc\udce4", received
    assert _data(d, ours, "SENDED") == received
    names = _names(d, ours)
    assert names[0] == "CONNECTED" and names[-1] == "DISCONNECT", names
    assert set(names[1:-1]) == {"RECEIVED", "SENDED"}, names
    _no_errors_logged(d)


class _Writer:
    """Writes *data* to a plain peer from its own thread, then sends EOF."""

    def __init__(self, peer: RawPeer, data: bytes) -> None:
        self.error: BaseException | None = None
        self._peer = peer
        self._data = data
        self._thread = threading.Thread(target=self._run, name="conformance writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for start in range(0, len(self._data), 64 << 10):
                self._peer.sendall(self._data[start : start + (64 << 10)])
            self._peer.shutdown_write()
        except BaseException as exc:  # reported by join, in the test's thread
            self.error = exc

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer is still writing"
        assert self.error is None, self.error


@pytest.mark.parametrize(
    ("kind", "encoding"),
    [("server", NONE), ("server", None), ("client", None)],
    ids=["server-bytes", "server-utf8", "client-utf8"],
)
def test_big_echo_is_byte_exact_under_half_close(d: Driver, kind: str, encoding: object) -> None:
    """5 MiB of random bytes (ending in an unfinished UTF-8 character) written while
    the echo is read, then EOF: every byte comes back, in order, then EOF."""
    data = random.Random(11).randbytes((5 << 20) - 1) + b"\xe4"
    ours, peer, _, _, _ = _pair(d, kind, _echo, encoding=encoding, recv_buffer=64 << 10)
    d.real_sockets("a writing thread beside the reading one")
    writer = _Writer(peer, data)
    echoed = peer.read_until_eof(BIG_WAIT)
    writer.join(BIG_WAIT)
    assert len(echoed) == len(data)
    assert echoed == data
    ours.wait_for("DISCONNECT")
    names = _names(d, ours)
    assert names.count("SENDED") == names.count("RECEIVED"), "one SENDED per echo"
    assert "SENDFAIL" not in names and names[-1] == "DISCONNECT"
    _no_errors_logged(d)


@pytest.mark.parametrize("kind", KINDS)
def test_eof_right_after_full_records_is_answered(d: Driver, kind: str) -> None:
    """The peer writes 128 KiB (over TLS: eight full records) and EOF at once, then
    reads: all of it comes back, then EOF.  A reader that runs on past a full
    record without looking would meet the FIN inside TLS, which ends the session
    (OpenSSL 3: a fatal error, and an alert instead of our replies)."""
    data = random.Random(5).randbytes(128 << 10)
    ours, peer, _, _, _ = _pair(d, kind, _echo, encoding=NONE, recv_buffer=64 << 10)
    peer.sendall(data)  # the echo (128 KiB) fits in the sockets' buffers meanwhile
    peer.shutdown_write()
    assert peer.read_until_eof(BIG_WAIT) == data
    ours.wait_for("DISCONNECT")
    names = _names(d, ours)
    assert names.count("SENDED") == names.count("RECEIVED"), "one SENDED per echo"
    assert "SENDFAIL" not in names and names[-1] == "DISCONNECT"
    _no_errors_logged(d)


# -- shutdown(): our sending side only --------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_is_eof_for_the_peer_that_can_still_send(d: Driver, kind: str) -> None:
    """shutdown: the peer reads what was sent before it, then EOF; send is then 1001 and
    a second shutdown is a no-op; what the peer sends next is RECEIVED; the peer's
    close ends it with DISCONNECT."""
    ours, peer, label, mine, theirs = _pair(d, kind, None)
    ours.send("before")
    ours.send(b" and more")
    ours.shutdown()
    assert peer.read_until_eof() == b"before and more"
    with pytest.raises(d.SocketError) as info:
        ours.send("after")
    assert getattr(info.value, "errno", None) == 1001
    ours.shutdown()
    peer.sendall(b"still talking")
    d.wait_until(
        lambda: "".join(map(str, ours.received())) == "still talking", what="the peer's data"
    )
    assert ours.count("DISCONNECT") == 0
    peer.close()
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("SENDED", "before"),
                ("SENDED", b" and more"),
                ("RECEIVED", "still talking"),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )
    _no_errors_logged(d)


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_waits_for_sends_before_it(d: Driver, kind: str) -> None:
    """Inside a callback, a send far bigger than the socket buffers, a small one, then
    shutdown: the peer reads all of both, then EOF; both get SENDED."""
    big = random.Random(4).randbytes(8 << 20)

    def reply(ev: Ev) -> None:
        ev.source.send(big)
        ev.source.send("end")
        ev.source.shutdown()

    _, peer, label, mine, theirs = _pair(d, kind, reply)
    peer.sendall(b"g")  # one byte: one RECEIVED, one reply
    got = peer.read_until_eof(BIG_WAIT)
    assert len(got) == len(big) + 3
    assert got == big + b"end"
    peer.close()
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("RECEIVED", "g"),
                ("SENDED", big),
                ("SENDED", "end"),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )
    _no_errors_logged(d)


class _Reader:
    """Reads a plain peer until EOF from its own thread."""

    def __init__(self, peer: RawPeer, timeout: float) -> None:
        self.got: bytes | None = None
        self.error: BaseException | None = None
        self._peer = peer
        self._timeout = timeout
        self._thread = threading.Thread(target=self._run, name="conformance reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.got = self._peer.read_until_eof(self._timeout)
        except BaseException as exc:  # reported by join, in the test's thread
            self.error = exc

    def join(self, timeout: float) -> bytes:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the reader is still reading"
        assert self.error is None and self.got is not None, self.error
        return self.got


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_while_streaming(d: Driver, kind: str) -> None:
    """shutdown while another thread streams sends: every send that returned reaches the
    peer, in order, before its EOF, with its SENDED; the next send is 1001."""
    d.real_sockets("a reading thread")
    ours, peer, _, _, _ = _pair(d, kind, None, encoding=NONE)
    items = [bytes([65 + i % 26]) * 1000 for i in range(20_000)]
    pump = d.pump(ours.send, items)
    reader = _Reader(peer, BIG_WAIT)
    d.wait_until(lambda: len(pump.accepted) > 100, what="the stream to flow")
    ours.shutdown()
    pump.join()
    got = reader.join(BIG_WAIT)
    assert getattr(pump.error, "errno", None) == 1001, pump.error
    accepted = len(pump.accepted)
    assert len(got) == accepted * 1000
    assert got == b"".join(items[:accepted])
    names = _names(d, ours)
    assert names.count("SENDED") == accepted and "SENDFAIL" not in names
    peer.close()
    ours.wait_for("DISCONNECT")
    _no_errors_logged(d)


def test_shutdown_not_connected_is_1001(d: Driver) -> None:
    """shutdown on a client that never connected: SocketError 1001, no event."""
    client = d.client()
    with pytest.raises(d.SocketError) as info:
        client.shutdown()
    assert getattr(info.value, "errno", None) == 1001
    assert d.trace() == {}


# -- half_open=True: the peer's EOF is an empty RECEIVED, we go on sending ---------------


@pytest.mark.parametrize("end", ["close", "shutdown"])
@pytest.mark.parametrize("kind", KINDS)
def test_half_open_keeps_sending_after_the_peers_eof(d: Driver, kind: str, end: str) -> None:
    """half_open=True: the peer sends ``x`` and EOF; RECEIVED 'x', then an empty RECEIVED;
    our sends still reach the peer; our close (or shutdown) ends it: DISCONNECT, and
    the peer sees EOF."""
    ours, peer, label, mine, theirs = _pair(d, kind, None, half_open=True)
    peer.sendall(b"x")
    peer.shutdown_write()
    d.expect(
        {label: [("CONNECTED", mine, theirs), ("RECEIVED", "x"), ("RECEIVED", "")]},
        partial=True,
    )
    assert ours.isAlive
    ours.send("after eof")
    assert peer.recv_exactly(9) == b"after eof"
    ours.send(b" again")
    assert peer.recv_exactly(6) == b" again"
    assert ours.count("DISCONNECT") == 0
    if end == "close":
        ours.close()
    else:
        ours.shutdown()
    assert peer.read_until_eof() == b""
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("RECEIVED", "x"),
                ("RECEIVED", ""),
                ("SENDED", "after eof"),
                ("SENDED", b" again"),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )
    _no_errors_logged(d)


def test_half_open_eof_under_line_framing_and_bytes(d: Driver) -> None:
    """half_open=True, line framing, encoding=None: the unterminated tail, then the EOF
    as an empty bytes RECEIVED; a reply from that callback is written."""

    def on_received(ev: Ev) -> None:
        if ev.data == b"":
            ev.source.send(b"bye")

    ours, peer, label, mine, theirs = _pair(
        d, "server", on_received, framing="line", encoding=NONE, half_open=True
    )
    peer.sendall(b"one\ntwo")
    peer.shutdown_write()
    assert peer.recv_exactly(4) == b"bye\n"
    ours.close()
    assert peer.read_until_eof() == b""
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("RECEIVED", b"one"),
                ("RECEIVED", b"two"),
                ("RECEIVED", b""),
                ("SENDED", b"bye"),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_default_is_not_half_open(d: Driver, kind: str) -> None:
    """half_open=False (the default): the peer's EOF is no RECEIVED, and with nothing
    left to send it closes (DISCONNECT, the peer sees EOF)."""
    _, peer, label, mine, theirs = _pair(d, kind, None)
    peer.sendall(b"x")
    peer.shutdown_write()
    assert peer.read_until_eof() == b""
    d.expect(
        {label: [("CONNECTED", mine, theirs), ("RECEIVED", "x"), ("DISCONNECT", mine, theirs)]},
        partial=True,
    )


# -- CRLF under line framing --------------------------------------------------------------


def test_crlf_is_one_line_end(d: Driver) -> None:
    """Line framing: ``\\r\\n`` ends a line and its ``\\r`` is not part of the message,
    also when the two bytes come in separate reads; a lone ``\\r`` is data."""
    server = d.server(framing="line", recv_buffer=1)
    peer = d.raw_connect(server.host)
    peer.sendall(b"a\r\nb\nc\r\nd\re\n\r\n")
    d.expect(
        {
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", "a"),
                ("RECEIVED", "b"),
                ("RECEIVED", "c"),
                ("RECEIVED", "d\re"),
                ("RECEIVED", ""),
            ]
        },
        partial=True,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_line_ending_is_what_send_appends(d: Driver, kind: str) -> None:
    """line_ending='\\r\\n' (a server's sides inherit it): ``x`` goes out as ``x\\r\\n``;
    a message holding a line end (or ending in ``\\r``, which would read back as one)
    is a ValueError; the default appends ``\\n``."""
    ours, peer, _, _, _ = _pair(d, kind, None, framing="line", line_ending="\r\n")
    ours.send("x")
    ours.send(b"")
    assert peer.recv_exactly(5) == b"x\r\n\r\n"
    for bad in ("two\nlines", "two\r\nlines", b"end\r\n", "end\n", "end\r"):
        with pytest.raises(ValueError, match=r"newline|line end"):
            ours.send(bad)
    assert ours.isAlive
    plain, plain_peer, _, _, _ = _pair(d, "client", None, framing="line")
    plain.send("y")
    assert plain_peer.recv_exactly(2) == b"y\n"


def test_crlf_client_to_line_server_round_trip(d: Driver) -> None:
    """A line_ending='\\r\\n' client and a default line server: the messages arrive whole,
    without the ``\\r``, both ways."""
    server = d.server(framing="line")
    server.on("RECEIVED", _echo)
    client, side = d.connected(server, framing="line", line_ending="\r\n")
    messages = ["first", "", "é" * 100, "a\rb", "last"]
    for message in messages:
        client.send(message)
    d.expect(
        {
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                *[("RECEIVED", m) for m in messages],
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                *[("RECEIVED", m) for m in messages],
            ],
        },
        partial=True,
        only=("CONNECTED", "RECEIVED"),
    )
    side.wait_for("SENDED", len(messages))


@pytest.mark.parametrize("cls", ["TcpServer", "TcpClient"])
def test_bad_line_ending_is_refused(d: Driver, cls: str) -> None:
    """line_ending other than '\\n' or '\\r\\n': ValueError (TypeError if not a str) naming it."""
    args: tuple[object, ...] = ("127.0.0.1", 0) if cls == "TcpServer" else ()
    for bad, error in (("\r", ValueError), ("", ValueError), ("x\n", ValueError), (10, TypeError)):
        with pytest.raises(error, match="line_ending"):
            d.construct(cls, *args, framing="line", line_ending=bad)
