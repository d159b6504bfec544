"""The seed's public surface, read from the core: the same in every binding.

Properties (``recvBuffer``, ``isAlive``, ``host``, ``remote``, ``clients``,
``groups``), ``bind`` and ``repr`` only read or forward to the core's models,
so each binding's classes inherit them from here and add what waits.
"""

from __future__ import annotations

from typing import Any

from jfsocket.core import (
    Address,
    Callback,
    CallbackRegistry,
    Connection,
    ConnectionOptions,
    EventTypes,
    ReceiverModel,
    Role,
    SenderModel,
    ServerModel,
)

__all__ = [
    "ClientFacade",
    "Evts",
    "ReceiverFacade",
    "SenderFacade",
    "ServerFacade",
    "client_parts",
]

#: The constructors' ``evts``: event key (member or string) to callback.
Evts = dict[EventTypes | str, Callback | None]


class _Bindable:
    _registry: CallbackRegistry

    def bind(self, key: EventTypes | str | None = None, evt: Callback | None = None) -> None:
        """Bind *evt* to event *key* (member or its string); ``None`` unbinds."""
        self._registry.bind(key, evt)


def client_parts(
    server: ServerFacade | None, evts: Evts | None, options: ConnectionOptions | None
) -> tuple[CallbackRegistry, ConnectionOptions]:
    """A client's registry and options: its own, or inherited from its server."""
    if server is not None:
        return server._registry.child(Role.CLIENT), server._options.copy()
    assert options is not None
    return CallbackRegistry(Role.CLIENT, evts), options


class ClientFacade(_Bindable):
    """``TcpClient``'s properties."""

    _conn: Connection

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
    def host(self) -> Address | None:
        """Local ``(ip, port)`` (``None`` before the first connection)."""
        return self._conn.host

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

    @property
    def host(self) -> Address:
        """The ``(ip, port)`` bound (port 0 resolved once started)."""
        return self._model.host

    @property
    def isAlive(self) -> bool:
        """Listening."""
        return self._model.is_listening

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host} {self._model.state.name.lower()}>"


class ReceiverFacade(_Bindable):
    """``CastReceiver``'s properties."""

    _model: ReceiverModel

    @property
    def recvBuffer(self) -> int:
        """Most bytes of a datagram delivered (default 256); longer ones are reported cut."""
        return self._model.recv_buffer

    @recvBuffer.setter
    def recvBuffer(self, value: int) -> None:
        self._model.recv_buffer = value

    @property
    def groups(self) -> list[str]:
        """A copy of the groups joined."""
        return self._model.groups

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

    def __repr__(self) -> str:
        model = self._model
        return f"<{type(self).__name__} ttl={model.ttl} interface={model.interface}>"
