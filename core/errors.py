"""Error vocabulary: the seed's numeric codes and the exceptions that carry them.

Every user-facing failure is decided in the core and raised as a
:class:`SocketError` whose code is chosen at the origin, never re-guessed by a
binding.  Mistakes of a *binding* (feeding the core an input its state does not
allow) are :class:`LocalProtocolError`; violations of framing by the *peer* are
:class:`RemoteProtocolError`.  OS errors are translated in exactly one place,
:func:`translate_os_error`.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Sequence
from enum import Enum, IntEnum

__all__ = [
    "ErrorCode",
    "LocalProtocolError",
    "OsContext",
    "ProtocolError",
    "RemoteProtocolError",
    "SocketError",
    "translate_os_error",
]


class ErrorCode(IntEnum):
    """The numeric codes of :class:`SocketError` (1000-1006 are the seed's)."""

    CONNECTION_EXISTS = 1000
    NOT_CONNECTED = 1001
    ADDRESS_EXISTS = 1002
    ADDRESS_NOT_FOUND = 1003
    NOT_MULTICAST = 1004
    ADDRESS_IN_USE = 1005
    CONNECT_FAILED = 1006
    #: beyond the seed: binding failed for another reason than "in use".
    ADDRESS_UNAVAILABLE = 1007
    #: beyond the seed: a deadline passed (idle, send, connect).
    TIMED_OUT = 1008
    #: beyond the seed: more bytes accepted and unwritten than ``max_pending``.
    SLOW_CONSUMER = 1009


_MESSAGES: dict[int, str] = {
    ErrorCode.CONNECTION_EXISTS: "connection already exists",
    ErrorCode.NOT_CONNECTED: "remote has disconnected, or not connected yet",
    ErrorCode.ADDRESS_EXISTS: "address already exists",
    ErrorCode.ADDRESS_NOT_FOUND: "address does not exist",
    ErrorCode.NOT_MULTICAST: (
        "not a multicast address: must be 224.0.0.0 ~ 239.255.255.255, or ff00::/8 for IPv6"
    ),
    ErrorCode.ADDRESS_IN_USE: "address already in use",
    ErrorCode.CONNECT_FAILED: "could not connect",
    ErrorCode.ADDRESS_UNAVAILABLE: (
        "address cannot be bound: not an address of this host, or not permitted"
    ),
    ErrorCode.TIMED_OUT: "timed out",
    ErrorCode.SLOW_CONSUMER: "slow consumer: more bytes waiting to be sent than max_pending",
}


class SocketError(Exception):
    """A failure with one of the seed's numeric codes.

    ``errno`` is the code (an :class:`ErrorCode` when known), ``err`` the inner
    exception that caused it (or ``None``), ``message`` the code's text.
    """

    # ErrorCode named: typed int, a compiled core would keep a plain int.
    errno: ErrorCode | int
    err: BaseException | None
    message: str

    # Typed object: checked below, with messages a compiled core's own checks lack.
    def __init__(self, errno: object, err: object = None) -> None:
        if isinstance(errno, bool) or not isinstance(errno, int):
            raise TypeError(f"errno must be an int, not {type(errno).__name__}")
        if err is not None and not isinstance(err, BaseException):
            raise TypeError(f"err must be an exception or None, not {type(err).__name__}")
        try:
            code: ErrorCode | int = ErrorCode(errno)
        except ValueError:
            code = int(errno)
        super().__init__(code, err)
        self.errno = code
        self.err = err
        self.message = _MESSAGES.get(code, "unknown error")
        if err is not None and self.__cause__ is None:
            self.__cause__ = err

    def __str__(self) -> str:
        text = f"[{int(self.errno)}] {self.message}"
        if self.err is not None:
            text += f" ({type(self.err).__name__}: {self.err})"
        return text

    def __repr__(self) -> str:
        return f"SocketError({int(self.errno)}, {self.err!r})"


class ProtocolError(Exception):
    """Base of the errors about the rules of the protocol itself."""


class LocalProtocolError(ProtocolError):
    """The caller (normally a binding) fed the core an input its state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the framing rules (e.g. a message over ``max_message_size``).

    ``complete`` holds the messages that were whole before the violation, so
    that they can still be delivered.
    """

    def __init__(self, message: str, complete: Sequence[bytes | str] = ()) -> None:
        super().__init__(message)
        self.complete: list[bytes | str] = list(complete)


class OsContext(Enum):
    """Which operation an OS error came from; it decides the error code."""

    BIND = "bind"
    CONNECT = "connect"
    #: Reading an accepted or adopted socket's addresses: it has already gone.
    ADOPT = "adopt"


_IN_USE = frozenset({_errno.EADDRINUSE})


def translate_os_error(context: OsContext, exc: BaseException) -> SocketError:
    """Turn an OS-level failure of *context* into the SPEC's :class:`SocketError`.

    The one place where the bindings' ``OSError`` (or trio's / asyncio's
    equivalents, and name-resolution failures) become codes.
    """
    if isinstance(exc, SocketError):
        return exc
    if context is OsContext.CONNECT:
        return SocketError(ErrorCode.CONNECT_FAILED, exc)
    if context is OsContext.ADOPT:
        return SocketError(ErrorCode.NOT_CONNECTED, exc)
    if isinstance(exc, OSError) and exc.errno in _IN_USE:
        return SocketError(ErrorCode.ADDRESS_IN_USE, exc)
    return SocketError(ErrorCode.ADDRESS_UNAVAILABLE, exc)
