"""The threaded binding's clock: one thread and one heap for every deadline.

Objects ask to be woken at a time (:meth:`Alarm.arm`, which only ever moves a
wake-up earlier: the core's deadlines move later lazily, and the woken object
re-arms at its model's next ``timer()``).  The thread runs while an alarm is
armed and ends when none is, so an application without deadlines never has it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["Alarm", "join_idle", "now"]

#: The clock every threaded model is given as ``now``.
now = time.monotonic


class _Timers:
    """The heap, its thread, and how many alarms are armed."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._armed = 0
        self._thread: threading.Thread | None = None
        self._firing = False  # the thread is running an alarm's callback

    def arm(self, alarm: Alarm, when: float) -> None:
        # Read without the timers' lock (this is on a send's path): a stale value
        # is an alarm going off now, whose callback re-arms at the model's
        # timer() once it has the object's lock, so after this send.
        armed = alarm.when
        if armed is not None and armed <= when:
            return  # it wakes up earlier already
        with self._cond:
            if alarm.when is not None and alarm.when <= when:
                return  # it wakes up earlier already
            if alarm.when is None:
                self._armed += 1
            alarm.when = when
            heapq.heappush(self._heap, (when, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jfsocket timers")
                self._thread.start()
            elif self._heap[0][2] is alarm:
                self._cond.notify()  # sooner than the thread sleeps

    def cancel(self, alarm: Alarm) -> None:
        with self._cond:
            if alarm.when is None:
                return
            alarm.when = None
            self._disarmed()

    def _disarmed(self) -> None:
        self._armed -= 1
        if not self._armed:  # what is left in the heap is stale: the thread may end
            self._heap.clear()
            self._cond.notify()

    def join_idle(self) -> None:
        """Wait for the thread to end if nothing is armed and it is between
        alarms (then it ends at once).  An alarm's callback may run another
        object's user code, which may wait for our caller: that thread is not
        waited for; it ends by itself when the callback returns."""
        with self._cond:
            idle = not self._armed and not self._firing
            thread = self._thread if idle else None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        cond, heap = self._cond, self._heap
        while True:
            with cond:
                due: Alarm | None = None
                while due is None:
                    if not heap:
                        self._thread = None
                        break
                    when, _, alarm = heap[0]
                    if alarm.when != when:  # cancelled, or re-armed earlier
                        heapq.heappop(heap)
                        continue
                    wait = when - now()
                    if wait > 0:
                        cond.wait(wait)
                        continue
                    heapq.heappop(heap)
                    alarm.when = None
                    self._disarmed()
                    self._firing = True
                    due = alarm
            if due is None:
                return
            try:
                due.fire()
            finally:
                with cond:
                    self._firing = False


_TIMERS = _Timers()


class Alarm:
    """Wakes one object: *fire* runs on the timers' thread when the armed time comes."""

    __slots__ = ("fire", "when")

    def __init__(self, fire: Callable[[], None]) -> None:
        self.fire = fire
        #: When it goes off (``None``: not armed); the timers' lock guards it.
        self.when: float | None = None

    def arm(self, when: float | None) -> None:
        """Go off at *when* at the latest (``None``: no change)."""
        if when is not None:
            _TIMERS.arm(self, when)

    def cancel(self) -> None:
        """Do not go off; once nothing is armed, the timers' thread ends."""
        _TIMERS.cancel(self)


def join_idle() -> None:
    """Wait for the timers' thread to end if nothing is armed (never from it)."""
    _TIMERS.join_idle()
