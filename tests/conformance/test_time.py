"""Deadlines, slow consumers, abort, keepalive and connect timeouts on every binding
(SPEC section 9): the same events and codes, whatever runs them."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time

import pytest
from jfsocket.core import Backoff, Keepalive, SocketError

from .driver import HUGE, NONE, ClientH, Driver, RawPeer

#: Generous: a deadline is met within this much after it passes.
SLACK = 2.0


def _codes(d: Driver, handle: ClientH, event: str = "SENDFAIL") -> list[int]:
    """The SocketError codes that *handle*'s SENDFAIL callbacks were given."""
    codes = []
    for name, args in d.recorder.raw_args(handle.obj):
        if name == event:
            error = args[1]
            assert isinstance(error, SocketError), error
            codes.append(int(error.errno))
    return codes


def _logged(d: Driver) -> list[str]:
    """The ``jfsocket`` log lines so far."""
    return [line.message for line in d.recorder.logs()]


def _stalled(d: Driver, host: tuple[str, int]) -> RawPeer:
    """A plain client that never reads, with a small receive buffer."""
    return d.raw_connect(host, rcvbuf=4096)


def test_idle_timeout_closes_a_silent_peer(d: Driver, caplog: pytest.LogCaptureFixture) -> None:
    """A peer that connects and says nothing: DISCONNECT once idle_timeout passes
    (logged at INFO), and the peer sees the end of the stream."""
    caplog.set_level(logging.INFO, logger="jfsocket")
    server = d.server(idle_timeout=0.3)
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    connected = time.monotonic()
    side.wait_for("DISCONNECT", timeout=0.3 + SLACK)
    assert time.monotonic() - connected < 0.3 + 0.5  # SPEC: within the timeout + 0.5 s
    assert peer.read_until_eof() == b""
    assert "nothing received for 0.3 s" in caplog.text


def test_idle_timeout_on_a_client(d: Driver) -> None:
    """A TcpClient whose server never speaks: its own DISCONNECT at idle_timeout."""
    listener = d.raw_listener()
    client = d.client(idle_timeout=0.3)
    client.connect(*listener.host)
    peer = listener.accept()
    client.wait_for("DISCONNECT", timeout=0.3 + SLACK)
    assert peer.read_until_eof() == b""
    assert not client.isAlive


def test_send_timeout_fails_a_send_the_peer_does_not_read(d: Driver) -> None:
    """A send of more than the buffers hold, to a peer that never reads: SENDFAIL
    with 1008 once send_timeout passes, then DISCONNECT; no SENDED."""
    server = d.server(encoding=NONE, send_timeout=0.3, max_pending=HUGE * 2)
    peer = _stalled(d, server.host)
    side = server.side(peer)
    side.send(bytes(HUGE))  # returns once it has failed
    side.wait_for("SENDFAIL", timeout=0.3 + SLACK)
    side.wait_for("DISCONNECT")
    assert _codes(d, side) == [1008]
    assert side.count("SENDED") == 0


def test_a_slow_consumer_is_closed_and_holds_nobody(d: Driver) -> None:
    """A server broadcasting to one stalled and four reading clients: the four get
    every byte, the stalled one is closed with 1009 for each unwritten send."""
    d.real_sockets("reading threads")
    server = d.server(encoding=NONE, max_pending=512 << 10)
    stalled = _stalled(d, server.host)
    readers = [d.raw_connect(server.host) for _ in range(4)]
    stalled_side = server.side(stalled)
    reader_sides = [server.side(peer) for peer in readers]
    chunk, rounds = bytes(range(256)) * 256, 96  # 64 KiB x 96 = 6 MiB
    got: dict[int, bytes] = {}

    def read(n: int) -> None:
        got[n] = readers[n].recv_exactly(len(chunk) * rounds)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(len(readers))]
    for thread in threads:
        thread.start()
    pump = d.pump(server.send, [chunk] * rounds)
    for thread in threads:
        thread.join(30)
    pump.join()
    assert [got.get(n) == chunk * rounds for n in range(len(readers))] == [True] * 4
    stalled_side.wait_for("DISCONNECT")
    codes = _codes(d, stalled_side)
    assert codes and set(codes) == {1009}
    for side in reader_sides:
        side.wait_for("SENDED", rounds)
        assert side.count("SENDFAIL") == 0 and side.count("DISCONNECT") == 0
    assert any("slow consumer" in line for line in _logged(d))


def test_abort_resets_the_connection(d: Driver) -> None:
    """close(abort=True): the plain peer sees a reset, not an orderly end."""
    listener = d.raw_listener()
    client = d.client()
    client.connect(*listener.host)
    peer = listener.accept()
    client._call("close", True)
    client.wait_for("DISCONNECT")
    with pytest.raises(ConnectionResetError):
        peer.recv_some()


def test_keepalive_is_set_on_the_socket(d: Driver) -> None:
    """keepalive=Keepalive(...): SO_KEEPALIVE and its three times, read back
    from the OS on the connection's descriptor."""
    listener = d.raw_listener()
    client = d.client(keepalive=Keepalive(idle=7, interval=3, count=4))
    client.connect(*listener.host)
    listener.accept()
    d.real_sockets("the OS's socket options")
    sock = _view(d, client)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4


def _view(d: Driver, client: ClientH) -> socket.socket:
    """A socket on a duplicate of *client*'s descriptor, to read its options."""
    obj = client.obj
    if getattr(obj, "_sock", None) is not None:  # threaded
        fd = obj._sock.fileno()
    elif getattr(obj, "_stream", None) is not None:  # trio
        fd = obj._stream.socket.fileno()
    else:  # asyncio: the transport's socket
        fd = obj._proto.transport.get_extra_info("socket").fileno()
    view = socket.socket(fileno=socket.dup(fd))
    d._keep(view)
    return view


def test_connect_timeout(d: Driver) -> None:
    """A listener whose accept queue is full never answers the SYN: connect with
    a timeout raises 1006 with a TimeoutError, and the client can be used again."""
    d.real_sockets("a full accept queue")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    d._keep(sock)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    filler = socket.create_connection(sock.getsockname())  # the queue's one place
    d._keep(filler)
    client = d.client()
    with pytest.raises(SocketError) as info:
        client.runner.call(functools.partial(client.obj.connect, timeout=0.3), *sock.getsockname())
    assert info.value.errno == 1006
    assert isinstance(info.value.err, TimeoutError)
    listener = d.raw_listener()
    client.connect(*listener.host)  # IDLE again: it can connect elsewhere
    client.wait_for("CONNECTED")


@pytest.mark.parametrize("bad", [0, -1, "1"])
def test_bad_timeouts_are_refused(d: Driver, bad: object) -> None:
    error = TypeError if isinstance(bad, str) else ValueError
    with pytest.raises(error, match="idle_timeout"):
        d.construct("TcpServer", "127.0.0.1", 0, idle_timeout=bad)


def _not_served(host: tuple[str, int]) -> None:
    """A connection to *host* is refused, or reset or closed at once: not a client
    (the listener may still be closing when the attempt reaches it)."""
    try:
        late = socket.create_connection(host, timeout=5)
    except (ConnectionRefusedError, ConnectionResetError):  # reset: closed mid-handshake
        return
    with late:
        late.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # reset: not served either
            assert late.recv(1) == b""


def test_stop_with_grace_lets_clients_finish(d: Driver) -> None:
    """stop(grace): no new connections at once; a connected client keeps working
    and, once it closes, stop returns (well before the period), STOPED last."""
    server = d.server(encoding=NONE)
    server.on("RECEIVED", lambda ev: ev.source.send(ev.data))  # an echo
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    grace = 30.0
    stopping = d.pump(lambda _item: server.stop(grace), [grace])
    d.wait_until(lambda: not server.isAlive, what="the stop to begin")
    _not_served(server.host)
    peer.sendall(b"still here")
    assert peer.recv_exactly(10) == b"still here"  # served during the grace period
    assert stopping.sending(grace)
    peer.close()
    stopping.join()
    side.wait_for("DISCONNECT")
    server.wait_for("STOPED")
    assert d.recorder.raw_args(server.obj)[-1][0] == "STOPED"


def test_stop_with_grace_closes_the_rest_when_it_ends(
    d: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that does not leave: closed once the grace period is over, then STOPED."""
    caplog.set_level(logging.INFO, logger="jfsocket")
    server = d.server()
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    server.stop(0.3)
    assert side.count("DISCONNECT") == 1
    assert server.count("STOPED") == 1
    assert peer.read_until_eof() == b""
    assert "grace period over, closing 1 clients" in caplog.text


def test_reconnect_after_the_server_restarts(d: Driver) -> None:
    """reconnect=Backoff(...): the server goes away and comes back on the same
    port; the client fires DISCONNECT, redials until it is back, fires CONNECTED
    again and works; close() ends it."""
    first = d.server()
    port = first.host[1]
    client = d.client(reconnect=Backoff(initial=0.05, maximum=0.2, jitter=0))
    client.connect(*first.host)
    client.wait_for("CONNECTED")
    first.stop()
    client.wait_for("DISCONNECT")
    assert not client.isAlive and client.get("reconnecting")
    with pytest.raises(SocketError) as info:  # no hidden queue while it is down
        client.send("lost")
    assert info.value.errno == 1001
    second = d.server(port=port)
    second.on("RECEIVED", lambda ev: ev.source.send(ev.data))
    client.wait_for("CONNECTED", 2, timeout=10)
    client.send("again")
    d.wait_until(lambda: client.received() == ["again"], what="the echo")
    assert not client.get("reconnecting")  # up again
    client.close()
    client.wait_for("DISCONNECT", 2)
    assert not client.get("reconnecting")
    second.stop()
    assert client.count("CONNECTED") == 2  # closed by the user: no more dialing


def test_close_while_waiting_to_redial_ends_it(d: Driver, caplog: pytest.LogCaptureFixture) -> None:
    """close() during the backoff: no more tries, and nothing is left running."""
    caplog.set_level(logging.INFO, logger="jfsocket")
    server = d.server()
    client = d.client(reconnect=Backoff(initial=0.2, maximum=0.2, jitter=0))
    client.connect(*server.host)
    server.stop()
    client.wait_for("DISCONNECT")
    d.wait_until(lambda: "reconnecting in" in caplog.text, what="the first backoff")
    client.close()
    tries = caplog.text.count("reconnecting in")
    listener = d.raw_listener()  # a later dial, were there one, would not be refused
    client.connect(*listener.host)  # usable by hand afterwards
    listener.accept()
    client.close()
    assert caplog.text.count("reconnecting in") == tries


def test_reconnect_gives_up_after_its_attempts(d: Driver, caplog: pytest.LogCaptureFixture) -> None:
    """attempts=2 against a port nobody listens on: two tries, then it gives up."""
    server = d.server()
    client = d.client(reconnect=Backoff(initial=0.02, maximum=0.05, jitter=0, attempts=2))
    client.connect(*server.host)
    server.stop()
    client.wait_for("DISCONNECT")
    d.wait_until(lambda: "gave up reconnecting after 2 tries" in caplog.text, what="GaveUp")
    assert client.count("CONNECTED") == 1
    assert not client.get("reconnecting")
