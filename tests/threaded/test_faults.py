"""Faults: resets, peers that stop reading, stopping busy servers, raising callbacks."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections import Counter

import pytest
from jfsocket.bindings.threaded import TcpClient
from jfsocket.core import Callback

from .conftest import SERVER_KEYS, EventLog, Objects, SendPump, wait_until

_LINGER_RESET = struct.pack("ii", 1, 0)


def _reset(sock: socket.socket) -> None:
    """Close *sock* with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def _settled_once(log: EventLog, source: object, accepted: list[bytes]) -> None:
    """Every accepted send of *source* got exactly one SENDED or SENDFAIL, nothing else did."""
    events = [a[1] for n, a in log.of(source) if n in ("onSended", "onSendFail")]
    counts = Counter(id(d) for d in events)
    assert sorted(counts) == sorted(id(d) for d in accepted)
    assert set(counts.values()) <= {1}


def test_peer_reset_mid_stream(objects: Objects) -> None:
    """A peer that resets while we stream to it: one DISCONNECT, every send settled once."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    pump = SendPump(side.send, chunk=4096, limit=5000).start()
    got = 0
    while got < 64 * 1024:  # read a little of the stream, then vanish
        chunk = raw.recv(65536)
        assert chunk
        got += len(chunk)
    _reset(raw)
    pump.join()
    log.wait(lambda: log.count("onDisconnect") == 1, what="DISCONNECT")
    _settled_once(log, side, pump.accepted)
    names = [n for n, _ in log.of(side)]
    assert names[0] == "onConnected" and names[-1] == "onDisconnect"
    assert names.count("onDisconnect") == 1
    assert pump.error is not None  # the pump stopped on 1001, not by its limit
    wait_until(lambda: server.clients == {}, what="the registry to empty")


def test_client_sees_server_peer_reset(objects: Objects) -> None:
    """A jfsocket client whose raw server resets: one DISCONNECT, sends settled once."""
    log = EventLog()
    client, peer = objects.connected_to_raw_peer(log)
    pump = SendPump(client.send, chunk=4096, limit=5000).start()
    got = 0
    while got < 64 * 1024:
        chunk = peer.recv(65536)
        assert chunk
        got += len(chunk)
    _reset(peer)
    pump.join()
    log.wait_for("onDisconnect")
    _settled_once(log, client, pump.accepted)
    assert log.count("onDisconnect") == 1 and log.names()[-1] == "onDisconnect"
    assert not client.isAlive


def test_blocked_send_fails_once_when_peer_vanishes(objects: Objects) -> None:
    """Peer stops reading, a send blocks, the peer vanishes: that send gets one SENDFAIL."""
    log = EventLog()
    client, peer = objects.connected_to_raw_peer(log)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    pump = SendPump(client.send).start()
    blocked = pump.wait_blocked()
    _reset(peer)  # it never read a byte
    pump.join()  # the blocked send returned (its failure is an event)
    log.wait_for("onDisconnect")
    fails = log.args("onSendFail")
    assert [a[1] for a in fails if a[1] is blocked] == [blocked]
    assert isinstance(fails[-1][2], BaseException)
    _settled_once(log, client, pump.accepted)
    assert log.count("onDisconnect") == 1 and log.names()[-1] == "onDisconnect"


def test_close_aborts_blocked_send(objects: Objects) -> None:
    """close() while a send is blocked on a peer that does not read: returns, SENDFAIL once."""
    log = EventLog()
    client, _peer = objects.connected_to_raw_peer(log)
    pump = SendPump(client.send).start()
    blocked = pump.wait_blocked()
    client.close()
    pump.join()
    assert [a[1] for a in log.args("onSendFail")] == [blocked]
    _settled_once(log, client, pump.accepted)
    assert log.names()[-1] == "onDisconnect" and log.count("onDisconnect") == 1


def test_stop_with_busy_clients(objects: Objects) -> None:
    """stop() while peers flood us and a send is blocked: returns, everything settles once."""
    log = EventLog()
    received = Counter[int]()
    server = objects.server(log, encoding=None, recv_buffer=4096)

    def count(conn: object, data: object) -> None:
        received[id(conn)] += 1

    server.bind("onReceived", count)
    # Two raw peers flood the server from their own threads.
    flooders = [objects.raw_connect(server.host) for _ in range(2)]
    floods: list[int] = [0, 0]

    def flood(i: int) -> None:
        chunk = b"f" * 4096
        for _ in range(20000):
            try:
                flooders[i].sendall(chunk)
            except OSError:
                return
            floods[i] += 1

    threads = [threading.Thread(target=flood, args=(i,), name=f"test flooder {i}") for i in (0, 1)]
    for thread in threads:
        thread.start()
    # One raw peer never reads, and the server streams to it until a send blocks.
    idle_peer = objects.raw_connect(server.host, rcvbuf=4096)
    idle_peer_side = objects.server_side(log, idle_peer.getsockname())
    pump = SendPump(lambda d: server.send(d, idle_peer.getsockname())).start()
    blocked = pump.wait_blocked()
    # And one jfsocket client is streaming too.
    client_log = EventLog()
    client, _ = objects.connect(server, log, client_log, encoding=None)
    client_pump = SendPump(client.send, chunk=1024, limit=3000).start()
    wait_until(lambda: min(floods) >= 20, what="the flooders to get going")
    server.stop()
    names = log.names()
    assert names.count("onDisconnect") == 4 and names[-1] == "onStoped"
    assert names.count("onStoped") == 1 and server.clients == {}
    pump.join()
    client_pump.join()
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive()
    assert [a[1] for a in log.args("onSendFail") if a[0] is idle_peer_side] == [blocked]
    _settled_once(log, idle_peer_side, pump.accepted)
    client_log.wait_for("onDisconnect")  # the last event: every send is settled before it
    assert client_log.count("onDisconnect") == 1
    _settled_once(client_log, client, client_pump.accepted)
    assert sum(received.values()) > 0


def test_every_callback_raising(objects: Objects, caplog: pytest.LogCaptureFixture) -> None:
    """Callbacks that all raise: each is logged, and connect/send/close/stop still work."""
    caplog.set_level(logging.ERROR, logger="jfsocket")
    log = EventLog()

    def broken(name: str) -> Callback:
        def callback(*args: object) -> None:
            log.record(name, *args)
            raise RuntimeError(f"broken {name}")

        return callback

    server = objects.server(start=False, framing="line")
    for key in SERVER_KEYS:
        server.bind(key, broken(key))
    server.start()
    client = TcpClient(framing="line")
    objects.later(client.close)
    for key in ("onConnected", "onDisconnect", "onReceived", "onSended"):
        client.bind(key, broken("client " + key))
    client.connect(*server.host)
    side = objects.server_side(log, client.host)
    client.send("a")
    client.send("b")
    log.wait(lambda: log.data(source=side) == ["a", "b"], what="both messages")
    side.send("c")
    log.wait(lambda: "client onReceived" in log.names(), what="the reply")
    server.stop()
    log.wait_for("client onDisconnect")
    expected = {
        "onStarted",
        "onConnected",
        "onReceived",
        "onSended",
        "onDisconnect",
        "onStoped",
        "client onConnected",
        "client onSended",
        "client onReceived",
        "client onDisconnect",
    }
    assert set(log.names()) == expected
    wait_until(
        lambda: len([r for r in caplog.records if r.exc_info]) == len(log.records),
        what="one logged error per callback call",
    )
    assert all(
        isinstance(r.exc_info[1], RuntimeError) for r in caplog.records if r.exc_info is not None
    )


def test_peer_half_close_while_send_blocked(objects: Objects) -> None:
    """The peer shuts down its sending side without reading: DISCONNECT and SENDFAIL follow."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host, rcvbuf=4096)
    side = objects.server_side(log, raw.getsockname())
    # One send far larger than all the buffers: the little room a window update
    # may open when the FIN arrives cannot let it finish.
    pump = SendPump(side.send, chunk=32 << 20, limit=2).start()
    blocked = pump.wait_blocked()
    raw.shutdown(socket.SHUT_WR)  # EOF for the server; the peer still reads nothing
    try:
        log.wait(lambda: log.count("onDisconnect") == 1, 2.0, "DISCONNECT after the peer's EOF")
        assert [a[1] for a in log.args("onSendFail")] == [blocked]
    finally:
        _reset(raw)  # unblocks the send either way, so nothing is left hanging
        pump.join()
