"""Callbacks: which keys each class accepts, binding, and the seed's arguments.

Rules of this module:

* a key is an :class:`EventTypes` member or its string value (``'onReceived'``);
  a key the class does not support, or an unknown one, is ``KeyError`` naming it;
* an ``evt`` that is neither callable nor ``None`` is ``TypeError``;
  ``bind(key, None)`` unbinds; binding again replaces;
* a registry may have a parent: a server's clients look up their own binding
  first, then the server's, so binding on the server reaches every client;
* :func:`callback_args` is the one place that turns an event into the seed's
  positional arguments; a truncated datagram has none (it is not handed to a
  callback as if whole; the typed event and the log report it);
* a callback that raises is logged on ``jfsocket`` with its traceback, and the
  caller goes on (:func:`invoke`, :func:`log_callback_error`).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final

from .events import (
    Connected,
    Disconnected,
    Event,
    EventTypes,
    Received,
    SendFailed,
    Sent,
    Started,
    Stopped,
)

__all__ = [
    "ACCEPTED_KEYS",
    "EVENT_SLOT",
    "RECEIVED_SLOT",
    "SENT_SLOT",
    "SLOT",
    "About",
    "Callback",
    "CallbackRegistry",
    "Role",
    "callback_args",
    "event_key",
    "invoke",
    "log_call_error",
    "log_callback_error",
]

logger = logging.getLogger("jfsocket")

#: A callback: called positionally with the seed's arguments; its result is
#: awaited by the async bindings when it is awaitable.
Callback = Callable[..., object]


class Role(Enum):
    """The four kinds of object, each with its own set of events."""

    SERVER = "TcpServer"
    CLIENT = "TcpClient"
    RECEIVER = "CastReceiver"
    SENDER = "CastSender"


_E = EventTypes
#: The events each kind of object emits (SPEC §2).
ACCEPTED_KEYS: Final[Mapping[Role, frozenset[EventTypes]]] = {
    Role.SERVER: frozenset(
        {_E.STARTED, _E.STOPED, _E.CONNECTED, _E.DISCONNECT, _E.RECEIVED, _E.SENDED, _E.SENDFAIL}
    ),
    Role.CLIENT: frozenset({_E.CONNECTED, _E.DISCONNECT, _E.RECEIVED, _E.SENDED, _E.SENDFAIL}),
    Role.RECEIVER: frozenset({_E.STARTED, _E.STOPED, _E.RECEIVED}),
    Role.SENDER: frozenset({_E.SENDED, _E.SENDFAIL}),
}


def event_key(role: Role, key: object) -> EventTypes:
    """The :class:`EventTypes` member *key* names for *role*, else ``KeyError``."""
    member: EventTypes | None
    if isinstance(key, EventTypes):
        member = key
    elif isinstance(key, str):
        try:
            member = EventTypes(key)
        except ValueError:
            member = None
    else:
        member = None
    if member is None or member not in ACCEPTED_KEYS[role]:
        accepted = ", ".join(sorted(m.value for m in ACCEPTED_KEYS[role]))
        raise KeyError(f"{role.value} has no event {key!r}; it has: {accepted}")
    return member


#: Each key's index in :attr:`CallbackRegistry.resolved`, by the key's string value
#: (a str hashes at C speed, an Enum member does not).
SLOT: Final[Mapping[str, int]] = {
    member.value: index for index, member in enumerate(dict.fromkeys(EventTypes))
}
#: The slot of each typed event class.
EVENT_SLOT: Final[Mapping[type, int]] = {
    Started: SLOT[EventTypes.STARTED.value],
    Stopped: SLOT[EventTypes.STOPED.value],
    Connected: SLOT[EventTypes.CONNECTED.value],
    Disconnected: SLOT[EventTypes.DISCONNECT.value],
    Received: SLOT[EventTypes.RECEIVED.value],
    Sent: SLOT[EventTypes.SENDED.value],
    SendFailed: SLOT[EventTypes.SENDFAIL.value],
}
RECEIVED_SLOT: Final = SLOT[EventTypes.RECEIVED.value]
SENT_SLOT: Final = SLOT[EventTypes.SENDED.value]


class CallbackRegistry:
    """The callbacks bound on one object.

    :attr:`resolved` holds, by :data:`SLOT`, the callback each event runs:
    this object's own, else its parent's (a server's, for its clients).  It
    is kept current by :meth:`bind` here and on the parent, so dispatching an
    event is one list index, not a walk.
    """

    __slots__ = ("_children", "_link", "_own", "_parent", "resolved", "role")

    def __init__(
        self,
        role: Role,
        evts: Mapping[EventTypes | str, Callback | None] | None = None,
        *,
        parent: CallbackRegistry | None = None,
    ) -> None:
        self.role = role
        # A child's are made with its first bind, as its resolved list is.
        self._own: list[Callback | None] = [None] * len(SLOT) if parent is None else []
        self._parent = parent
        # A child shares its parent's list until it binds a callback of its own
        # (most of a server's clients never do: the list would be most of them).
        self.resolved: list[Callback | None] = (
            parent.resolved if parent is not None else [None] * len(SLOT)
        )
        # Made with the first child: only a server has children.  It holds each
        # child's refresher (which the child holds), weakly, not the child: a
        # compiled registry takes no weak reference, and a refresher refers to
        # the child's lists only, so the child goes when its object does.
        self._children: weakref.WeakSet[_Refresher] | None = None
        self._link: _Refresher | None = None
        if evts is not None:
            if not isinstance(evts, Mapping):
                raise TypeError(
                    f"evts must be a mapping of event keys to callbacks, not {type(evts).__name__}"
                )
            checked = [(event_key(role, k), _check_callback(v)) for k, v in evts.items()]
            for key, evt in checked:
                self._set(key, evt)

    def _set(self, key: EventTypes, evt: Callback | None) -> None:
        slot = SLOT[key.value]
        parent = self._parent
        if parent is not None and self.resolved is parent.resolved:
            self._own_copy(parent)
        self._own[slot] = evt
        self._refresh(slot)

    def _own_copy(self, parent: CallbackRegistry) -> None:
        """A child's first bind: lists of its own, kept current by the parent."""
        self._own = [None] * len(SLOT)
        self.resolved = list(parent.resolved)
        self._link = functools.partial(_inherit, self._own, self.resolved, parent.resolved)
        if parent._children is None:
            parent._children = weakref.WeakSet()
        parent._children.add(self._link)

    def _refresh(self, slot: int) -> None:
        evt = self._own[slot]
        if evt is None and self._parent is not None:
            evt = self._parent.resolved[slot]
        self.resolved[slot] = evt
        for refresh in self._children or ():
            refresh(slot)

    def bind(self, key: EventTypes | str | None = None, evt: Callback | None = None) -> None:
        """Bind *evt* to *key*; ``None`` unbinds."""
        member = event_key(self.role, key)
        self._set(member, _check_callback(evt))

    def lookup(self, key: EventTypes) -> Callback | None:
        """The callback for *key*: this object's, else its parent's."""
        return self.resolved[SLOT[key._value_]]

    def child(self, role: Role) -> CallbackRegistry:
        """A registry for an object created by this one (a server's client)."""
        if self._parent is not None:
            raise ValueError("a child registry has no children (a server's clients have none)")
        return CallbackRegistry(role, parent=self)

    def calls(self, events: list[Event]) -> list[tuple[Callback, tuple[object, ...], Event]]:
        """The ``(callback, args, event)`` to run for *events*, in order."""
        out = []
        resolved = self.resolved
        for event in events:
            evt = resolved[EVENT_SLOT[type(event)]]
            if evt is not None:
                args = callback_args(event)
                if args is not None:
                    out.append((evt, args, event))
        return out


#: Refreshes one slot of a child registry from its parent's.
_Refresher = Callable[[int], None]


def _inherit(
    own: list[Callback | None],
    resolved: list[Callback | None],
    parent: list[Callback | None],
    slot: int,
) -> None:
    """A child's refresher: its own callback for *slot*, else its parent's."""
    evt = own[slot]
    resolved[slot] = evt if evt is not None else parent[slot]


def _check_callback(evt: object) -> Callback | None:
    if evt is None or callable(evt):
        return evt
    raise TypeError(f"evt must be callable or None, not {type(evt).__name__}")


def _source_only(event: Event) -> tuple[object, ...]:
    return (event.source,)


def _connection(event: Connected | Disconnected) -> tuple[object, ...]:
    return (event.source, event.host, event.remote)


def _received(event: Received) -> tuple[object, ...] | None:
    return None if event.truncated else (event.source, event.data)


def _sent(event: Sent) -> tuple[object, ...]:
    return (event.source, event.data)


def _send_failed(event: SendFailed) -> tuple[object, ...]:
    return (event.source, event.data, event.error)


# A table rather than a match: this runs once per event on every hot path.
_ARGUMENTS: Final[Mapping[type, Callable[[Any], tuple[object, ...] | None]]] = {
    Started: _source_only,
    Stopped: _source_only,
    Connected: _connection,
    Disconnected: _connection,
    Received: _received,
    Sent: _sent,
    SendFailed: _send_failed,
}


def callback_args(event: Event) -> tuple[object, ...] | None:
    """The seed's positional arguments for *event* (``None``: no callback for it)."""
    return _ARGUMENTS[type(event)](event)


#: What a queued call is about: its typed event, or (on the fast path, where
#: none was built) the event's key, the call's first argument being the source.
About = Event | EventTypes


def log_callback_error(
    callback: Callback, event: About, exc: BaseException, source: object = None
) -> None:
    """Report a callback that raised (with traceback) on logger ``jfsocket``."""
    name = getattr(callback, "__qualname__", repr(callback))
    if isinstance(event, EventTypes):
        key = event.value
    else:
        key, source = event.type.value, event.source
    logger.error(
        "callback %s for %s of %r raised",
        name,
        key,
        source,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def log_call_error(call: tuple[Callback, tuple[object, ...], About], exc: BaseException) -> None:
    """:func:`log_callback_error` for a queued ``(callback, args, about)`` call."""
    callback, args, about = call
    log_callback_error(callback, about, exc, args[0] if args else None)


def invoke(callback: Callback, args: tuple[object, ...], event: About) -> object:
    """Call *callback*; log and swallow what it raises; return its result."""
    try:
        return callback(*args)
    except Exception as exc:
        log_callback_error(callback, event, exc, args[0] if args else None)
        return None
