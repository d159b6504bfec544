"""Plain ``socket`` peers in both directions: the wire format is just the bytes."""

from __future__ import annotations

import socket

from tests.threaded.conftest import EventLog, Objects


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read *size* bytes from *sock* (bounded by its timeout)."""
    got = b""
    while len(got) < size:
        chunk = sock.recv(size - len(got))
        assert chunk, f"EOF after {len(got)} of {size} bytes"
        got += chunk
    return got


def test_raw_client_to_jfsocket_server(objects: Objects) -> None:
    """A plain client talks to a TcpServer: CONNECTED, RECEIVED, replies, DISCONNECT."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    assert log.args("onConnected") == [(side, server.host, raw.getsockname())]
    raw.sendall("héllo wörld".encode())
    log.wait(lambda: log.text(side) == "héllo wörld", what="the raw client's text")
    server.send("réponse", raw.getsockname())
    assert _recv_exactly(raw, len("réponse".encode())) == "réponse".encode()
    raw.close()
    log.wait_for("onDisconnect")
    assert log.names()[-1] == "onDisconnect"


def test_jfsocket_client_to_raw_server(objects: Objects) -> None:
    """A TcpClient talks to a plain server; the server's close is its DISCONNECT."""
    log = EventLog()
    client, peer = objects.connected_to_raw_peer(log)
    assert peer.getpeername() == client.host and client.remote == peer.getsockname()
    client.send(b"\x00binary\xff")
    client.send("and text")
    assert _recv_exactly(peer, 16) == b"\x00binary\xffand text"
    peer.sendall(b"from a plain server")
    log.wait(lambda: log.text() == "from a plain server", what="the raw server's data")
    peer.close()
    log.wait_for("onDisconnect")
    assert log.names() == ["onConnected", "onSended", "onSended"] + ["onReceived"] * (
        log.count("onReceived")
    ) + ["onDisconnect"]


def test_raw_ipv6_client(objects: Objects) -> None:
    """A plain IPv6 client and a TcpServer on ::1."""
    log = EventLog()
    server = objects.server(log, "::1", encoding=None)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname()[:2])
    raw.sendall(b"six")
    log.wait(lambda: log.data(source=side) == [b"six"], what="the IPv6 bytes")
    side.send(b"ack")
    assert _recv_exactly(raw, 3) == b"ack"


def test_framed_lines_from_raw_peer(objects: Objects) -> None:
    """framing='line' with a plain peer that sends lines in odd pieces."""
    log = EventLog()
    server = objects.server(log, framing="line")
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    raw.sendall(b"first li")
    raw.sendall(b"ne\nsecond\nthi")
    raw.sendall(b"rd\n")
    log.wait_for("onReceived", 3)
    assert log.data(source=side) == ["first line", "second", "third"]
    side.send("out")
    assert _recv_exactly(raw, 4) == b"out\n"
