"""The TCP server: listening state and the registry of its clients.

Rules of this module:

* states: STOPPED -> LISTENING -> STOPPING -> STOPPED; ``start`` in any state
  but STOPPED is SocketError 1000; ``stop`` when not LISTENING is a no-op;
* a failed bind leaves the server STOPPED, with the error decided by
  :func:`~jfsocket.core.errors.translate_os_error` (1005 for "in use");
* clients are keyed by their remote ``(ip, port)``; a connection accepted while
  not LISTENING is refused (the binding closes it, no event);
* ``send``/``close`` targets: ``remote=None`` is every client; an unknown
  remote is 1003, one that was connected and has gone is 1001;
* STOPPED comes after every client's DISCONNECT.
"""

from __future__ import annotations

import errno as _errno
import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from enum import Enum, auto
from typing import Final, Generic, TypeVar

from .addresses import validate_ip, validate_port, validate_remote
from .errors import ErrorCode, LocalProtocolError, OsContext, SocketError, translate_os_error
from .events import Address, Event, Started, Stopped
from .stats import Stats
from .timing import validate_timeout

__all__ = ["ACCEPT_RETRY_DELAY", "AcceptAction", "ServerModel", "ServerState", "validate_backlog"]

logger = logging.getLogger("jfsocket")

C = TypeVar("C")

#: How many departed remotes are remembered to tell 1001 from 1003.
_DEPARTED_MEMORY: Final = 1024


#: The most the OS takes (SOMAXCONN is far below on every platform; it caps it).
_MAX_BACKLOG: Final = 65535


def validate_backlog(value: object) -> int:
    """``backlog``: an int in 0-65535 (the OS caps it at its own SOMAXCONN)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"backlog must be an int, not {type(value).__name__}")
    if not 0 <= value <= _MAX_BACKLOG:
        raise ValueError(f"backlog must be in 0-{_MAX_BACKLOG}, got {value}")
    return int(value)


#: Seconds an accept loop waits after an error that may last (no fds left).
ACCEPT_RETRY_DELAY: Final = 0.1
#: accept() failed for that one connection (it was reset or refused on its way
#: in, as accept(2) documents): the next one may be fine.
_ACCEPT_TRANSIENT: Final = frozenset(
    {
        _errno.ECONNABORTED,
        _errno.EPROTO,
        _errno.EPERM,
        _errno.EINTR,
        _errno.EAGAIN,
        _errno.ENETDOWN,
        _errno.ENETUNREACH,
        _errno.EHOSTDOWN,
        _errno.EHOSTUNREACH,
        _errno.ENOPROTOOPT,
        _errno.EOPNOTSUPP,
    }
    | ({_errno.ENONET} if hasattr(_errno, "ENONET") else set())
)
#: The process or system is out of something: accepting again at once would spin.
_ACCEPT_CAPACITY: Final = frozenset({_errno.EMFILE, _errno.ENFILE, _errno.ENOBUFS, _errno.ENOMEM})


class AcceptAction(Enum):
    """What an accept loop does after ``accept()`` failed."""

    STOP = auto()  # the listener was closed by stop(): the loop ends
    RETRY = auto()  # that connection failed on its way in: accept the next
    WAIT = auto()  # wait ACCEPT_RETRY_DELAY, then accept again


class ServerState(Enum):
    """Where a server is in its life."""

    STOPPED = auto()
    STARTING = auto()
    LISTENING = auto()
    STOPPING = auto()


_S = ServerState
_START_FROM: Final[Mapping[ServerState, ServerState]] = {_S.STOPPED: _S.STARTING}


class ServerModel(Generic[C]):
    """The sans-I/O model of a TCP server whose clients are of type *C*."""

    def __init__(
        self,
        source: object,
        ip: object,
        port: object,
        backlog: object = 128,
        dual_stack: object = True,
    ) -> None:
        self._source = source
        #: The address to bind, validated.
        self.address: Address = (validate_ip(ip), validate_port(port))
        #: Connections the OS may queue before we accept them.
        self.backlog = validate_backlog(backlog)
        if not isinstance(dual_stack, bool):
            raise TypeError(f"dual_stack must be a bool, not {type(dual_stack).__name__}")
        #: For an IPv6 address, what the binding sets IPV6_V6ONLY to (the same on
        #: every binding and OS, whatever its default): ``None`` for IPv4.  With
        #: dual stack, ``'::'`` takes IPv4 clients too (their addresses come
        #: plain, see :func:`normalize_sockaddr`).
        self.v6only: bool | None = None if ":" not in self.address[0] else not dual_stack
        self._host: Address | None = None
        self._state = ServerState.STOPPED
        self._clients: dict[Address, C] = {}
        self._departed: OrderedDict[Address, None] = OrderedDict()
        self._accept_trouble = False  # logged once until an accept succeeds again
        #: While stopping: when the clients still connected are closed.
        self._close_at: float | None = None
        #: Connections registered, and refused for arriving while not listening.
        self.accepted = 0
        self.refused = 0

    @property
    def state(self) -> ServerState:
        """The current :class:`ServerState`."""
        return self._state

    @property
    def is_listening(self) -> bool:
        """Accepting connections (the seed's ``isAlive``)."""
        return self._state is ServerState.LISTENING

    @property
    def host(self) -> Address:
        """The address bound (the OS's port for port 0), or the one asked for."""
        return self._host if self._host is not None else self.address

    @property
    def clients(self) -> dict[Address, C]:
        """A copy of the registry."""
        return dict(self._clients)

    @property
    def connected(self) -> int:
        """How many clients are registered (no copy: asked on every departure)."""
        return len(self._clients)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Address:
        """User ``start()``: the address to bind; 1000 unless STOPPED."""
        new = _START_FROM.get(self._state)
        if new is None:
            raise SocketError(ErrorCode.CONNECTION_EXISTS)
        self._state = new
        return self.address

    def start_failed(self, exc: BaseException) -> SocketError:
        """Binding or listening failed: STOPPED again; the error to raise."""
        self._require(ServerState.STARTING, "start_failed")
        self._state = ServerState.STOPPED
        return translate_os_error(OsContext.BIND, exc)

    def listening(self, host: Address) -> list[Event]:
        """The socket listens on *host*: STARTED."""
        self._require(ServerState.STARTING, "listening")
        self._state = ServerState.LISTENING
        self._host = host
        return [Started(source=self._source, host=host)]

    def stop(self, grace: object = None, now: float = 0.0) -> list[C] | None:
        """User ``stop(grace)`` at *now*: ``None`` if not listening, else the
        clients to close at once (every one; none with a *grace* period, in
        which they keep working until they close or :meth:`handle_timer` says
        the period is over).  Either way the listener closes now."""
        seconds = validate_timeout(grace, "grace")
        if self._state is not ServerState.LISTENING:
            return None
        self._state = ServerState.STOPPING
        if seconds is None:
            self._close_at = -math.inf
            return list(self._clients.values())
        self._close_at = now + seconds
        return []

    def timer(self) -> float | None:
        """When a stop's grace period ends (``None``: no deadline pending)."""
        if self._state is not ServerState.STOPPING or not self._clients:
            return None
        return self._close_at

    def handle_timer(self, now: float) -> list[C]:
        """The clients to close at *now*: every one still connected once the
        stop's grace period is over (or at once without one), else none."""
        close_at = self._close_at
        if self._state is not ServerState.STOPPING or close_at is None or now < close_at:
            return []
        if close_at != -math.inf and self._clients:
            logger.info(
                "server %s: grace period over, closing %d clients", self.host, len(self._clients)
            )
            self._close_at = -math.inf  # logged once
        return list(self._clients.values())

    def stopped(self) -> list[Event]:
        """Listener and clients are closed: STOPPED."""
        self._require(ServerState.STOPPING, "stopped")
        if self._clients:
            raise LocalProtocolError(f"stopped with {len(self._clients)} clients still registered")
        self._state = ServerState.STOPPED
        self._close_at = None
        return [Stopped(source=self._source)]

    def _require(self, state: ServerState, what: str) -> None:
        if self._state is not state:
            raise LocalProtocolError(f"{what} is not allowed in state {self._state.name}")

    # -- clients ---------------------------------------------------------------

    def accept_failed(self, exc: BaseException) -> AcceptAction:
        """``accept()`` raised *exc*: stop, retry, or wait first.

        Running out of file descriptors or memory waits (logged once until an
        accept succeeds), so the loop never spins; an error that is not known
        to be transient is logged with its traceback and waited on the same way,
        so a server never dies silently nor spins hot on it.
        """
        if self._state is not ServerState.LISTENING:
            return AcceptAction.STOP
        code = exc.errno if isinstance(exc, OSError) else None
        if code in _ACCEPT_TRANSIENT:
            return AcceptAction.RETRY
        if not self._accept_trouble:
            self._accept_trouble = True
            if code in _ACCEPT_CAPACITY:
                logger.warning("server %s: cannot accept (%s); retrying", self.host, exc)
            else:
                logger.error("server %s: accept failed; retrying", self.host, exc_info=exc)
        return AcceptAction.WAIT

    def broadcast_skips(self, remote: object, error: SocketError) -> bool:
        """A send to one of ``targets(remote)`` raised *error*: ``True`` if a
        broadcast goes on without that client (it left since the snapshot)."""
        return remote is None and error.errno == ErrorCode.NOT_CONNECTED

    def accept(self, remote: Address, client: C) -> bool:
        """A connection from *remote* arrived: register it, or ``False`` to refuse it."""
        self._accept_trouble = False
        if self._state is not ServerState.LISTENING:
            self.refused += 1
            return False
        if remote in self._clients:
            raise LocalProtocolError(f"{remote} is already registered")
        self.accepted += 1
        self._clients[remote] = client
        self._departed.pop(remote, None)
        return True

    def remove(self, remote: Address, client: C | None = None) -> None:
        """*remote*'s connection is closed: it leaves the registry.

        With *client*, only if that is the one registered (a newer connection
        from the same remote stays).
        """
        registered = self._clients.get(remote)
        if registered is None or (client is not None and registered is not client):
            return
        del self._clients[remote]
        self._departed[remote] = None
        if len(self._departed) > _DEPARTED_MEMORY:
            self._departed.popitem(last=False)

    def stats(self) -> Stats:
        """Connections accepted and refused so far, and connected now."""
        return Stats(accepted=self.accepted, refused=self.refused, current=len(self._clients))

    def targets(self, remote: object = None) -> list[C]:
        """Clients a ``send``/``close`` with *remote* addresses: one, or all."""
        if remote is None:
            return list(self._clients.values())
        key = validate_remote(remote)
        client = self._clients.get(key)
        if client is not None:
            return [client]
        if key in self._departed:
            raise SocketError(ErrorCode.NOT_CONNECTED)
        raise SocketError(ErrorCode.ADDRESS_NOT_FOUND)
