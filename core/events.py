"""Events: the seed's :class:`EventTypes` keys and the typed events behind them.

The core reports everything that happens as one of the frozen classes below;
each knows its :class:`EventTypes` key (``event.type``).  Bindings dispatch them
to callbacks (through :mod:`jfsocket.core.callbacks`, which turns them into the
seed's positional arguments) or yield them from ``async for``.

``source`` is the user-facing object the event is about (the binding's
``TcpServer``, ``TcpClient``, ``CastReceiver`` or ``CastSender``); the core only
carries it.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, TypeAlias

import attrs

from .interfaces import Interface

__all__ = [
    "Address",
    "Connected",
    "Data",
    "Disconnected",
    "Event",
    "EventTypes",
    "GaveUp",
    "Notice",
    "Received",
    "Reconnecting",
    "SendFailed",
    "Sent",
    "Started",
    "Stopped",
    "StreamEvent",
]

#: An ``(ip, port)`` pair.
Address: TypeAlias = tuple[str, int]
#: What ``send`` accepts.
Data: TypeAlias = str | bytes | bytearray | memoryview


class EventTypes(Enum):
    """The seed's callback keys; the values are the seed's strings."""

    STARTED = "onStarted"
    STOPED = "onStoped"  # sic: the seed's spelling is the API
    CONNECTED = "onConnected"
    DISCONNECT = "onDisconnect"
    RECEIVED = "onReceived"
    SENDED = "onSended"  # sic
    SENDFAIL = "onSendFail"
    # Aliases in today's English; same values, so the same members.
    STOPPED = "onStoped"
    SENT = "onSended"


@attrs.frozen(kw_only=True)
class Started:
    """A server or receiver is listening."""

    type: ClassVar[EventTypes] = EventTypes.STARTED
    source: object
    #: The address actually bound.
    host: Address


@attrs.frozen(kw_only=True)
class Stopped:
    """A server or receiver stopped listening (after every DISCONNECT)."""

    type: ClassVar[EventTypes] = EventTypes.STOPED
    source: object


@attrs.frozen(kw_only=True)
class Connected:
    """A TCP connection is open."""

    type: ClassVar[EventTypes] = EventTypes.CONNECTED
    source: object
    #: Local ``(ip, port)`` of the connection.
    host: Address
    #: The peer's ``(ip, port)``.
    remote: Address


@attrs.frozen(kw_only=True)
class Disconnected:
    """A TCP connection is closed; the last event of that connection."""

    type: ClassVar[EventTypes] = EventTypes.DISCONNECT
    source: object
    host: Address
    remote: Address
    #: Why it closed: ``None`` for an orderly close by either side.
    error: BaseException | None = None


@attrs.frozen(kw_only=True)
class Received:
    """Data arrived: a chunk, a framed message, or a datagram."""

    type: ClassVar[EventTypes] = EventTypes.RECEIVED
    source: object
    #: ``str`` when the object has an encoding, else ``bytes``.
    data: str | bytes
    #: Sender of a datagram; ``None`` on TCP, where it is the connection's remote.
    remote: Address | None = None
    #: A datagram longer than ``recvBuffer`` was cut: ``data`` is not all of it.
    truncated: bool = False
    #: The peer's EOF on a ``half_open`` connection: ``data`` is empty, and it
    #: will send no more (we still may).
    eof: bool = False
    #: Where a datagram arrived (``.index``, ``.name``); ``None`` on TCP, or
    #: where the OS does not say.
    interface: Interface | None = None
    #: The datagram's destination address (the group); ``None`` as above.
    group: str | None = None


@attrs.frozen(kw_only=True)
class Sent:
    """One ``send`` was written to the OS in full."""

    type: ClassVar[EventTypes] = EventTypes.SENDED
    source: object
    #: Exactly the object the caller passed to ``send``.
    data: Data


@attrs.frozen(kw_only=True)
class SendFailed:
    """One ``send`` could not be written (in full)."""

    type: ClassVar[EventTypes] = EventTypes.SENDFAIL
    source: object
    data: Data
    error: BaseException


@attrs.frozen(kw_only=True)
class Reconnecting:
    """A client with ``reconnect`` lost its connection (or a redial failed):
    try *attempt* comes after *delay* seconds.  For ``async for`` and the log:
    no callback key."""

    source: object
    attempt: int
    delay: float
    #: What ended the connection or failed the redial (``None``: the peer closed).
    error: BaseException | None


@attrs.frozen(kw_only=True)
class GaveUp:
    """A client with ``reconnect`` stopped trying after *attempts* failed tries."""

    source: object
    attempts: int
    error: BaseException | None


#: Any event the core emits to callbacks (and streams).
Event: TypeAlias = Started | Stopped | Connected | Disconnected | Received | Sent | SendFailed
#: What only streams and the log see.
Notice: TypeAlias = Reconnecting | GaveUp
#: What an ``async for`` yields.
StreamEvent: TypeAlias = Event | Notice
