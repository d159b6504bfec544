"""The dispatch queue: one object's callbacks, in order, one at a time.

Rules of this module:

* events are pushed in the order the core returned them; the one who pushes
  onto an idle queue becomes its *drainer* and runs every call until the queue
  is empty, events pushed meanwhile (by other threads or tasks, or by the
  callbacks themselves) included;
* so callbacks of one object never overlap and never reorder, and no lock
  needs to be held while a callback runs: the bindings only guard ``push`` and
  ``next_call`` (threads) or need no guard at all (one event loop);
* each event's callback is looked up when it is about to run, so ``bind``
  takes effect for events not yet dispatched (events pushed onto an idle
  queue with no callback at all are done at once: nothing could run first);
* ``pushed``/``done`` count events, so a caller can wait until the events it
  pushed have been dispatched (an async ``send`` returns after its SENDED).
"""

from __future__ import annotations

from collections import deque

from .callbacks import Callback, CallbackRegistry, callback_args
from .events import Event

__all__ = ["DispatchQueue"]


class DispatchQueue:
    """Events waiting for their callbacks, and whether someone is draining them."""

    __slots__ = ("_busy", "_queue", "_registry", "_running", "done", "pushed")

    def __init__(self, registry: CallbackRegistry) -> None:
        self._registry = registry
        # Made on first use: an idle connection's queue would be most of its memory.
        self._queue: deque[tuple[Event, CallbackRegistry]] | None = None
        self._busy = False
        self._running = 0
        #: Events pushed so far, and events whose callback has returned.
        self.pushed = 0
        self.done = 0

    def __len__(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    @property
    def busy(self) -> bool:
        """Someone is draining."""
        return self._busy

    def push(self, events: list[Event], registry: CallbackRegistry | None = None) -> bool:
        """Queue *events* (looked up in *registry*, default the owner's).

        Returns ``True`` when the caller must now drain: the queue was idle.
        """
        if not events:
            return False
        reg = registry or self._registry
        if not self._busy and not self._queue:
            # Idle: these would be dispatched now, so looking them up now is
            # the same; when none has a callback (a SENDED nobody listens to)
            # they are done at once, and nobody needs to drain.
            lookup = reg.lookup
            for event in events:
                if lookup(event.type) is not None:
                    break
            else:
                self.pushed += len(events)
                self.done += len(events)
                return False
        if self._queue is None:
            self._queue = deque()
        self._queue.extend([(event, reg) for event in events])
        self.pushed += len(events)
        if self._busy:
            return False
        self._busy = True
        return True

    def next_call(self) -> tuple[Callback, tuple[object, ...], Event] | None:
        """The next call to run, or ``None``: the queue is empty and idle again.

        Events with no bound callback are counted done and skipped.
        """
        self.done += self._running  # the call handed out last time has returned
        self._running = 0
        queue = self._queue
        while queue:
            event, registry = queue.popleft()
            callback = registry.lookup(event.type)
            if callback is not None:
                args = callback_args(event)
                if args is not None:
                    self._running = 1
                    return callback, args, event
            self.done += 1
        self._busy = False
        return None

    def claim(self) -> bool:
        """Become the drainer of events left queued by an interrupted one."""
        if self._busy or not self._queue:
            return False
        self._busy = True
        return True

    def next_calls(self) -> list[tuple[Callback, tuple[object, ...], Event]]:
        """Every call queued now, at once (empty: the queue is idle again).

        For drainers that pay for each trip to the queue (a lock): callbacks
        still run in order, and events pushed meanwhile come in the next batch.
        """
        self.done += self._running
        queue = self._queue
        calls = []
        while queue:
            event, registry = queue.popleft()
            callback = registry.lookup(event.type)
            args = callback_args(event) if callback is not None else None
            if callback is not None and args is not None:
                calls.append((callback, args, event))
            else:
                self.done += 1
        self._running = len(calls)
        if not calls:
            self._busy = False
        return calls

    def abandon(self) -> None:
        """The drainer stopped early (it was interrupted): the next push drains."""
        self.done += self._running
        self._running = 0
        self._busy = False
