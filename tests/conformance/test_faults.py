"""Exactly once under faults: peers that reset, stop reading, vanish or half-close,
and a server stopped while everything is busy (SPEC section 2's delivery rules)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from .driver import HUGE, ClientH, Driver, Pump, RawPeer
from .trace import ERROR, squash

#: Each side of a stuck connection: (our object, the plain peer, our label,
#: our address's label, the peer's address's label).
Stuck = tuple[ClientH, RawPeer, str, str, str]


def _stuck(d: Driver, kind: str) -> Stuck:
    """A connection whose plain peer never reads (a small receive buffer).

    ``client``: our TcpClient to a plain listener; ``server``: a plain client of
    our TcpServer, ours being the server's side.
    """
    if kind == "client":
        listener = d.raw_listener(rcvbuf=4096)
        client = d.client()
        client.connect(*listener.host)
        return client, listener.accept(), "client1", "client1", "rawserver"
    server = d.server()
    peer = d.raw_connect(server.host, rcvbuf=4096)
    return server.side(peer), peer, "server:raw1", "server", "raw1"


def _settled_once(d: Driver, ours: ClientH, accepted: list[object]) -> None:
    """Every accepted send got exactly one SENDED or SENDFAIL, by identity; nothing else did."""
    settled = Counter(
        id(args[0])
        for event, args in d.recorder.raw_args(ours.obj)
        if event in ("SENDED", "SENDFAIL")
    )
    assert sorted(settled) == sorted(id(a) for a in accepted)
    assert set(settled.values()) <= {1}


def _stuck_big_send(d: Driver, ours: ClientH, peer: RawPeer) -> tuple[bytes, Pump]:
    """Three small sends, then one far bigger than every buffer, left writing."""
    for data in ("a", "b", "c"):
        ours.send(data)
    big = bytes(HUGE)
    pump = d.pump(ours.send, [big])
    # Its first bytes reached the peer: the send has begun and cannot finish.
    d.wait_until(lambda: pump.sending(big) and peer.queued() > 3, what="the big send to block")
    return big, pump


@pytest.mark.parametrize("kind", ["client", "server"])
def test_peer_vanishes_while_a_send_is_stuck(d: Driver, kind: str) -> None:
    """The peer stops reading, a send blocks, the peer resets: that send returns, with
    exactly one SENDFAIL, then one DISCONNECT; later sends are 1001."""
    ours, peer, label, mine, theirs = _stuck(d, kind)
    big, pump = _stuck_big_send(d, ours, peer)
    peer.reset()
    pump.join()
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("SENDED", "a"),
                ("SENDED", "b"),
                ("SENDED", "c"),
                ("SENDFAIL", big, ERROR),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )
    assert not ours.isAlive
    with pytest.raises(d.SocketError) as info:
        ours.send("late")
    assert getattr(info.value, "errno", None) == 1001


@pytest.mark.parametrize("kind", ["client", "server"])
def test_close_aborts_a_stuck_send(d: Driver, kind: str) -> None:
    """close while a send is stuck on a peer that does not read: close returns, the
    send returns, SENDFAIL then DISCONNECT, once each."""
    ours, peer, label, mine, theirs = _stuck(d, kind)
    big, pump = _stuck_big_send(d, ours, peer)
    ours.close()
    pump.join()
    assert not ours.isAlive
    d.expect(
        {
            label: [
                ("CONNECTED", mine, theirs),
                ("SENDED", "a"),
                ("SENDED", "b"),
                ("SENDED", "c"),
                ("SENDFAIL", big, ERROR),
                ("DISCONNECT", mine, theirs),
            ]
        },
        partial=True,
    )


@pytest.mark.parametrize("kind", ["client", "server"])
def test_peer_resets_mid_stream(d: Driver, kind: str) -> None:
    """Many sends while the peer reads a little and then resets: each send that
    returned is settled exactly once, one DISCONNECT last, the next send is 1001."""
    ours, peer, label, _, _ = _stuck(d, kind)
    pump = d.pump(ours.send, (bytes([65 + i % 26]) * 4096 for i in range(5000)))
    got = 0
    while got < 64 * 1024:  # read a little of the stream, then vanish
        chunk = peer.recv_some()
        assert chunk
        got += len(chunk)
    peer.reset()
    pump.join()
    ours.wait_for("DISCONNECT")
    assert getattr(pump.error, "errno", None) == 1001, pump.error
    _settled_once(d, ours, pump.accepted)
    assert squash(d.trace()[label]) in (
        ["CONNECTED", "SENDED", "DISCONNECT"],
        ["CONNECTED", "SENDED", "SENDFAIL", "DISCONNECT"],
    )


def test_peer_half_closes_while_a_send_is_stuck(d: Driver) -> None:
    """The peer sends EOF without reading: the stuck send is not failed by the EOF (a
    half-closed peer may still read); once the peer reads it all, SENDED, then our
    close, then DISCONNECT."""
    ours, peer, label, mine, theirs = _stuck(d, "server")
    big, pump = _stuck_big_send(d, ours, peer)
    try:
        peer.shutdown_write()
        got = peer.read_until_eof()
        pump.join()
        assert got == b"abc" + big
        d.expect(
            {
                label: [
                    ("CONNECTED", mine, theirs),
                    ("SENDED", "a"),
                    ("SENDED", "b"),
                    ("SENDED", "c"),
                    ("SENDED", big),
                    ("DISCONNECT", mine, theirs),
                ]
            },
            partial=True,
        )
    finally:
        peer.reset()  # unblocks the send either way: nothing is left hanging
        pump.join()


class _Flood:
    """A plain peer writing 4 KiB chunks from its own thread until the connection dies."""

    def __init__(self, peer: RawPeer) -> None:
        self.peer = peer
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="conformance flood", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chunk = b"f" * 4096
        for _ in range(20_000):
            try:
                self.peer.sendall(chunk)
            except OSError:
                return
            self.sent += 1

    def join(self) -> None:
        self._thread.join(10.0)
        assert not self._thread.is_alive(), "a flooding peer is still sending"


def test_stop_while_clients_are_busy(d: Driver) -> None:
    """stop while two plain peers flood the server, a server send is stuck on a peer
    that never reads, and a jfsocket client streams: stop returns; one DISCONNECT per
    connection, STOPED after all of them; every send settled exactly once."""
    d.real_sockets("flooding threads")
    server = d.server(recv_buffer=4096)
    floods = [_Flood(d.raw_connect(server.host)) for _ in range(2)]
    idle = d.raw_connect(server.host, rcvbuf=4096)
    stuck_side = server.side(idle)
    big = bytes(HUGE)
    stuck = d.pump(lambda data: server.send(data, idle.host), [big])
    d.wait_until(lambda: stuck.sending(big) and idle.queued() > 0, what="the big send to block")
    client, client_side = d.connected(server)
    stream = d.pump(client.send, (b"%d;" % i for i in range(100_000)))
    for side in [server.side(f.peer) for f in floods] + [client_side]:
        side.wait_for("RECEIVED")  # every stream is flowing
    server.stop()
    assert not server.isAlive and server.clients == {}
    for flood in floods:
        flood.join()
    stuck.join()
    stream.join()
    client.wait_for("DISCONNECT")
    trace = d.trace()
    assert trace["server"] == [("STARTED",), ("STOPED",)]
    assert trace["server:raw3"] == [
        ("CONNECTED", "server", "raw3"),
        ("SENDFAIL", big, ERROR),
        ("DISCONNECT", "server", "raw3"),
    ]
    for label in ("server:raw1", "server:raw2", "server:client1"):
        assert squash(trace[label]) == ["CONNECTED", "RECEIVED", "DISCONNECT"], label
    assert squash(trace["client1"]) in (
        ["CONNECTED", "SENDED", "DISCONNECT"],
        ["CONNECTED", "SENDED", "SENDFAIL", "DISCONNECT"],
    )
    _settled_once(d, client, stream.accepted)
    _settled_once(d, stuck_side, stuck.accepted)
    order = d.order()
    stoped = order.index(("server", "STOPED"))
    sides = ("server:raw1", "server:raw2", "server:raw3", "server:client1")
    assert all(order.index((side, "DISCONNECT")) < stoped for side in sides)
