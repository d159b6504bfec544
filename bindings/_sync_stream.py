"""Typed events for threaded code: a blocking iterator fed by a dispatcher."""

from __future__ import annotations

import queue
from types import TracebackType

from jfsocket.core import Dispatcher, StreamEvent

__all__ = ["EventQueue"]


class EventQueue:
    """The typed events of one object from when it was made: ``for event in
    stream`` (each wait at most *timeout* seconds, then ``TimeoutError``), or
    :meth:`get`.  Ends after the object's last event; ``close`` (or leaving
    ``with``) stops it early."""

    def __init__(self, dispatcher: Dispatcher, timeout: float | None) -> None:
        self._queue: queue.SimpleQueue[StreamEvent | None] = queue.SimpleQueue()
        self._dispatcher = dispatcher
        self._timeout = timeout
        self._ended = False
        dispatcher.subscribe(self)  # the caller holds the dispatcher's guard

    # -- the dispatcher's side (a Sink) -------------------------------------------------

    def send_nowait(self, event: StreamEvent) -> None:
        """One more event."""
        self._queue.put(event)

    def close(self) -> None:
        """No more events: from the dispatcher at the end, or from the user early."""
        if not self._ended:
            self._dispatcher.unsubscribe(self)
            self._queue.put(None)

    # -- the user's side ----------------------------------------------------------------

    def get(self, timeout: float | None = None) -> StreamEvent:
        """The next event; ``StopIteration`` after the last, ``TimeoutError``
        after *timeout* seconds (default: the stream's) without one."""
        if self._ended:
            raise StopIteration
        try:
            event = self._queue.get(timeout=self._timeout if timeout is None else timeout)
        except queue.Empty:
            raise TimeoutError("no event within the timeout") from None
        if event is None:
            self._ended = True
            raise StopIteration
        return event

    def __iter__(self) -> EventQueue:
        return self

    def __next__(self) -> StreamEvent:
        return self.get()

    def __enter__(self) -> EventQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
