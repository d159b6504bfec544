"""Data: accepted types, encodings, recvBuffer, framing and max_message_size."""

from __future__ import annotations

import contextlib
import logging
import struct

import pytest
from jfsocket.bindings.threaded import TcpClient

from .conftest import EventLog, Objects


def test_send_accepts_str_bytes_bytearray_memoryview(objects: Objects) -> None:
    """All four data types are sent; SENDED delivers each exact object."""
    log = EventLog()
    server = objects.server(log, framing="line")
    client_log = EventLog()
    client, side = objects.connect(server, log, client_log, framing="line")
    items: list[str | bytes | bytearray | memoryview] = [
        "text",
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"memoryview"),
    ]
    for item in items:
        client.send(item)
    sended = client_log.data("onSended")
    assert len(sended) == 4 and all(a is b for a, b in zip(sended, items, strict=True))
    log.wait_for("onReceived", 4)
    assert log.data(source=side) == ["text", "bytes", "bytearray", "memoryview"]


def test_send_rejects_other_types(objects: Objects) -> None:
    """Anything but str/bytes-like is TypeError, with no event and no harm done."""
    log = EventLog()
    server = objects.server(log)
    client_log = EventLog()
    client, side = objects.connect(server, log, client_log)
    bad: list[object] = [42, None, ["list"], 1.5, {"a": 1}]
    for item in bad:
        with pytest.raises(TypeError):
            client.send(item)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            server.send(item)  # type: ignore[arg-type]
    assert client_log.names() == ["onConnected"]
    client.send("still fine")
    log.wait(lambda: log.text(side) == "still fine", what="data after the rejected sends")


def test_encoding_none_gives_bytes(objects: Objects) -> None:
    """With encoding=None RECEIVED delivers bytes, and a str cannot be sent."""
    log = EventLog()
    server = objects.server(log, encoding=None)
    client_log = EventLog()
    client, side = objects.connect(server, log, client_log, encoding=None)
    client.send(b"\x00\xffraw")
    log.wait(lambda: b"".join(d for d in log.data() if isinstance(d, bytes)) == b"\x00\xffraw")
    assert all(isinstance(d, bytes) for d in log.data())
    side.send(b"back")
    client_log.wait_for("onReceived")
    assert all(isinstance(d, bytes) for d in client_log.data())
    with pytest.raises(TypeError):
        client.send("a str")


def test_other_encoding(objects: Objects) -> None:
    """A str is encoded with the object's encoding, and decoded with it on the other side."""
    log = EventLog()
    server = objects.server(log, encoding="utf-16-le")
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    side.send("héllo")
    expected = "héllo".encode("utf-16-le")
    got = b""
    while len(got) < len(expected):
        chunk = raw.recv(100)
        assert chunk
        got += chunk
    assert got == expected


def test_sended_delivers_exact_object_on_broadcast(objects: Objects) -> None:
    """server.send(data) to all: each client's SENDED carries the caller's object."""
    log = EventLog()
    server = objects.server(log)
    for _ in range(3):
        objects.connect(server, log)
    data = bytearray(b"to everyone")
    server.send(data)
    sended = log.data("onSended")
    assert len(sended) == 3 and all(d is data for d in sended)


def test_recv_buffer_bounds_each_received(objects: Objects) -> None:
    """Raw mode: 1000 bytes with recvBuffer=100 come as RECEIVEDs of at most 100."""
    log = EventLog()
    server = objects.server(log, recv_buffer=100)
    client_log = EventLog()
    client = objects.client(client_log)
    client.recvBuffer = 100  # the setter, before connecting
    assert client.recvBuffer == 100
    client.connect(*server.host)
    side = objects.server_side(log, client.host)
    assert side.recvBuffer == 100  # inherited from the server
    payload = "".join(chr(ord("a") + i % 26) for i in range(1000))
    client.send(payload)
    log.wait(lambda: log.text(side) == payload, what="all 1000 bytes")
    assert max(len(str(d)) for d in log.data(source=side)) <= 100
    assert log.count("onReceived") >= 10
    side.send(payload)
    client_log.wait(lambda: client_log.text() == payload, what="1000 bytes back")
    assert max(len(str(d)) for d in client_log.data()) <= 100


def test_recv_buffer_default_and_validation() -> None:
    """recvBuffer defaults to 256; non-positive or non-int values are refused."""
    client = TcpClient()
    assert client.recvBuffer == 256
    with pytest.raises(ValueError, match="recvBuffer"):
        client.recvBuffer = 0
    with pytest.raises(ValueError, match="recvBuffer"):
        client.recvBuffer = -5
    with pytest.raises(TypeError):
        client.recvBuffer = "100"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        client.recvBuffer = True
    assert client.recvBuffer == 256


@pytest.mark.parametrize("framing", ["line", "length"])
def test_framing_one_send_one_received(objects: Objects, framing: str) -> None:
    """framing='line'/'length': 300 back-to-back sends are 300 RECEIVEDs, each whole."""
    log = EventLog()
    server = objects.server(log, framing=framing)
    client_log = EventLog()
    client, side = objects.connect(server, log, client_log, framing=framing)
    messages = [f"message {i} " + "x" * (i % 50) for i in range(300)]
    for message in messages:
        client.send(message)
    log.wait_for("onReceived", 300)
    assert log.data(source=side) == messages
    for message in messages[:20]:
        side.send(message)
    client_log.wait_for("onReceived", 20)
    assert client_log.data() == messages[:20]


def test_line_framing_refuses_newline_in_data(objects: Objects) -> None:
    """framing='line' cannot send data containing the delimiter: ValueError, no event."""
    log = EventLog()
    server = objects.server(log, framing="line")
    client_log = EventLog()
    client, _ = objects.connect(server, log, client_log, framing="line")
    with pytest.raises(ValueError, match="newline"):
        client.send("two\nlines")
    assert client_log.names() == ["onConnected"]


def test_length_framing_on_the_wire(objects: Objects) -> None:
    """framing='length' writes a 4-byte big-endian length, then the bytes."""
    log = EventLog()
    server = objects.server(log, framing="length", encoding=None)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    side.send(b"hello")
    got = b""
    while len(got) < 9:
        chunk = raw.recv(64)
        assert chunk
        got += chunk
    assert got == struct.pack(">I", 5) + b"hello"


@pytest.mark.parametrize(
    ("framing", "violation"),
    [("line", b"y" * 100), ("length", struct.pack(">I", 1000) + b"z" * 10)],
)
def test_max_message_size_violation_closes_connection(
    objects: Objects, caplog: pytest.LogCaptureFixture, framing: str, violation: bytes
) -> None:
    """A raw peer breaking max_message_size: that connection closes, logged on 'jfsocket'."""
    caplog.set_level(logging.WARNING, logger="jfsocket")
    log = EventLog()
    server = objects.server(log, framing=framing, max_message_size=16, encoding=None)
    other, other_side = objects.connect(server, log, framing=framing, encoding=None)
    raw = objects.raw_connect(server.host)
    side = objects.server_side(log, raw.getsockname())
    good = b"ok\n" if framing == "line" else struct.pack(">I", 2) + b"ok"
    raw.sendall(good + violation)
    log.wait(lambda: any(a[0] is side for a in log.args("onDisconnect")), what="DISCONNECT")
    assert [n for n, _ in log.of(side)] == ["onConnected", "onReceived", "onDisconnect"]
    assert log.data(source=side) == [b"ok"]
    with contextlib.suppress(ConnectionResetError):  # a reset is a close too
        assert raw.recv(16) == b""  # the server closed its side
    records = [r for r in caplog.records if r.name == "jfsocket"]
    assert any("max_message_size" in r.getMessage() for r in records)
    # Other connections are unaffected.
    other.send(b"fine")
    log.wait(lambda: log.data(source=other_side) == [b"fine"], what="the other connection")
