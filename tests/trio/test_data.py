"""Data: accepted types, encodings, SENDED timing, recvBuffer, framing, limits."""

from __future__ import annotations

import logging
import struct

import pytest
import trio
from jfsocket.bindings.trio import EventTypes, TcpClient, TcpServer

from .conftest import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    blocked,
    connected,
    raw_connect,
)

pytestmark = pytest.mark.trio
E = EventTypes


async def test_send_accepts_the_four_types_and_sended_carries_the_object() -> None:
    """str, bytes, bytearray, memoryview are sent; SENDED gets the very object."""
    server_log, client_log = EventLog(), EventLog()
    payloads: list[str | bytes | bytearray | memoryview] = [
        "text é",
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"memoryview"),
    ]
    async with connected(server_log, client_log, framing="length") as (_, client, _side):
        for data in payloads:
            await client.send(data)
        await server_log.wait_for("RECEIVED", 4)
    assert server_log.data("RECEIVED") == ["text é", "bytes", "bytearray", "memoryview"]
    sent = client_log.data("SENDED")
    assert len(sent) == 4 and all(s is p for s, p in zip(sent, payloads, strict=True))


@pytest.mark.parametrize("bad", [42, None, ["list"], {"d": 1}, 3.5], ids=repr)
async def test_send_rejects_other_types(bad: object) -> None:
    """Anything but str/bytes/bytearray/memoryview: TypeError, no event, still open."""
    client_log = EventLog()
    async with connected(EventLog(), client_log) as (server, client, _):
        with pytest.raises(TypeError):
            await client.send(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await server.send(bad)  # type: ignore[arg-type]
        assert client.isAlive
        assert client_log.names() == ["CONNECTED"]


async def test_str_with_encoding_none_is_type_error() -> None:
    """With ``encoding=None`` a str cannot be sent (no encoding to apply)."""
    async with connected(EventLog(), EventLog(), encoding=None) as (_, client, _side):
        with pytest.raises(TypeError):
            await client.send("text")
        assert client.isAlive


async def test_encoding_none_delivers_bytes() -> None:
    """``encoding=None``: RECEIVED delivers bytes, on both sides."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log, encoding=None, framing="line") as (
        _,
        client,
        side,
    ):
        await client.send(b"\xff\x00up")
        await side.send(bytearray(b"down"))
        await server_log.wait_for("RECEIVED")
        await client_log.wait_for("RECEIVED")
    assert server_log.data("RECEIVED") == [b"\xff\x00up"]
    assert client_log.data("RECEIVED") == [b"down"]
    assert type(client_log.data("RECEIVED")[0]) is bytes


async def test_decoding_is_incremental_and_lossless() -> None:
    """One byte per read: multibyte characters arrive whole; invalid bytes survive."""
    server_log = EventLog()
    text = "héllo wörld € 𝄞"
    async with connected(server_log, EventLog(), recv_buffer=1) as (_, client, side):
        assert side.recvBuffer == 1
        await client.send(text)
        await server_log.wait_until(lambda: "".join(map(str, server_log.data("RECEIVED"))) == text)
        chunks = server_log.data("RECEIVED")
        assert all(isinstance(c, str) and c and "\ufffd" not in c for c in chunks)
        raw = b"\xff\xfeok"
        await client.send(raw)

        def joined() -> str:
            return "".join(map(str, server_log.data("RECEIVED")))[len(text) :]

        await server_log.wait_until(lambda: joined().endswith("ok"))
        assert joined().encode("utf-8", "surrogateescape") == raw


async def test_send_returns_after_sended_ran() -> None:
    """``await send()`` from outside callbacks returns once SENDED ran (even async)."""
    client_log, server_log = EventLog(), EventLog()
    async with connected(server_log, client_log, use_async=True) as (server, client, side):
        for i in range(5):
            data = f"message {i}"
            await client.send(data)
            assert client_log.data("SENDED")[-1] is data
            await side.send(data)
            assert server_log.data("SENDED")[-1] is data
        await server.send("to all")
        assert server_log.data("SENDED")[-1] == "to all"


async def test_recv_buffer_bounds_each_read_in_raw_mode() -> None:
    """Raw framing: no RECEIVED is longer than recvBuffer (constructor or property)."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log, recv_buffer=7) as (_, client, side):
        assert client.recvBuffer == 7 and side.recvBuffer == 7
        block = "0123456789" * 10
        await client.send(block)
        await server_log.wait_until(lambda: "".join(map(str, server_log.data("RECEIVED"))) == block)
        assert max(len(str(d)) for d in server_log.data("RECEIVED")) <= 7
        assert len(server_log.data("RECEIVED")) >= 15
        client.recvBuffer = 3
        assert client.recvBuffer == 3
        await side.send("abcdefghij" * 3)
        await client_log.wait_until(
            lambda: "".join(map(str, client_log.data("RECEIVED"))) == "abcdefghij" * 3
        )
        # The first read may already have been sized by the old value.
        assert all(len(str(d)) <= 3 for d in client_log.data("RECEIVED")[1:])


async def test_recv_buffer_rejects_bad_values() -> None:
    """recvBuffer must be a positive int: ValueError / TypeError otherwise."""
    await trio.lowlevel.checkpoint()
    client = TcpClient()
    assert client.recvBuffer == 256
    with pytest.raises(ValueError, match="recvBuffer"):
        client.recvBuffer = 0
    with pytest.raises(ValueError, match="recvBuffer"):
        client.recvBuffer = -5
    with pytest.raises(TypeError):
        client.recvBuffer = "10"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="recvBuffer"):
        TcpServer(LOCALHOST, 0, recv_buffer=0)
    assert client.recvBuffer == 256


@pytest.mark.parametrize("framing", ["line", "length"])
async def test_framing_one_send_is_one_received(framing: str) -> None:
    """With framing, each send is exactly one RECEIVED, whatever the read sizes."""
    server_log, client_log = EventLog(), EventLog()
    messages = ["first", "", "x" * 50_000, "é" * 1000, "last"]
    async with connected(server_log, client_log, framing=framing, recv_buffer=100) as (
        _,
        client,
        side,
    ):
        for message in messages:
            await client.send(message)
        for message in reversed(messages):
            await side.send(message)
        await server_log.wait_for("RECEIVED", len(messages))
        await client_log.wait_for("RECEIVED", len(messages))
    assert server_log.data("RECEIVED") == messages
    assert client_log.data("RECEIVED") == messages[::-1]


async def test_framing_refuses_what_it_cannot_frame() -> None:
    """A newline under 'line', or a message over max_message_size: ValueError, no event."""
    client_log = EventLog()
    async with connected(EventLog(), client_log, framing="line", max_message_size=8) as (
        _,
        client,
        _side,
    ):
        with pytest.raises(ValueError, match="newline"):
            await client.send("two\nlines")
        with pytest.raises(ValueError, match="max_message_size"):
            await client.send("much too long")
        assert client.isAlive and client_log.names() == ["CONNECTED"]


@pytest.mark.parametrize(
    ("framing", "stream"),
    [
        ("line", b"ok\n" + b"x" * 64),
        ("length", struct.pack(">I", 2) + b"ok" + struct.pack(">I", 1000) + b"y" * 10),
    ],
    ids=["line", "length"],
)
async def test_max_message_size_violation_closes_and_logs(
    caplog: pytest.LogCaptureFixture, framing: str, stream: bytes
) -> None:
    """A peer exceeding max_message_size: whole messages first, then that connection
    is closed (one DISCONNECT, the peer sees EOF) and a protocol error is logged."""
    log = EventLog()
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        async with TcpServer(
            LOCALHOST, 0, evts=log.evts(*SERVER_KEYS), framing=framing, max_message_size=16
        ) as server:
            with await raw_connect(server.host) as peer:
                await log.wait_for("CONNECTED")
                await peer.send(stream)
                await log.wait_for("DISCONNECT")
                with trio.fail_after(5):
                    assert await peer.recv(10) == b""
                await blocked()
                assert server.clients == {}
    assert log.names() == ["STARTED", "CONNECTED", "RECEIVED", "DISCONNECT", "STOPED"]
    assert log.data("RECEIVED") == ["ok"]
    assert any("max_message_size" in r.getMessage() for r in caplog.records)


async def test_unknown_framing_and_sizes_are_rejected() -> None:
    """framing must be raw/line/length; max_message_size a positive int."""
    await trio.lowlevel.checkpoint()
    with pytest.raises(ValueError, match="framing"):
        TcpClient(framing="xml")
    with pytest.raises(ValueError, match="max_message_size"):
        TcpServer(LOCALHOST, 0, max_message_size=0)
    with pytest.raises((LookupError, ValueError)):
        TcpClient(encoding="no-such-codec")
    assert CLIENT_KEYS  # the module's shared constants stay importable
