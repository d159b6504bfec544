"""Data options, payload encoding, decoding, and the framers (examples; see also properties)."""

from __future__ import annotations

import pytest
from jfsocket.core import (
    Connection,
    ConnectionOptions,
    Framing,
    LengthFramer,
    LineFramer,
    MessageReader,
    RawFramer,
    Received,
    RemoteProtocolError,
    encode_payload,
    validate_encoding,
    validate_framing,
    validate_max_message_size,
    validate_recv_buffer,
)


def test_framing_names() -> None:
    """None and 'raw' are the seed's framing; 'line' and 'length' go beyond."""
    assert validate_framing(None) is Framing.RAW
    assert validate_framing("raw") is Framing.RAW
    assert validate_framing("line") is Framing.LINE
    assert validate_framing(Framing.LENGTH) is Framing.LENGTH
    with pytest.raises(ValueError, match="framing"):
        validate_framing("lines")
    with pytest.raises(TypeError, match="framing"):
        validate_framing(1)


def test_encodings() -> None:
    """None or a known text encoding; else a clear error naming encoding."""
    assert validate_encoding(None) is None
    assert validate_encoding("utf-8") == "utf-8"
    assert validate_encoding("big5") == "big5"
    with pytest.raises(ValueError, match="encoding"):
        validate_encoding("no-such-codec")
    with pytest.raises(ValueError, match="encoding"):
        validate_encoding("hex")  # bytes-to-bytes, not text
    with pytest.raises(TypeError, match="encoding"):
        validate_encoding(b"utf-8")


@pytest.mark.parametrize("value", [0, -1, 1 << 27])
def test_recv_buffer_range(value: int) -> None:
    """recvBuffer: 1 .. 64 MiB."""
    with pytest.raises(ValueError, match="recvBuffer"):
        validate_recv_buffer(value)


@pytest.mark.parametrize("value", ["256", 256.0, None, True])
def test_recv_buffer_type(value: object) -> None:
    """recvBuffer: an int."""
    with pytest.raises(TypeError, match="recvBuffer"):
        validate_recv_buffer(value)


def test_max_message_size() -> None:
    """Positive, and small enough for the 4-byte prefix."""
    assert validate_max_message_size(1) == 1
    with pytest.raises(ValueError, match="max_message_size"):
        validate_max_message_size(0)
    with pytest.raises(ValueError, match="max_message_size"):
        validate_max_message_size(1 << 32)
    with pytest.raises(TypeError, match="max_message_size"):
        validate_max_message_size(1.5)


def test_payload_types() -> None:
    """str is encoded (losslessly); bytes pass; buffers are copied; others refused."""
    assert encode_payload("é", "utf-8") == b"\xc3\xa9"
    assert encode_payload("\udcff", "utf-8") == b"\xff"  # surrogateescape round trip
    data = b"abc"
    assert encode_payload(data, None) is data
    buffer = bytearray(b"abc")
    out = encode_payload(buffer, "utf-8")
    buffer[0] = 0
    assert out == b"abc"
    assert encode_payload(memoryview(b"xyz")[1:], None) == b"yz"
    for bad in (1, None, ["a"], object()):
        with pytest.raises(TypeError, match="data"):
            encode_payload(bad, "utf-8")
    with pytest.raises(TypeError, match="encoding=None"):
        encode_payload("text", None)


def test_raw_framer_is_each_read() -> None:
    """The seed's framing: one read, one message; nothing pending."""
    framer = RawFramer()
    assert framer.feed(b"ab") == [b"ab"]
    assert framer.feed(b"") == []
    assert framer.end() == []
    assert framer.frame(b"x\n") == b"x\n"


def test_line_framer_examples() -> None:
    """Lines split anywhere come out whole, without the newline."""
    framer = LineFramer()
    assert framer.feed(b"one\ntw") == [b"one"]
    assert framer.feed(b"o") == []
    assert framer.feed(b"\n\nthree\nfo") == [b"two", b"", b"three"]
    assert framer.end() == [b"fo"]
    assert framer.end() == []
    assert framer.frame(b"x") == b"x\n"
    with pytest.raises(ValueError, match="newline"):
        framer.frame(b"a\nb")


def test_line_framer_accepts_crlf() -> None:
    """CRLF is one line end, split anywhere; a bare CR inside a line stays."""
    framer = LineFramer()
    assert framer.feed(b"a\r\nb\nc\r") == [b"a", b"b"]
    assert framer.feed(b"\nd\re\r\n\r\n") == [b"c", b"d\re", b""]
    assert framer.end() == []
    assert LineFramer(line_ending="\r\n").frame(b"x") == b"x\r\n"
    with pytest.raises(ValueError, match="carriage return"):
        framer.frame(b"x\r")  # it would read back as "x"
    with pytest.raises(ValueError, match="line_ending"):
        LineFramer(line_ending="\r")
    with pytest.raises(TypeError, match="line_ending"):
        LineFramer(line_ending=b"\n")


def test_line_framer_limit_counts_the_line_not_its_crlf() -> None:
    """A line of exactly max_message_size bytes may end with CRLF; one byte more may not."""
    framer = LineFramer(4)
    assert framer.feed(b"1234\r") == []
    assert framer.feed(b"\n") == [b"1234"]
    assert LineFramer(4).feed(b"1234\r\n") == [b"1234"]
    framer = LineFramer(4)
    assert framer.feed(b"1234\r") == []
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"5")  # the CR was not a line end's: 6 bytes and counting


def test_line_framer_limits() -> None:
    """A line over the limit is refused as soon as it is known to be too long."""
    with pytest.raises(RemoteProtocolError):
        LineFramer(4).feed(b"12345\n")
    framer = LineFramer(4)
    assert framer.feed(b"12") == []
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"345")  # no newline yet, but already too long
    framer = LineFramer(4)
    assert framer.feed(b"12") == []
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"345\n")
    with pytest.raises(RemoteProtocolError):
        LineFramer(4).feed(b"ok\n12345")
    assert LineFramer(4).feed(b"1234\n") == [b"1234"]
    with pytest.raises(ValueError, match="max_message_size"):
        LineFramer(4).frame(b"12345")


def test_length_framer_examples() -> None:
    """Length-prefixed messages split anywhere come out whole."""
    framer = LengthFramer()
    stream = framer.frame(b"hello") + framer.frame(b"") + framer.frame(b"\n\x00")
    assert stream[:4] == b"\x00\x00\x00\x05"
    out: list[bytes] = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == [b"hello", b"", b"\n\x00"]
    assert framer.end() == []


def test_length_framer_compacts_a_long_buffer() -> None:
    """Many messages through one long-lived buffer stay correct after compaction."""
    framer = LengthFramer()
    message = framer.frame(b"m" * 1000)
    stream = message * 300
    out: list[bytes] = []
    step = 70001  # never aligned with message boundaries
    for i in range(0, len(stream), step):
        out += framer.feed(stream[i : i + step])
    assert out == [b"m" * 1000] * 300


def test_length_framer_limits_and_cut_stream() -> None:
    """An oversized header is refused at once; a stream ending mid-message is an error."""
    with pytest.raises(RemoteProtocolError, match="max_message_size"):
        LengthFramer(10).feed(b"\x00\x00\x00\x0b")
    framer = LengthFramer(10)
    assert framer.feed(b"\x00\x00\x00\x05ab") == []
    with pytest.raises(RemoteProtocolError, match=r"\d+ bytes pending"):
        framer.end()
    with pytest.raises(ValueError, match="max_message_size"):
        LengthFramer(3).frame(b"abcd")


def test_reader_decodes_split_characters_in_raw_mode() -> None:
    """A character split across two reads is not broken."""
    reader = MessageReader(Framing.RAW, "utf-8")
    data = "中文".encode()
    assert reader.feed(data[:2]) == []
    assert reader.feed(data[2:4]) == ["中"]
    assert reader.feed(data[4:]) == ["文"]


def test_reader_is_lossless_for_invalid_bytes() -> None:
    """Invalid UTF-8 survives as surrogate escapes, also when cut at the end."""
    reader = MessageReader(Framing.RAW, "utf-8")
    chunks = [*reader.feed(b"ok\xff"), *reader.feed(b"\xe4\xb8"), *reader.end()]
    text = "".join(c for c in chunks if isinstance(c, str))
    assert len(text) == 5
    assert text.encode("utf-8", "surrogateescape") == b"ok\xff\xe4\xb8"


def test_reader_without_encoding_gives_bytes() -> None:
    """encoding=None: RECEIVED carries bytes."""
    assert MessageReader(Framing.RAW, None).feed(b"\xff") == [b"\xff"]
    assert MessageReader(Framing.RAW, None).feed(b"") == []
    assert MessageReader(Framing.RAW, None).end() == []
    assert MessageReader(Framing.LINE, None).feed(b"a\n") == [b"a"]


def test_reader_framed_and_decoded() -> None:
    """Framed messages are decoded whole; the tail at end follows the framer's rule."""
    reader = MessageReader(Framing.LINE, "utf-8")
    assert reader.feed("é\nà".encode()) == ["é"]
    assert reader.end() == ["à"]
    reader = MessageReader(Framing.LINE, None)
    assert reader.feed(b"x") == []
    assert reader.end() == [b"x"]
    assert MessageReader(Framing.LENGTH, "utf-8").frame(b"ab") == b"\x00\x00\x00\x02ab"


def test_reader_cuts_long_raw_reads_at_the_limit() -> None:
    """A read longer than recvBuffer (asyncio reads what is there) counts as several reads."""
    raw = MessageReader(Framing.RAW, None)
    assert raw.feed(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert raw.feed(b"abc", 3) == [b"abc"]
    text = MessageReader(Framing.RAW, "utf-8")
    # A character cut by the limit is completed by the next piece, as across reads.
    assert text.feed("aé€".encode(), 2) == ["a", "é", "€"]
    framed = MessageReader(Framing.LINE, None)
    assert framed.feed(b"one\ntwo\n", 3) == [b"one", b"two"]  # messages are not cut


def test_connection_cuts_long_raw_reads_at_recv_buffer() -> None:
    """The core, not the binding, holds RECEIVED to recvBuffer bytes."""
    conn = Connection(None, ConnectionOptions(encoding=None, recv_buffer=4))
    conn.start_connect()
    conn.connection_made(("127.0.0.1", 1), ("127.0.0.1", 2))
    events = conn.receive_data(b"0123456789")
    assert [event.data for event in events if isinstance(event, Received)] == [
        b"0123",
        b"4567",
        b"89",
    ]
