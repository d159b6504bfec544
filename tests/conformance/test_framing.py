"""Framing (SPEC section 3, beyond the seed): 'line' and 'length', where one send is
exactly one RECEIVED, and max_message_size, whose violation closes that connection."""

from __future__ import annotations

import logging
import struct

import pytest

from .driver import NONE, Driver

MESSAGES = ["first", "", "x" * 50_000, "é" * 1000, "last"] + [
    f"message {i} " + "y" * (i % 50) for i in range(300)
]


@pytest.mark.parametrize("framing", ["line", "length"])
def test_one_send_is_one_received(d: Driver, framing: str) -> None:
    """305 back-to-back sends each way, reads of 100 bytes: 305 RECEIVEDs, each whole."""
    server = d.server(framing=framing, recv_buffer=100)
    client, side = d.connected(server, framing=framing, recv_buffer=100)
    for message in MESSAGES:
        client.send(message)
    side.wait_for("RECEIVED", len(MESSAGES))
    for message in reversed(MESSAGES):
        side.send(message)
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                *[("RECEIVED", m) for m in MESSAGES],
                *[("SENDED", m) for m in reversed(MESSAGES)],
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                *[("SENDED", m) for m in MESSAGES],
                *[("RECEIVED", m) for m in reversed(MESSAGES)],
            ],
        },
        timeout=10.0,
    )


def test_lines_from_a_plain_peer_in_odd_pieces(d: Driver) -> None:
    """framing='line' with a plain peer writing lines cut anywhere; replies end in \\n."""
    server = d.server(framing="line")
    peer = d.raw_connect(server.host)
    peer.nodelay()
    side = server.side(peer)
    for piece in (b"first li", b"ne\nsecond\nthi", b"rd\n"):
        peer.sendall(piece)
    side.wait_for("RECEIVED", 3)
    side.send("out")
    assert peer.recv_exactly(4) == b"out\n"
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", "first line"),
                ("RECEIVED", "second"),
                ("RECEIVED", "third"),
                ("SENDED", "out"),
            ],
        }
    )


def test_length_prefix_on_the_wire(d: Driver) -> None:
    """framing='length': a 4-byte big-endian length, then the bytes, both ways."""
    server = d.server(framing="length", encoding=NONE)
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    side.send(b"hello")
    assert peer.recv_exactly(9) == struct.pack(">I", 5) + b"hello"
    peer.sendall(struct.pack(">I", 3) + b"abc" + struct.pack(">I", 0) + struct.pack(">I", 2))
    peer.sendall(b"de")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("SENDED", b"hello"),
                ("RECEIVED", b"abc"),
                ("RECEIVED", b""),
                ("RECEIVED", b"de"),
            ],
        }
    )


def test_what_cannot_be_framed_is_refused(d: Driver) -> None:
    """A newline under 'line', or more than max_message_size: ValueError naming why,
    no event, the connection intact."""
    server = d.server(framing="line", max_message_size=8)
    client, _ = d.connected(server, framing="line", max_message_size=8)
    with pytest.raises(ValueError, match="newline"):
        client.send("two\nlines")
    with pytest.raises(ValueError, match="max_message_size"):
        client.send("much too long")
    assert client.isAlive
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1")],
            "client1": [("CONNECTED", "client1", "server")],
        }
    )


@pytest.mark.parametrize(
    ("framing", "violation"),
    [("line", b"y" * 100), ("length", struct.pack(">I", 1000) + b"z" * 10)],
    ids=["line", "length"],
)
def test_max_message_size_violation_closes_that_connection(
    d: Driver, framing: str, violation: bytes
) -> None:
    """A peer breaking max_message_size: the whole messages before it arrive, then
    that connection closes (the peer sees EOF), a warning names max_message_size on
    'jfsocket'; other connections go on."""
    server = d.server(framing=framing, max_message_size=16, encoding=NONE)
    other, other_side = d.connected(server, framing=framing, encoding=NONE)
    peer = d.raw_connect(server.host)
    good = b"ok\n" if framing == "line" else struct.pack(">I", 2) + b"ok"
    peer.sendall(good + violation)
    server.side(peer).wait_for("DISCONNECT")
    assert peer.at_eof()
    d.wait_until(
        lambda: any("max_message_size" in line.message for line in d.logs()),
        what="the logged protocol error",
    )
    assert all(line.level >= logging.WARNING for line in d.logs())
    other.send(b"fine")
    other_side.wait_for("RECEIVED")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", b"ok"),
                ("DISCONNECT", "server", "raw1"),
            ],
            "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", b"fine")],
            "client1": [("CONNECTED", "client1", "server"), ("SENDED", b"fine")],
        }
    )
