"""SocketError, its codes, and the translation of OS errors."""

from __future__ import annotations

import errno
import pickle

import pytest
from jfsocket.core import ErrorCode, OsContext, SocketError, translate_os_error

SEED_CODES = {
    1000: "connection already exists",
    1001: "remote has disconnected, or not connected yet",
    1002: "address already exists",
    1003: "address does not exist",
    1004: "not a multicast address: must be 224.0.0.0 ~ 239.255.255.255, or ff00::/8 for IPv6",
    1005: "address already in use",
    1006: "could not connect",
}


@pytest.mark.parametrize(("code", "text"), sorted(SEED_CODES.items()))
def test_every_seed_code_has_its_text(code: int, text: str) -> None:
    """Each code of SPEC §4 carries its message, and str() shows both."""
    error = SocketError(code)
    assert error.errno == code
    assert error.errno is ErrorCode(code)
    assert error.message == text
    assert error.err is None
    assert str(error) == f"[{code}] {text}"


def test_inner_error_is_kept_shown_and_chained() -> None:
    """``err`` is the cause: kept, shown in str(), and chained for tracebacks."""
    inner = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    error = SocketError(1006, inner)
    assert error.err is inner
    assert error.__cause__ is inner
    assert "ConnectionRefusedError" in str(error)
    assert str(error).startswith("[1006] could not connect")


def test_is_an_exception_and_pickles() -> None:
    """A plain Exception subclass that survives pickling (e.g. across processes)."""
    error = SocketError(ErrorCode.NOT_MULTICAST, ValueError("x"))
    assert isinstance(error, Exception)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.errno == 1004
    assert isinstance(copy.err, ValueError)
    assert repr(copy) == "SocketError(1004, ValueError('x'))"


def test_unknown_code_is_allowed_with_a_generic_text() -> None:
    """Codes outside the table still construct (forward compatibility)."""
    error = SocketError(4242)
    assert error.errno == 4242
    assert error.message == "unknown error"


@pytest.mark.parametrize("bad", ["1000", 1000.0, None, True])
def test_errno_must_be_an_int(bad: object) -> None:
    """A non-int code is a TypeError naming errno."""
    with pytest.raises(TypeError, match="errno"):
        SocketError(bad)


def test_err_must_be_an_exception() -> None:
    """``err`` is an exception or None."""
    with pytest.raises(TypeError, match="err"):
        SocketError(1000, "boom")


def test_beyond_code_1007_is_documented() -> None:
    """1007 is our addition: bind failures other than 'in use'."""
    assert SocketError(1007).message.startswith("address cannot be bound")


@pytest.mark.parametrize(
    ("context", "exc", "code"),
    [
        (OsContext.BIND, OSError(errno.EADDRINUSE, "in use"), 1005),
        (OsContext.BIND, OSError(errno.EADDRNOTAVAIL, "not here"), 1007),
        (OsContext.BIND, PermissionError(errno.EACCES, "denied"), 1007),
        (OsContext.CONNECT, ConnectionRefusedError(errno.ECONNREFUSED, "no"), 1006),
        (OsContext.CONNECT, TimeoutError("slow"), 1006),
        (OsContext.CONNECT, OSError("name does not resolve"), 1006),
    ],
)
def test_os_errors_translate_in_one_place(
    context: OsContext, exc: BaseException, code: int
) -> None:
    """OS failures become the SPEC codes, with the OS error kept as ``err``."""
    error = translate_os_error(context, exc)
    assert error.errno == code
    assert error.err is exc


def test_a_socket_error_translates_to_itself() -> None:
    """Translation does not wrap an error that already has a code."""
    error = SocketError(1005)
    assert translate_os_error(OsContext.BIND, error) is error
