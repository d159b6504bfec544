"""Decoding against plain peers: split characters, invalid bytes, a cut at the end."""

from __future__ import annotations

import socket

from tests.threaded.conftest import EventLog, Objects

EURO = "€".encode()  # three bytes: e2 82 ac


def test_character_split_across_segments_to_server(objects: Objects) -> None:
    """A character whose bytes come in two TCP segments arrives whole."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    side = objects.server_side(log, raw.getsockname())
    raw.sendall(b"a" + EURO[:2])
    # "a" is delivered once the first segment was read; its two tail bytes are held.
    log.wait(lambda: log.text(side) == "a", what="the first segment")
    raw.sendall(EURO[2:] + b"b")
    log.wait(lambda: log.text(side) == "a€b", what="the split character")
    assert not any("\udce2" in str(d) or "\udcac" in str(d) for d in log.data(source=side))


def test_character_split_across_segments_to_client(objects: Objects) -> None:
    """The same for a TcpClient reading from a plain server."""
    log = EventLog()
    _client, peer = objects.connected_to_raw_peer(log)
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer.sendall(b"x" + EURO[:1])
    log.wait(lambda: log.text() == "x", what="the first segment")
    peer.sendall(EURO[1:])
    log.wait(lambda: log.text() == "x€", what="the split character")


def test_invalid_utf8_round_trips(objects: Objects) -> None:
    """b'\\xff\\xfe' arrives as a str that encodes back to the same bytes, both ways."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    raw.sendall(b"\xff\xfe")
    log.wait(lambda: len(log.text(side)) == 2, what="two escaped bytes")
    (data,) = log.data(source=side)
    assert isinstance(data, str)
    assert data.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    side.send(data)  # a str with escapes is sent as the original bytes
    got = b""
    while len(got) < 2:
        chunk = raw.recv(16)
        assert chunk
        got += chunk
    assert got == b"\xff\xfe"


def test_cut_character_at_end_of_stream_is_kept(objects: Objects) -> None:
    """Bytes of an unfinished character at EOF arrive (escaped) before DISCONNECT."""
    log = EventLog()
    server = objects.server(log)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    raw.sendall(b"ok" + EURO[:2])
    log.wait(lambda: log.text(side) == "ok", what="the complete part")
    raw.close()
    log.wait_for("onDisconnect")
    assert [n for n, _ in log.of(side)][-1] == "onDisconnect"
    assert log.text(side).encode("utf-8", "surrogateescape") == b"ok" + EURO[:2]
