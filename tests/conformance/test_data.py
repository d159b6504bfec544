"""Data (SPEC section 3): accepted types, encodings, incremental lossless decoding,
recvBuffer, and SENDED handing back the caller's very object."""

from __future__ import annotations

import pytest

from .driver import NONE, Driver

EURO = "€".encode()  # three bytes: e2 82 ac


def test_send_accepts_str_bytes_bytearray_memoryview(d: Driver) -> None:
    """All four types are sent; SENDED hands back each very object; RECEIVED is str."""
    server = d.server(framing="length")
    client, _ = d.connected(server, framing="length")
    items: list[object] = ["text é", b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview")]
    for item in items:
        client.send(item)
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "text é"),
                ("RECEIVED", "bytes"),
                ("RECEIVED", "bytearray"),
                ("RECEIVED", "memoryview"),
            ],
            "client1": [("CONNECTED", "client1", "server"), *[("SENDED", i) for i in items]],
        }
    )


def test_sended_has_run_when_send_returns(d: Driver) -> None:
    """From outside callbacks, on a quiet connection, SENDED has run when send returns."""
    server = d.server()
    client, _ = d.connected(server)
    for i in range(5):
        data = f"message {i}"
        client.send(data)
        assert d.recorder.raw_args(client.obj)[-1] == ("SENDED", (data,))


def test_broadcast_hands_each_sended_the_callers_object(d: Driver) -> None:
    """server.send(data) to all: every side's SENDED carries the very object passed."""
    server = d.server()
    sides = [d.connected(server)[1] for _ in range(3)]
    data = bytearray(b"to everyone")
    server.send(data)
    for side in sides:
        side.wait_for("SENDED")
    d.expect(
        {f"server:client{n}": [("SENDED", bytearray(b"to everyone"))] for n in (1, 2, 3)},
        partial=True,
        only=("SENDED",),
    )


def test_encoding_none_gives_bytes(d: Driver) -> None:
    """encoding=None: RECEIVED delivers bytes on both sides, and a str cannot be sent."""
    server = d.server(encoding=NONE, framing="line")
    client, side = d.connected(server, encoding=NONE, framing="line")
    client.send(b"\xff\x00up")
    side.wait_for("RECEIVED")
    side.send(bytearray(b"down"))
    client.wait_for("RECEIVED")
    with pytest.raises(TypeError):
        client.send("a str")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", b"\xff\x00up"),
                ("SENDED", bytearray(b"down")),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", b"\xff\x00up"),
                ("RECEIVED", b"down"),
            ],
        }
    )


def test_another_encoding(d: Driver) -> None:
    """A str is encoded with the object's encoding, and decoded with it."""
    server = d.server(encoding="utf-16-le")
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    side.send("héllo")
    assert peer.recv_exactly(10) == "héllo".encode("utf-16-le")
    peer.sendall("wörld".encode("utf-16-le"))
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("SENDED", "héllo"),
                ("RECEIVED", "wörld"),
            ],
        }
    )


@pytest.mark.parametrize("direction", ["to server", "to client"])
def test_character_split_across_segments(d: Driver, direction: str) -> None:
    """A character whose bytes come in two TCP segments arrives whole: the first
    segment's complete part is delivered, the rest waits for the next."""
    if direction == "to server":
        server = d.server()
        peer = d.raw_connect(server.host)
        ours = server.side(peer)
        label, mine, theirs = "server:raw1", "server", "raw1"
    else:
        listener = d.raw_listener()
        ours = d.client()
        ours.connect(*listener.host)
        peer = listener.accept()
        label, mine, theirs = "client1", "client1", "rawserver"
    peer.nodelay()
    peer.sendall(b"a" + EURO[:2])
    d.wait_until(lambda: "".join(map(str, ours.received())) == "a", what="the first segment")
    peer.sendall(EURO[2:] + b"b")
    d.expect({label: [("CONNECTED", mine, theirs), ("RECEIVED", "a€b")]}, partial=True)
    assert all(isinstance(c, str) and c and "\udce2" not in c for c in ours.received())


def test_invalid_utf8_round_trips(d: Driver) -> None:
    """Bytes that are not UTF-8 arrive as a str that encodes back to them
    (surrogateescape), and sending that str writes the original bytes."""
    server = d.server()
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    peer.sendall(b"\xff\xfe")
    d.expect(
        {"server:raw1": [("CONNECTED", "server", "raw1"), ("RECEIVED", "\udcff\udcfe")]},
        partial=True,
    )
    (data,) = side.received()
    assert isinstance(data, str) and data.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    side.send(data)
    assert peer.recv_exactly(2) == b"\xff\xfe"


def test_cut_character_at_end_of_stream_is_kept(d: Driver) -> None:
    """The bytes of an unfinished character at EOF arrive (escaped) before DISCONNECT."""
    server = d.server()
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    peer.sendall(b"ok" + EURO[:2])
    d.wait_until(lambda: "".join(map(str, side.received())) == "ok", what="the complete part")
    peer.close()
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", "ok\udce2\udc82"),
                ("DISCONNECT", "server", "raw1"),
            ],
        }
    )


def test_decoding_is_incremental_with_one_byte_reads(d: Driver) -> None:
    """recvBuffer 1: every multibyte character still arrives whole, none replaced."""
    server = d.server(recv_buffer=1)
    client, side = d.connected(server, recv_buffer=1)
    assert side.recvBuffer == 1
    text = "héllo wörld € 𝄞"
    client.send(text)
    client.send(b"\xff\xfeok")
    d.expect(
        {
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", text + "\udcff\udcfeok"),
            ]
        },
        partial=True,
    )
    chunks = side.received()
    assert all(isinstance(c, str) and c and "\ufffd" not in c for c in chunks)
    assert len(chunks) >= len(text)


def test_recv_buffer_bounds_each_received(d: Driver) -> None:
    """Stream mode: no RECEIVED is longer than recvBuffer, set by the constructor (a
    server's sides inherit it) or the property, before connecting or while connected."""
    server = d.server(recv_buffer=100)
    client = d.client()
    client.recvBuffer = 100
    assert client.recvBuffer == 100
    client.connect(*server.host)
    side = server.side(client)
    assert side.recvBuffer == 100
    payload = "".join(chr(ord("a") + i % 26) for i in range(1000))
    client.send(payload)
    d.wait_until(lambda: "".join(map(str, side.received())) == payload, what="all 1000 bytes")
    side.send(payload)
    d.expect(
        {
            "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", payload)],
            "client1": [("CONNECTED", "client1", "server"), ("RECEIVED", payload)],
        },
        partial=True,
        only=("CONNECTED", "RECEIVED"),
    )
    for ours in (client, side):
        sizes = [len(str(c)) for c in ours.received()]
        assert max(sizes) <= 100 and len(sizes) >= 10, sizes
    client.recvBuffer = 3
    assert client.recvBuffer == 3
    before = len(client.received())
    side.send("abcdefghij" * 3)
    d.wait_until(
        lambda: "".join(map(str, client.received()[before:])) == "abcdefghij" * 3,
        what="the second block",
    )
    block = client.received()[before:]
    # The read already waiting when recvBuffer changed was sized by the old value.
    assert all(len(str(c)) <= 3 for c in block[1:]), block


def test_recv_buffer_default_and_bad_values(d: Driver) -> None:
    """recvBuffer defaults to 256 and must be a positive int: ValueError/TypeError naming it."""
    client = d.client()
    receiver = d.receiver()
    for obj in (client, receiver):
        assert obj.recvBuffer == 256
        for bad, error in (
            (0, ValueError),
            (-5, ValueError),
            ("100", TypeError),
            (True, TypeError),
            (1.5, TypeError),
        ):
            with pytest.raises(error, match="recvBuffer"):
                obj.recvBuffer = bad
        assert obj.recvBuffer == 256
