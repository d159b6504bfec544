"""Data: options, decoding, and the stream framers.

Rules of this module:

* ``encoding=None`` means bytes in and out; an encoding means ``str``, decoded
  and encoded with ``errors='surrogateescape'`` so that no byte is ever lost
  (``data.encode(encoding, 'surrogateescape')`` gives the original bytes back);
* raw framing (the seed's): every read is one message, decoded incrementally
  so that a character split across two reads is not broken;
* ``'line'``: messages end with ``b'\\n'`` or ``b'\\r\\n'`` (neither is part of
  the message); ``send`` appends the ``line_ending`` chosen (``'\\n'`` by default);
  ``'length'``: a 4-byte big-endian length, then that many bytes;
* a framed message longer than ``max_message_size`` is a
  :class:`RemoteProtocolError` as soon as it is detected (no unbounded buffer);
* buffers grow by appending and are compacted rarely: linear time in the input.
"""

from __future__ import annotations

import codecs
import struct
from enum import Enum
from typing import Any, Final, Protocol

from .errors import RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_RECV_BUFFER",
    "Framer",
    "Framing",
    "LengthFramer",
    "LineFramer",
    "MessageReader",
    "RawFramer",
    "encode_payload",
    "make_framer",
    "validate_encoding",
    "validate_framing",
    "validate_line_ending",
    "validate_max_message_size",
    "validate_recv_buffer",
]

DEFAULT_RECV_BUFFER: Final = 256
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 20
_MAX_RECV_BUFFER: Final = 1 << 26
_LENGTH_LIMIT: Final = (1 << 32) - 1
_HEADER: Final = struct.Struct(">I")
# Compact the length framer's buffer only when the consumed head is both large
# and most of the buffer, so each byte is moved O(1) times.
_COMPACT_AT: Final = 1 << 16


class Framing(Enum):
    """How a TCP byte stream is cut into RECEIVED messages."""

    RAW = "raw"
    LINE = "line"
    LENGTH = "length"


def validate_framing(framing: object) -> Framing:
    """``None``/``'raw'``/``'line'``/``'length'`` (or a :class:`Framing`)."""
    if framing is None:
        return Framing.RAW
    if isinstance(framing, Framing):
        return framing
    if isinstance(framing, str):
        try:
            return Framing(framing)
        except ValueError:
            pass
        raise ValueError(f"framing must be one of None, 'raw', 'line', 'length'; got {framing!r}")
    raise TypeError(f"framing must be a str or None, not {type(framing).__name__}")


def validate_encoding(encoding: object) -> str | None:
    """``None`` or the name of a text encoding Python knows."""
    if encoding is None:
        return None
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str or None, not {type(encoding).__name__}")
    try:
        codecs.lookup(encoding)
        "".encode(encoding)  # rejects bytes-to-bytes codecs such as 'hex'
    except LookupError:
        raise ValueError(f"encoding {encoding!r} is not a text encoding Python knows") from None
    return encoding


#: The line endings ``send`` may append under line framing.
_LINE_ENDINGS: Final = ("\n", "\r\n")


def validate_line_ending(value: object) -> str:
    """``line_ending``: what ``send`` appends under line framing, ``'\\n'`` or ``'\\r\\n'``."""
    if not isinstance(value, str):
        raise TypeError(f"line_ending must be a str, not {type(value).__name__}")
    if value not in _LINE_ENDINGS:
        raise ValueError(f"line_ending must be '\\n' or '\\r\\n', got {value!r}")
    return value


def _positive_int(value: object, name: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 < value <= limit:
        raise ValueError(f"{name} must be in 1-{limit}, got {value}")
    return int(value)


def validate_recv_buffer(value: object) -> int:
    """``recvBuffer``: a positive int (at most 64 MiB: it is allocated per read)."""
    return _positive_int(value, "recvBuffer", _MAX_RECV_BUFFER)


def validate_max_message_size(value: object) -> int:
    """``max_message_size``: a positive int that fits the 4-byte length prefix."""
    return _positive_int(value, "max_message_size", _LENGTH_LIMIT)


def encode_payload(data: object, encoding: str | None) -> bytes:
    """The bytes of one ``send``; ``TypeError`` for anything but str/bytes-like."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        if encoding is None:
            raise TypeError("data is a str but this object has encoding=None: send bytes")
        return data.encode(encoding, "surrogateescape")
    if isinstance(data, (bytes, bytearray, memoryview)):
        # A copy: the caller may reuse its buffer before the bytes are written.
        return bytes(data)
    raise TypeError(f"data must be str, bytes, bytearray or memoryview, not {type(data).__name__}")


class Framer(Protocol):
    """Cuts a byte stream into messages and frames outgoing messages."""

    def feed(self, data: bytes) -> list[bytes]:
        """Messages completed by *data* (``RemoteProtocolError`` if oversized)."""

    def end(self) -> list[bytes]:
        """Messages still due at end of stream (``RemoteProtocolError`` if cut)."""

    def frame(self, payload: bytes) -> bytes:
        """The bytes that carry *payload* as one message (``ValueError`` if it can't)."""


class RawFramer:
    """The seed's framing: each read is one message."""

    __slots__ = ()

    def feed(self, data: bytes) -> list[bytes]:
        """One message per non-empty read."""
        return [data] if data else []

    def end(self) -> list[bytes]:
        """Nothing is ever pending."""
        return []

    def frame(self, payload: bytes) -> bytes:
        """Sent as is."""
        return payload


class LineFramer:
    """Line-delimited messages: ``b'\\n'`` or ``b'\\r\\n'`` ends one."""

    __slots__ = ("_ending", "_max", "_partial")

    def __init__(
        self, max_message_size: object = DEFAULT_MAX_MESSAGE_SIZE, line_ending: object = "\n"
    ) -> None:
        self._max = validate_max_message_size(max_message_size)
        self._ending = validate_line_ending(line_ending).encode("ascii")
        self._partial = bytearray()

    def _too_long(self, size: int, complete: list[bytes] | None = None) -> RemoteProtocolError:
        self._partial.clear()
        return RemoteProtocolError(
            f"line of {size} bytes or more exceeds max_message_size={self._max}", complete or ()
        )

    def feed(self, data: bytes) -> list[bytes]:
        """Lines completed by *data*, without their line end."""
        partial = self._partial
        if partial:
            cut = data.find(b"\n")
            if cut < 0:
                partial += data
                if len(partial) > self._max and self._over(partial):
                    raise self._too_long(len(partial))
                return []
            partial += data[:cut]
            if len(partial) > self._max and self._over(partial):
                raise self._too_long(len(partial))
            messages: list[bytes] = [bytes(partial)]
            partial.clear()
            data = data[cut + 1 :]
            # bytes.split does the rest at C speed.
            lines = data.split(b"\n")
            messages += lines
            crlf = b"\r" in data or messages[0].endswith(b"\r")
        else:
            messages = data.split(b"\n")
            crlf = b"\r" in data
        rest = messages.pop()
        if crlf:  # only then pay for a look at each line
            messages = [m[:-1] if m.endswith(b"\r") else m for m in messages]
        limit = self._max
        if messages and max(map(len, messages)) > limit:
            good = 0
            while len(messages[good]) <= limit:
                good += 1
            raise self._too_long(len(messages[good]), messages[:good])
        if rest:
            if len(rest) > limit and self._over(rest):
                raise self._too_long(len(rest), messages)
            partial += rest
        return messages

    def _over(self, pending: bytes | bytearray) -> bool:
        """A pending head is too long, unless its one extra byte is the CR of a CRLF."""
        return len(pending) > self._max + 1 or pending[-1] != 0x0D

    def end(self) -> list[bytes]:
        """An unterminated last line is still a line (as when reading a file)."""
        if not self._partial:
            return []
        last = bytes(self._partial)
        self._partial.clear()
        if len(last) > self._max:
            raise RemoteProtocolError(
                f"line of {len(last)} bytes exceeds max_message_size={self._max}"
            )
        return [last]

    def frame(self, payload: bytes) -> bytes:
        """*payload* and the line end; one inside it would split it, so it is refused."""
        if b"\n" in payload or payload.endswith(b"\r"):
            # A trailing CR would read back as the CRLF line end, and be lost.
            raise ValueError(
                "data contains a newline (or ends with a carriage return), which "
                "framing='line' uses as delimiter"
            )
        if len(payload) > self._max:
            raise ValueError(f"data is {len(payload)} bytes, over max_message_size={self._max}")
        return payload + self._ending


class LengthFramer:
    """Messages prefixed by their length, 4 bytes big-endian."""

    __slots__ = ("_buffer", "_compact_at", "_max", "_pos")

    def __init__(self, max_message_size: object = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max = validate_max_message_size(max_message_size)
        self._buffer = bytearray()
        self._pos = 0
        # Per framer, so a test can lower it (a compiled core inlines the constant).
        self._compact_at = _COMPACT_AT

    def _parse(self, view: memoryview, pos: int, out: list[bytes]) -> int:
        """Append the whole messages in *view* from *pos*; return where parsing stopped."""
        end = len(view)
        limit = self._max
        unpack = _HEADER.unpack_from
        while end - pos >= 4:
            (size,) = unpack(view, pos)
            if size > limit:
                raise RemoteProtocolError(
                    f"message of {size} bytes exceeds max_message_size={limit}", out
                )
            stop = pos + 4 + size
            if stop > end:
                break
            out.append(view[pos + 4 : stop].tobytes())
            pos = stop
        return pos

    def feed(self, data: bytes) -> list[bytes]:
        """Messages completed by *data*."""
        out: list[bytes] = []
        buffer = self._buffer
        if not buffer:
            # Nothing pending: parse straight from the caller's bytes, keep the tail.
            with memoryview(data) as view:
                pos = self._parse(view, 0, out)
                if pos < len(data):
                    buffer += view[pos:]
            return out
        buffer += data
        with memoryview(buffer) as view:
            pos = self._parse(view, self._pos, out)
        if pos == len(buffer):
            buffer.clear()
            pos = 0
        elif pos > self._compact_at and pos * 2 > len(buffer):
            del buffer[:pos]
            pos = 0
        self._pos = pos
        return out

    def end(self) -> list[bytes]:
        """A message cut by the end of the stream is an error, not a message."""
        pending = len(self._buffer) - self._pos
        if pending:
            self._buffer.clear()
            self._pos = 0
            raise RemoteProtocolError(f"stream ended inside a message ({pending} bytes pending)")
        return []

    def frame(self, payload: bytes) -> bytes:
        """The length prefix and *payload*."""
        if len(payload) > self._max:
            raise ValueError(f"data is {len(payload)} bytes, over max_message_size={self._max}")
        return _HEADER.pack(len(payload)) + payload


def make_framer(
    framing: Framing, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, line_ending: str = "\n"
) -> Framer:
    """The framer for *framing*."""
    if framing is Framing.LINE:
        return LineFramer(max_message_size, line_ending)
    if framing is Framing.LENGTH:
        return LengthFramer(max_message_size)
    return RawFramer()


class MessageReader:
    """Bytes from the stream in, RECEIVED payloads (``str`` or ``bytes``) out."""

    __slots__ = ("_decoder", "_encoding", "_framer", "_raw")

    def __init__(
        self,
        framing: Framing = Framing.RAW,
        encoding: str | None = "utf-8",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        line_ending: str = "\n",
    ) -> None:
        self._framer = make_framer(framing, max_message_size, line_ending)
        self._raw = framing is Framing.RAW
        self._encoding = encoding
        # Only raw reads can split a character: framed messages are decoded whole.
        self._decoder = (
            codecs.getincrementaldecoder(encoding)("surrogateescape")
            if encoding is not None and self._raw
            else None
        )

    def feed(self, data: bytes, limit: int | None = None) -> list[str] | list[bytes]:
        """Payloads completed by *data*.

        Raw framing delivers each read as it came; a *data* longer than
        *limit* (a binding that could not bound its read) counts as reads of
        at most *limit* bytes, as ``recvBuffer`` promises.
        """
        if self._raw:
            if limit is not None and len(data) > limit:
                pieces: list[Any] = []
                for start in range(0, len(data), limit):
                    pieces += self.feed(data[start : start + limit])
                return pieces
            if self._decoder is None:
                return [data] if data else []
            text = self._decoder.decode(data)
            return [text] if text else []
        try:
            messages = self._framer.feed(data)
        except RemoteProtocolError as exc:
            exc.complete = list(self._decode([m for m in exc.complete if isinstance(m, bytes)]))
            raise
        return self._decode(messages)

    def _decode(self, messages: list[bytes]) -> list[str] | list[bytes]:
        if self._encoding is None:
            return messages
        encoding = self._encoding
        return [m.decode(encoding, "surrogateescape") for m in messages]

    def end(self) -> list[str] | list[bytes]:
        """Payloads still due when the stream ends."""
        if self._raw:
            if self._decoder is None:
                return []
            # Bytes of an unfinished character come out surrogate-escaped: nothing is lost.
            text = self._decoder.decode(b"", True)
            return [text] if text else []
        return self._decode(self._framer.end())

    def frame(self, payload: bytes) -> bytes:
        """Frame one outgoing payload."""
        if self._raw:
            return payload  # sent as is: no call on the hot path
        return self._framer.frame(payload)
