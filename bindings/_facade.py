"""The seed's public surface, read from the core: the same in every binding.

Properties (``recvBuffer``, ``isAlive``, ``host``, ``remote``, ``clients``,
``groups``), ``bind``, ``repr``, the models each object starts with and group
membership only read or forward to the core's models, so each binding's
classes inherit them from here and add what does I/O or waits.  The async
bindings also share the server's ``send``/``close`` loops (no runtime call in
them: the clients' own methods do the waiting).
"""

from __future__ import annotations

import contextlib
import random
import ssl as _ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

from jfsocket.core import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING,
    DEFAULT_RECV_BUFFER,
    Address,
    Backoff,
    Callback,
    CallbackRegistry,
    Connection,
    ConnectionOptions,
    Data,
    Disconnected,
    EventTypes,
    Framing,
    GaveUp,
    GroupChange,
    InterfaceSpec,
    InterfaceTable,
    Keepalive,
    Membership,
    ReceiverModel,
    Redialer,
    Role,
    SenderModel,
    ServerModel,
    SocketError,
    Stats,
    StreamEvent,
    TlsInfo,
    encode_payload,
    validate_host,
    validate_port,
    validate_reconnect,
    validate_timeout,
)

from ._interfaces import host_interfaces
from ._sockopts import MULTICAST_OS, SetsOptions, apply_changes
from ._tls import check_context, server_name

__all__ = [
    "AsyncServerOps",
    "ClientFacade",
    "Evts",
    "ReceiverFacade",
    "SenderFacade",
    "ServerFacade",
    "client_parts",
    "raise_failure",
    "redial",
    "wrong_runtime",
]

_S = TypeVar("_S")
#: The constructors' ``evts``: event key (member or string) to callback.
Evts = dict[EventTypes | str, Callback | None]


def raise_failure(error: SocketError, exc: BaseException) -> NoReturn:
    """Raise what a failed OS step means: the core's *error* for an ``OSError``;
    anything else (a cancellation, Ctrl-C) goes on as itself."""
    if isinstance(exc, OSError):
        raise error from exc
    raise exc


def wrong_runtime(obj: object, binding: str, needs: str) -> RuntimeError:
    """The error for an async object used outside the runtime its binding is for."""
    others = {"trio": "asyncio", "asyncio": "trio"}
    return RuntimeError(
        f"{type(obj).__name__} of jfsocket.bindings.{binding} needs {needs}; "
        f"for {others[binding]}, use jfsocket.bindings.{others[binding]}"
    )


class _Bindable:
    _registry: CallbackRegistry

    def bind(self, key: EventTypes | str | None = None, evt: Callback | None = None) -> None:
        """Bind *evt* to event *key* (member or its string); ``None`` unbinds."""
        self._registry.bind(key, evt)


async def redial(
    client: Any,
    redial: Redialer,
    clock: Callable[[], float],
    sleep_until: Callable[[float], Awaitable[object]],
) -> None:
    """The async bindings' redial loop: wait for the core's next dial time,
    dial *client*'s remote, and on failure let the core say when to try
    again, until one connects, the user closes, or the core gives up."""
    while (deadline := redial.timer()) is not None:
        await sleep_until(deadline)
        if not redial.handle_timer(clock()):
            continue
        try:
            await client.connect(*client.remote)
            return
        except SocketError as exc:
            client._dispatcher.core.publish(redial.failed(clock(), random.random(), exc))


def client_parts(
    server: ServerFacade | None, evts: Evts | None, **options: Any
) -> tuple[CallbackRegistry, ConnectionOptions]:
    """A client's registry and options (*options*: :class:`ConnectionOptions`'
    keywords): its own, or inherited from its server."""
    if server is not None:
        # Shared, not copied: a connection copies its options before it changes one.
        return server._registry.child(Role.CLIENT), server._options
    return CallbackRegistry(Role.CLIENT, evts), ConnectionOptions(**options)


class ClientFacade(_Bindable, Generic[_S]):
    """``TcpClient``'s constructor and properties; *_S* is the binding's socket type."""

    _conn: Connection
    #: What ``socket=`` must be, and its name for the error.
    _socket_type: ClassVar[type]

    def __init__(
        self,
        socket: _S | None = None,
        evts: Evts | None = None,
        *,
        encoding: str | None = "utf-8",
        framing: str | Framing | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        recv_buffer: int = DEFAULT_RECV_BUFFER,
        line_ending: str = "\n",
        half_open: bool = False,
        idle_timeout: float | None = None,
        send_timeout: float | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        keepalive: bool | Keepalive = False,
        reconnect: bool | Backoff | None = None,
        ssl: _ssl.SSLContext | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        _server: Any = None,
    ) -> None:
        if socket is not None and not isinstance(socket, self._socket_type):
            kind = self._socket_type
            raise TypeError(
                f"socket must be a {kind.__module__}.{kind.__qualname__}, "
                f"not {type(socket).__name__}"
            )
        if socket is not None and ssl is not None:
            raise ValueError("ssl= with socket=: adopt a socket whose TLS is already set up")
        self._registry, options = client_parts(
            _server,
            evts,
            encoding=encoding,
            framing=framing,
            max_message_size=max_message_size,
            recv_buffer=recv_buffer,
            line_ending=line_ending,
            half_open=half_open,
            idle_timeout=idle_timeout,
            send_timeout=send_timeout,
            max_pending=max_pending,
            keepalive=keepalive,
            handshake_timeout=handshake_timeout,
        )
        #: The user's TLS context (a server's client: the server's); ``None``: plaintext.
        self._tls_context: _ssl.SSLContext | None = (
            _server._tls_context if _server is not None else check_context(ssl, server=False)
        )
        backoff = validate_reconnect(reconnect)
        #: Dials again after a connection the user did not close ended (a client's own).
        self._redial = Redialer(self, backoff) if backoff is not None else None
        self._init(options, _server)
        if socket is not None:
            self._given(socket)

    def _dial_args(
        self, ip: object, port: object, timeout: object, server_hostname: object
    ) -> tuple[str, int, float | None, str | None]:
        """``connect``'s arguments checked before anything starts: the host,
        the port, the timeout in seconds, and the name the server's
        certificate is checked against (``None`` without TLS)."""
        host = validate_host(ip)
        return (
            host,
            validate_port(port),
            validate_timeout(timeout, "timeout"),
            server_name(host, server_hostname, self._tls_context),
        )

    def _stream_ends(self) -> tuple[type[StreamEvent], ...]:
        """The events after which an ``async for`` over this client ends: its
        connection's end, or, redialing, giving up (``close()`` ends it too)."""
        return (Disconnected,) if self._redial is None else (GaveUp,)

    def _init(self, options: ConnectionOptions, server: Any) -> None:
        """The binding's part: its dispatcher and :class:`Connection`."""
        raise NotImplementedError

    def _given(self, socket: _S) -> None:
        """The binding's part: adopt a connected *socket*."""
        raise NotImplementedError

    @property
    def recvBuffer(self) -> int:
        """Most bytes read at once (default 256)."""
        return self._conn.recv_buffer

    @recvBuffer.setter
    def recvBuffer(self, value: int) -> None:
        self._conn.recv_buffer = value

    @property
    def isAlive(self) -> bool:
        """Connected."""
        return self._conn.is_open

    @property
    def stats(self) -> Stats:
        """What this client has done so far (all its connections): a snapshot."""
        redial = self._redial
        return self._conn.stats(redial.reconnects if redial is not None else 0)

    @property
    def reconnecting(self) -> bool:
        """Down, and going to dial again (``reconnect``): a connection ended
        that the user did not close, and the client has not given up."""
        redial = self._redial
        conn = self._conn
        return redial is not None and redial.active and not conn.asked and not conn.is_open

    @property
    def host(self) -> Address | None:
        """Local ``(ip, port)`` (``None`` before the first connection)."""
        return self._conn.host

    @property
    def tls(self) -> TlsInfo | None:
        """What the TLS handshake agreed on (version, cipher, peer certificate,
        ALPN protocol); ``None`` on plaintext or before the first connection."""
        return self._conn.tls

    @property
    def remote(self) -> Address | None:
        """The peer's ``(ip, port)`` (``None`` before the first connection)."""
        return self._conn.remote

    def __repr__(self) -> str:
        state = self._conn.state.name.lower()
        return f"<{type(self).__name__} {self.host} -> {self.remote} {state}>"


class ServerFacade(_Bindable):
    """``TcpServer``'s properties."""

    _model: ServerModel[Any]
    _options: ConnectionOptions

    def __init__(
        self,
        ip: str,
        port: int,
        evts: Evts | None = None,
        *,
        encoding: str | None = "utf-8",
        framing: str | Framing | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        recv_buffer: int = DEFAULT_RECV_BUFFER,
        line_ending: str = "\n",
        half_open: bool = False,
        idle_timeout: float | None = None,
        send_timeout: float | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        keepalive: bool | Keepalive = False,
        backlog: int = 128,
        dual_stack: bool = True,
        ssl: _ssl.SSLContext | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self._model = ServerModel(self, ip, port, backlog, dual_stack)
        self._registry = CallbackRegistry(Role.SERVER, evts)
        #: Clients must complete a TLS handshake with this context (``None``: plaintext).
        self._tls_context = check_context(ssl, server=True)
        self._options = ConnectionOptions(
            encoding=encoding,
            framing=framing,
            max_message_size=max_message_size,
            recv_buffer=recv_buffer,
            line_ending=line_ending,
            half_open=half_open,
            idle_timeout=idle_timeout,
            send_timeout=send_timeout,
            max_pending=max_pending,
            keepalive=keepalive,
            handshake_timeout=handshake_timeout,
        )
        self._init()

    def _init(self) -> None:
        """The binding's part: its dispatcher, and what it listens with."""
        raise NotImplementedError

    @property
    def host(self) -> Address:
        """The ``(ip, port)`` bound (port 0 resolved once started)."""
        return self._model.host

    @property
    def isAlive(self) -> bool:
        """Listening."""
        return self._model.is_listening

    @property
    def stats(self) -> Stats:
        """Connections accepted, refused and current: a snapshot (each client has its own)."""
        return self._model.stats()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host} {self._model.state.name.lower()}>"


class AsyncServerOps(ServerFacade):
    """The async bindings' ``TcpServer.send``/``close`` over the core's targets.

    A broadcast sends to every client at once (:meth:`_broadcast`, the
    binding's), so a client that stops reading holds only its own share: the
    others get theirs meanwhile.
    """

    async def send(self, data: Data, remote: Address | None = None) -> None:
        """Send to one remote, or to every connected client (unknown: 1003; gone: 1001)."""
        encode_payload(data, self._options.encoding)
        targets = self._model.targets(remote)
        if len(targets) < 2:
            for client in targets:
                await self._send_to(client, data, remote)
            return
        errors: list[SocketError] = []
        await self._broadcast(targets, data, errors)
        if errors:
            raise errors[0]

    async def _send_to(
        self,
        client: Any,
        data: Data,
        remote: Address | None,
        errors: list[SocketError] | None = None,
    ) -> None:
        try:
            await client.send(data)
        except SocketError as exc:
            self._send_failed(remote, exc, errors)

    def _send_failed(
        self, remote: Address | None, exc: SocketError, errors: list[SocketError] | None
    ) -> None:
        """A client's share failed: skipped (the core says which), kept, or raised."""
        if self._model.broadcast_skips(remote, exc):
            return
        if errors is None:
            raise exc
        errors.append(exc)

    async def _broadcast(self, targets: list[Any], data: Data, errors: list[SocketError]) -> None:
        """Send *data* to every client of *targets* at once, keeping the errors
        :meth:`_send_failed` does not skip in *errors*; return when all are done."""
        raise NotImplementedError

    async def close(self, remote: Address | None = None) -> None:
        """Close one remote's connection, or all of them."""
        for client in self._model.targets(remote):
            await client.close()


_Self = TypeVar("_Self")


class SyncLifetime:
    """``with obj:`` guarantees ``stop``/``close`` on exit (the sync bindings)."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()

    def _finish(self) -> None:
        raise NotImplementedError


class ReceiverFacade(_Bindable):
    """``CastReceiver``'s properties and group membership."""

    _model: ReceiverModel
    _sock: SetsOptions | None
    #: Held while membership changes (the threaded binding's lock).
    _membership_guard: ClassVar[contextlib.AbstractContextManager[Any]] = contextlib.nullcontext()

    def __init__(
        self,
        host: int | Address,
        evts: Evts | None = None,
        *,
        interface: str | int = "0.0.0.0",
        encoding: str | None = "utf-8",
        recv_buffer: int = DEFAULT_RECV_BUFFER,
    ) -> None:
        self._model = ReceiverModel(
            self,
            host,
            interface=interface,
            encoding=encoding,
            recv_buffer=recv_buffer,
            interfaces=self._interface_table(),
            system=MULTICAST_OS,
        )
        self._registry = CallbackRegistry(Role.RECEIVER, evts)
        self._sock = None
        self._init()

    def _init(self) -> None:
        """The binding's part: its dispatcher."""
        raise NotImplementedError

    def _interface_table(self) -> InterfaceTable:
        """Where the host's interfaces are read from (the memory binding's are virtual)."""
        return host_interfaces

    def _guard(self) -> contextlib.AbstractContextManager[Any]:
        return self._membership_guard

    def joinGroup(
        self,
        *ips: str | list[str] | tuple[str, ...],
        interface: InterfaceSpec | None = None,
        source: str | None = None,
    ) -> None:
        """Join one or more groups, all or none (1002, 1004, 1007); before or
        after start.  *interface*: an address, a name, an index or ``ALL``
        (``None``: the receiver's own); *source*: only this sender (SSM)."""
        with self._guard():
            plan = self._model.plan_join(*ips, interface=interface, source=source)
            self._apply(plan.changes)
            self._model.commit(plan)

    def dropGroup(
        self,
        *ips: str | list[str] | tuple[str, ...],
        interface: InterfaceSpec | None = None,
        source: str | None = None,
    ) -> None:
        """Leave one or more groups, all or none (1003, 1004); ``interface=ALL``
        leaves them on every interface."""
        with self._guard():
            plan = self._model.plan_drop(*ips, interface=interface, source=source)
            self._apply(plan.changes)
            self._model.commit(plan)

    def _apply(self, changes: tuple[GroupChange, ...]) -> None:
        if changes and self._sock is not None:
            try:
                apply_changes(self._sock, changes)
            except OSError as exc:
                raise self._model.membership_failed(exc) from exc

    @property
    def recvBuffer(self) -> int:
        """Most bytes of a datagram delivered (default 256); longer ones are reported cut."""
        return self._model.recv_buffer

    @recvBuffer.setter
    def recvBuffer(self, value: int) -> None:
        self._model.recv_buffer = value

    @property
    def groups(self) -> list[str]:
        """The groups joined (on any interface), each once."""
        return self._model.groups

    @property
    def stats(self) -> Stats:
        """Datagrams and bytes received, and how many were cut: a snapshot."""
        return self._model.stats()

    @property
    def memberships(self) -> list[Membership]:
        """Every membership: ``(group, interface, source)`` records, in join order."""
        return self._model.memberships

    @property
    def host(self) -> Address:
        """The ``(ip, port)`` bound (port 0 resolved once started)."""
        return self._model.host

    @property
    def isAlive(self) -> bool:
        """Listening."""
        return self._model.is_listening

    def __repr__(self) -> str:
        state = self._model.state.name.lower()
        return f"<{type(self).__name__} {self.host} {self.groups} {state}>"


class SenderFacade(_Bindable):
    """``CastSender``'s surface."""

    _model: SenderModel

    def __init__(
        self,
        evts: Evts | None = None,
        *,
        ttl: int = 1,
        interface: str | int | None = None,
        loopback: bool = True,
        encoding: str | None = "utf-8",
    ) -> None:
        self._model = SenderModel(
            self,
            ttl=ttl,
            interface=interface,
            loopback=loopback,
            encoding=encoding,
            interfaces=self._interface_table(),
            system=MULTICAST_OS,
        )
        self._registry = CallbackRegistry(Role.SENDER, evts)
        self._init()

    def _init(self) -> None:
        """The binding's part: its dispatcher."""
        raise NotImplementedError

    def _interface_table(self) -> InterfaceTable:
        """Where the host's interfaces are read from (the memory binding's are virtual)."""
        return host_interfaces

    @property
    def stats(self) -> Stats:
        """Datagrams and bytes sent, and sends failed: a snapshot."""
        return self._model.stats()

    def __repr__(self) -> str:
        model = self._model
        return f"<{type(self).__name__} ttl={model.ttl} interface={model.interface}>"
