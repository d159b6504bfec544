"""Properties of the stream framers: however a stream is cut, the messages come out whole.

Messages are framed with ``frame()``, concatenated, cut at points hypothesis
chooses (and, separately, into single bytes) and fed chunk by chunk; what
comes out must be exactly what went in.  Oversized messages must fail with
:class:`RemoteProtocolError` in the very feed that reveals them, after every
message completed in earlier feeds was returned.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jfsocket.core import (
    Framing,
    LengthFramer,
    LineFramer,
    MessageReader,
    RemoteProtocolError,
)


class _Reader(Protocol):
    """What the framers and MessageReader have in common."""

    def feed(self, data: bytes) -> Sequence[str | bytes]:
        """Messages completed by *data*."""

    def end(self) -> Sequence[str | bytes]:
        """Messages due at end of stream."""

    def frame(self, payload: bytes) -> bytes:
        """The bytes that carry *payload*."""


@dataclass(frozen=True)
class _Case:
    """A reader under test: how to make it and what it returns for a message."""

    name: str
    framing: Framing
    encoding: str | None
    make: Callable[[int], _Reader]

    def expect(self, message: bytes) -> str | bytes:
        """What the reader must return for the framed *message*."""
        if self.encoding is None:
            return message
        return message.decode(self.encoding, "surrogateescape")


def _reader(framing: Framing, encoding: str | None) -> Callable[[int], _Reader]:
    """A factory of MessageReaders with this framing and encoding."""
    return lambda limit: MessageReader(framing, encoding, limit)


FRAMED = [
    _Case("LineFramer", Framing.LINE, None, LineFramer),
    _Case("LengthFramer", Framing.LENGTH, None, LengthFramer),
    *(
        _Case(
            f"MessageReader-{framing.value}-{encoding}",
            framing,
            encoding,
            _reader(framing, encoding),
        )
        for framing in (Framing.LINE, Framing.LENGTH)
        for encoding in (None, "utf-8")
    ),
]
_IDS = [case.name for case in FRAMED]

#: Bytes of every kind: arbitrary, valid UTF-8, and broken UTF-8 sequences.
_PAYLOADS = st.one_of(
    st.binary(max_size=24),
    st.text(max_size=8).map(lambda text: text.encode("utf-8")),
    st.lists(
        st.sampled_from([b"a", b"\n", b"\xc3", b"\xa9", b"\xf0\x9f", b"\x98\x80", b"\xff"])
    ).map(b"".join),
)


def _messages(framing: Framing, limit: int) -> st.SearchStrategy[list[bytes]]:
    """Messages *framing* can carry with this *limit*."""
    payloads = _PAYLOADS.map(lambda payload: payload[:limit])
    if framing is Framing.LINE:
        # A line may hold neither a newline nor a trailing CR (it would read as CRLF).
        payloads = payloads.map(lambda payload: payload.replace(b"\n", b"").rstrip(b"\r"))
    return st.lists(payloads, max_size=8)


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    """*stream* cut at *cuts* (any order, repeats give empty chunks)."""
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def _cut(data: st.DataObject, stream: bytes) -> list[bytes]:
    """Let hypothesis cut *stream* into chunks."""
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    return _split(stream, cuts)


def _feed_all(reader: _Reader, chunks: Sequence[bytes]) -> list[str | bytes]:
    """Everything *reader* returns for *chunks*, then at the end of the stream."""
    out: list[str | bytes] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    out += reader.end()
    return out


def _check_round_trip(case: _Case, data: st.DataObject, limit: int) -> None:
    """Framed messages, concatenated and cut anywhere (or byte by byte), come out the same."""
    messages = data.draw(_messages(case.framing, limit), label="messages")
    stream = b"".join(case.make(limit).frame(message) for message in messages)
    expected = [case.expect(message) for message in messages]
    assert _feed_all(case.make(limit), _cut(data, stream)) == expected
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert _feed_all(case.make(limit), one_by_one) == expected


@pytest.mark.parametrize("case", FRAMED, ids=_IDS)
@settings(deadline=None, max_examples=100)
@given(data=st.data(), limit=st.integers(1, 40))
def test_framed_messages_survive_any_split(case: _Case, data: st.DataObject, limit: int) -> None:
    """frame() each message, concatenate, cut anywhere: the same messages come out."""
    _check_round_trip(case, data, limit)


_LENGTH_CASES = [case for case in FRAMED if case.framing is Framing.LENGTH]


@pytest.mark.parametrize("case", _LENGTH_CASES, ids=[case.name for case in _LENGTH_CASES])
@settings(deadline=None, max_examples=100)
@given(data=st.data(), limit=st.integers(1, 40))
def test_length_buffer_compaction_keeps_messages(
    case: _Case, data: st.DataObject, limit: int
) -> None:
    """The same with the compaction threshold lowered, so that small streams compact."""

    def make(limit: int) -> _Reader:
        reader = case.make(limit)
        framer = reader._framer if isinstance(reader, MessageReader) else reader
        assert isinstance(framer, LengthFramer)
        framer._compact_at = 8  # on the framer: a compiled core inlines the module's constant
        return reader

    _check_round_trip(dataclasses.replace(case, make=make), data, limit)


@settings(deadline=None, max_examples=100)
@given(data=st.data(), stream=_PAYLOADS)
def test_raw_bytes_reader_returns_each_read(data: st.DataObject, stream: bytes) -> None:
    """Raw framing without encoding: each non-empty read is one message, unchanged."""
    chunks = _cut(data, stream)
    assert _feed_all(MessageReader(Framing.RAW, None), chunks) == [c for c in chunks if c]


@settings(deadline=None, max_examples=200)
@given(data=st.data(), stream=_PAYLOADS)
def test_raw_text_reader_is_lossless(data: st.DataObject, stream: bytes) -> None:
    """Raw framing with UTF-8: characters split across reads are whole, and no byte is lost."""
    for chunks in (_cut(data, stream), [stream[i : i + 1] for i in range(len(stream))]):
        out = _feed_all(MessageReader(Framing.RAW, "utf-8"), chunks)
        assert all(isinstance(piece, str) and piece for piece in out)
        text = "".join(piece for piece in out if isinstance(piece, str))
        assert text.encode("utf-8", "surrogateescape") == stream
        assert text == stream.decode("utf-8", "surrogateescape")


def _oversized_stream(
    data: st.DataObject, framing: Framing, limit: int
) -> tuple[bytes, list[tuple[bytes, int]], int]:
    """Good messages, then one over *limit*, then anything.

    Returns the stream, each good message with the offset where its frame
    ends, and the offset of the byte that reveals the oversized message.
    """
    good = data.draw(_messages(framing, limit), label="good")
    head = b""
    ends: list[tuple[bytes, int]] = []
    for message in good:
        head += (
            message + b"\n"
            if framing is Framing.LINE
            else len(message).to_bytes(4, "big") + message
        )
        ends.append((message, len(head)))
    tail = data.draw(st.binary(max_size=10), label="tail")
    if framing is Framing.LINE:
        big = data.draw(st.binary(min_size=limit + 1, max_size=limit + 20), label="big")
        big = big.replace(b"\n", b"x").replace(b"\r", b"x")
        end = data.draw(st.sampled_from([b"", b"\n"]), label="newline")
        # The line is known to be too long once it holds limit + 1 bytes.
        return head + big + end + tail, ends, len(head) + limit
    size = data.draw(st.integers(limit + 1, 2**32 - 1), label="size")
    body = data.draw(st.binary(max_size=limit + 5), label="body")
    # The message is known to be too long once its 4-byte header is in.
    return head + size.to_bytes(4, "big") + body + tail, ends, len(head) + 3


@pytest.mark.parametrize("case", FRAMED, ids=_IDS)
@settings(deadline=None, max_examples=100)
@given(data=st.data(), limit=st.integers(1, 16))
def test_oversized_message_fails_in_the_feed_that_reveals_it(
    case: _Case, data: st.DataObject, limit: int
) -> None:
    """RemoteProtocolError exactly when the oversize shows, after all earlier messages."""
    stream, ends, reveal = _oversized_stream(data, case.framing, limit)
    for chunks in (_cut(data, stream), [stream[i : i + 1] for i in range(len(stream))]):
        reader = case.make(limit)
        out: list[str | bytes] = []
        start = 0
        for chunk in chunks:
            if start <= reveal < start + len(chunk):
                with pytest.raises(RemoteProtocolError):
                    reader.feed(chunk)
                break
            out += reader.feed(chunk)
            start += len(chunk)
        else:
            pytest.fail("the oversized message was never fed")
        assert out == [case.expect(message) for message, end in ends if end <= start]
