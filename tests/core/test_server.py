"""The server model: lifecycle, registry, targets."""

from __future__ import annotations

import errno
import logging

import pytest
from jfsocket.core import (
    ACCEPT_RETRY_DELAY,
    AcceptAction,
    LocalProtocolError,
    OsContext,
    ServerModel,
    ServerState,
    SocketError,
    Started,
    Stopped,
    normalize_sockaddr,
    translate_os_error,
    validate_backlog,
)

A = ("127.0.0.1", 50001)
B = ("127.0.0.1", 50002)


def listening() -> ServerModel[str]:
    """A server that has fired STARTED on port 40000."""
    server: ServerModel[str] = ServerModel("srv", "127.0.0.1", 0)
    server.start()
    server.listening(("127.0.0.1", 40000))
    return server


def test_constructor_validates_address() -> None:
    """Bad ip or port: ValueError/TypeError naming it; IPv6 literals are fine."""
    with pytest.raises(ValueError, match="ip"):
        ServerModel("s", "localhost", 0)
    with pytest.raises(ValueError, match="port"):
        ServerModel("s", "127.0.0.1", 70000)
    with pytest.raises(TypeError, match="port"):
        ServerModel("s", "127.0.0.1", "80")
    assert ServerModel("s", "::1", 0).address == ("::1", 0)


def test_lifecycle_and_events() -> None:
    """STOPPED -> STARTING -> LISTENING -> STOPPING -> STOPPED, STARTED and STOPED."""
    server: ServerModel[str] = ServerModel("srv", "127.0.0.1", 0)
    assert server.host == ("127.0.0.1", 0) and not server.is_listening
    assert server.start() == ("127.0.0.1", 0)
    assert server.state is ServerState.STARTING
    assert server.listening(("127.0.0.1", 40000)) == [
        Started(source="srv", host=("127.0.0.1", 40000))
    ]
    assert server.is_listening and server.host == ("127.0.0.1", 40000)
    assert server.stop() == []
    assert server.state is ServerState.STOPPING
    assert server.stop() is None  # a second stop during the first: nothing to do
    assert server.stopped() == [Stopped(source="srv")]
    assert server.stop() is None
    server.start()  # can start again


@pytest.mark.parametrize("state", ["starting", "listening", "stopping"])
def test_start_unless_stopped_is_1000(state: str) -> None:
    """start() while started (or starting, stopping): SocketError 1000."""
    server = listening()
    if state == "starting":
        server = ServerModel("s", "127.0.0.1", 0)
        server.start()
    elif state == "stopping":
        server.stop()
    before = server.state
    with pytest.raises(SocketError) as info:
        server.start()
    assert info.value.errno == 1000 and server.state is before


def test_bind_failures() -> None:
    """Port in use is 1005, other bind errors 1007; the server stays startable."""
    server: ServerModel[str] = ServerModel("srv", "127.0.0.1", 80)
    server.start()
    in_use = OSError(errno.EADDRINUSE, "in use")
    error = server.start_failed(in_use)
    assert error.errno == 1005 and error.err is in_use
    assert server.state is ServerState.STOPPED
    server.start()
    assert server.start_failed(PermissionError(errno.EACCES, "no")).errno == 1007


def test_registry_and_targets() -> None:
    """Clients by remote; None targets all; unknown is 1003; departed is 1001."""
    server = listening()
    assert server.accept(A, "a") and server.accept(B, "b")
    assert server.clients == {A: "a", B: "b"}
    server.clients.clear()  # a copy
    assert len(server.clients) == 2 == server.connected
    assert server.targets() == ["a", "b"]
    assert server.targets(A) == ["a"]
    assert server.targets(("127.0.0.1", 50002)) == ["b"]
    with pytest.raises(SocketError) as info:
        server.targets(("127.0.0.1", 1))
    assert info.value.errno == 1003
    server.remove(A)
    server.remove(A)  # idempotent
    with pytest.raises(SocketError) as info:
        server.targets(A)
    assert info.value.errno == 1001
    with pytest.raises(TypeError, match="remote"):
        server.targets("127.0.0.1")
    with pytest.raises(ValueError, match="remote"):
        server.targets(("127.0.0.1", -1))
    assert server.accept(A, "a2")  # the same remote may come back
    assert server.targets(A) == ["a2"]


def test_departed_memory_is_bounded() -> None:
    """Old departures are forgotten (then 1003): memory does not grow forever."""
    server = listening()
    for port in range(1, 1100):
        server.accept(("127.0.0.1", port), "x")
        server.remove(("127.0.0.1", port))
    with pytest.raises(SocketError, match="1003"):
        server.targets(("127.0.0.1", 1))
    with pytest.raises(SocketError, match="1001"):
        server.targets(("127.0.0.1", 1099))


def test_accept_when_not_listening_refuses() -> None:
    """A connection that races stop() is refused, not registered."""
    server = listening()
    server.stop()
    assert server.accept(A, "a") is False
    assert server.clients == {} and server.connected == 0


def test_stop_hands_over_every_client_and_stopped_requires_them_gone() -> None:
    """stop() returns the clients to close; STOPED only after they are removed."""
    server = listening()
    server.accept(A, "a")
    server.accept(B, "b")
    assert server.stop() == ["a", "b"]
    with pytest.raises(LocalProtocolError):
        server.stopped()
    server.remove(A)
    server.remove(B)
    assert server.stopped() == [Stopped(source="srv")]


def test_binding_errors() -> None:
    """Impossible binding inputs are LocalProtocolError."""
    server = listening()
    with pytest.raises(LocalProtocolError):
        server.listening(("127.0.0.1", 1))
    with pytest.raises(LocalProtocolError):
        server.start_failed(OSError())
    with pytest.raises(LocalProtocolError):
        server.stopped()
    server.accept(A, "a")
    with pytest.raises(LocalProtocolError):
        server.accept(A, "again")


def test_remove_with_a_client_spares_a_newer_connection() -> None:
    """remove(remote, client) only removes that client: a newer one from the remote stays."""
    server = listening()
    server.accept(A, "old")
    server.remove(A)
    server.accept(A, "new")
    server.remove(A, "old")
    assert server.clients == {A: "new"}
    server.remove(A, "new")
    assert server.clients == {}


def test_backlog_is_validated() -> None:
    """backlog: an int in 0-65535 (not a bool); 128 by default; the error names it."""
    for bad in (True, "128", 1.5, None):
        with pytest.raises(TypeError, match="backlog"):
            validate_backlog(bad)
    for bad_value in (-5, -1, 65536):
        with pytest.raises(ValueError, match="backlog"):
            validate_backlog(bad_value)
    assert [validate_backlog(n) for n in (0, 128, 65535)] == [0, 128, 65535]
    assert ServerModel("s", "127.0.0.1", 0).backlog == 128
    assert ServerModel("s", "127.0.0.1", 0, backlog=0).backlog == 0
    with pytest.raises(ValueError, match="backlog"):
        ServerModel("s", "127.0.0.1", 0, backlog=-5)
    with pytest.raises(TypeError, match="backlog"):
        ServerModel("s", "127.0.0.1", 0, backlog=False)


def test_accept_failures_are_decided_here(caplog: pytest.LogCaptureFixture) -> None:
    """accept() errors: transient ones retry, capacity and unknown ones wait (logged
    once until an accept succeeds), and after stop() the loop ends."""
    server = listening()
    assert server.accept_failed(OSError(errno.ECONNABORTED, "aborted")) is AcceptAction.RETRY
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        for _ in range(3):
            assert server.accept_failed(OSError(errno.EMFILE, "no fds")) is AcceptAction.WAIT
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # once, not per retry
    assert "cannot accept" in caplog.records[0].getMessage()
    caplog.clear()
    server.accept(A, "a")  # it works again: the next trouble is logged again
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        assert server.accept_failed(OSError(errno.EBADF, "bad fd")) is AcceptAction.WAIT
        assert server.accept_failed(ValueError("not even an OSError")) is AcceptAction.WAIT
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert caplog.records[0].exc_info is not None  # with the traceback
    server.stop()
    assert server.accept_failed(OSError(errno.EBADF, "closed")) is AcceptAction.STOP
    assert ACCEPT_RETRY_DELAY > 0


def test_broadcast_skips_only_clients_that_left() -> None:
    """A broadcast goes on past a client that left (1001), not past other errors, and a
    send to one remote never swallows its error."""
    server = listening()
    gone = SocketError(1001)
    assert server.broadcast_skips(None, gone)
    assert not server.broadcast_skips(A, gone)
    assert not server.broadcast_skips(None, SocketError(1003))


def test_adopt_errors_are_1001() -> None:
    """A socket whose addresses cannot be read any more (the peer left first): 1001."""
    exc = OSError(errno.ENOTCONN, "not connected")
    error = translate_os_error(OsContext.ADOPT, exc)
    assert (error.errno, error.err) == (1001, exc)


def test_dual_stack_is_decided_once() -> None:
    """IPV6_V6ONLY for the bindings: off for a dual-stack IPv6 server (the
    default), on without it, not a question for IPv4."""
    assert ServerModel("s", "::", 0).v6only is False
    assert ServerModel("s", "::", 0, dual_stack=False).v6only is True
    assert ServerModel("s", "127.0.0.1", 0).v6only is None
    with pytest.raises(TypeError, match="dual_stack"):
        ServerModel("s", "::", 0, dual_stack="yes")


def test_an_ipv4_client_of_a_dual_stack_socket_has_its_own_address() -> None:
    assert normalize_sockaddr(("::ffff:127.0.0.1", 5000, 0, 0)) == ("127.0.0.1", 5000)
    assert normalize_sockaddr(("::1", 5000, 0, 0)) == ("::1", 5000)
