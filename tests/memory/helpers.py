"""A recorder of callback calls for the memory binding's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jfsocket.bindings.memory import EventTypes

__all__ = ["TCP_KEYS", "Log"]

TCP_KEYS = (
    EventTypes.CONNECTED,
    EventTypes.DISCONNECT,
    EventTypes.RECEIVED,
    EventTypes.SENDED,
    EventTypes.SENDFAIL,
)


class Log:
    """Every callback call, as ``(label, event name, arguments after the source)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def evts(self, label: str, keys: tuple[EventTypes, ...] = TCP_KEYS) -> dict[Any, Any]:
        """An ``evts`` mapping that records *keys* under *label*."""
        return {key: self.callback(label, key.name) for key in keys}

    def callback(self, label: str, name: str) -> Callable[..., None]:
        """A callback recording *name* events under *label*."""

        def record(*args: Any) -> None:
            self.calls.append((label, name, args[1:]))

        return record

    def of(self, label: str) -> list[tuple[str, tuple[Any, ...]]]:
        """*label*'s calls: ``(event name, arguments)``."""
        return [(name, args) for who, name, args in self.calls if who == label]

    def names(self, label: str) -> list[str]:
        """*label*'s event names, in order."""
        return [name for name, _ in self.of(label)]
