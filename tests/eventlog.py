"""The callback recorder the async binding tests share; each runtime adds how
waiters are woken and how an ``async def`` callback yields."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from jfsocket.core import Callback, EventTypes

__all__ = ["Args", "Evts", "RecordLog"]

Args = tuple[object, ...]
#: The ``evts`` mapping the objects take.
Evts = dict[EventTypes | str, Callback | None]


class RecordLog:
    """Records ``(event name, args)`` from callbacks, in the order they ran, from
    any thread; the name is the :class:`EventTypes` member's name (``'RECEIVED'``)."""

    def __init__(self) -> None:
        self._records: list[tuple[str, Args]] = []
        self._lock = threading.Lock()

    # -- recording -----------------------------------------------------------------

    def record(self, name: str, args: Args) -> None:
        """Append one record and wake the waiters."""
        with self._lock:
            self._records.append((name, args))
        self._changed()

    def _changed(self) -> None:
        """Wake whoever waits for records (the runtime's part)."""
        raise NotImplementedError

    async def _pause(self) -> None:
        """Yield to the runtime once (an async callback's suspension point)."""
        raise NotImplementedError

    def callback(self, name: str) -> Callable[..., None]:
        """A plain callback recording under *name*."""

        def callback(*args: object) -> None:
            self.record(name, args)

        return callback

    def async_callback(self, name: str) -> Callable[..., Awaitable[None]]:
        """An ``async def`` callback recording under *name* after yielding once."""

        async def callback(*args: object) -> None:
            await self._pause()
            self.record(name, args)

        return callback

    def evts(self, *keys: EventTypes, use_async: bool = False) -> Evts:
        """An ``evts`` mapping recording each of *keys* under its name."""
        make = self.async_callback if use_async else self.callback
        return {key: make(key.name) for key in keys}

    # -- reading -------------------------------------------------------------------

    @property
    def records(self) -> list[tuple[str, Args]]:
        """A copy of every record, in order."""
        with self._lock:
            return list(self._records)

    def names(self) -> list[str]:
        """The event names, in order."""
        return [name for name, _ in self.records]

    def args(self, name: str) -> list[Args]:
        """The argument tuples recorded under *name*, in order."""
        return [args for n, args in self.records if n == name]

    def count(self, name: str) -> int:
        """How many times *name* was recorded."""
        return len(self.args(name))

    def data(self, name: str) -> list[object]:
        """The ``data`` argument (second) of every *name* record."""
        return [args[1] for args in self.args(name)]
