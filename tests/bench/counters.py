"""What every side's callbacks (jfsocket's) and loops (the raw code's) do with
each message: the same counters for every contender on every runtime.

Each counter notes the clock when its work is complete (``finished``), so a
side's end mark is when the work ended, not when its main code woke to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from .peers import Peer, clock
from .plumbing import BURST

__all__ = [
    "PACE_POLL",
    "PACE_WAIT",
    "SETTLE",
    "SETTLE_POLL",
    "Arrivals",
    "Countdown",
    "Gauge",
    "Rounds",
    "Sends",
    "SyncSends",
    "SyncVolley",
    "Tally",
    "Volley",
    "blast",
    "blast_async",
    "echo",
    "echo_sync",
]

SETTLE: Final = 0.2  # the sender is done and nothing arrived for this long: the rest is lost
SETTLE_POLL: Final = 0.01  # seconds between a receiver's looks at whether it is done
PACE_WAIT: Final = 0.05  # longest a burst waits for the receiver to catch up
PACE_POLL: Final = 0.0002  # seconds between the waiting sender's looks at the receiver
_PUBLISH_EVERY: Final = 64  # datagrams between two reports of progress (a power of 2)


class Sends(Protocol):
    """A connection of either async binding: all the counters need is ``send``."""

    async def send(self, data: bytes) -> None:
        """Send *data*; return once it is settled."""


class SyncSends(Protocol):
    """A threaded binding's connection."""

    def send(self, data: bytes) -> None:
        """Send *data*; return once it is settled."""


class Countdown:
    """Calls *done* once *parties* arrived (from any threads)."""

    def __init__(self, parties: int, done: Callable[[], object]) -> None:
        self._left = parties
        self._done = done
        self._lock = threading.Lock()
        self.finished = 0.0
        if parties <= 0:
            self._finish()

    def arrive(self, *_: object) -> None:
        """One party is done (usable as a callback: its arguments are ignored)."""
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._finish()

    def _finish(self) -> None:
        self.finished = clock()
        self._done()


class Tally:
    """Counts one receiver's bytes; calls *done* once *target* were counted."""

    __slots__ = ("_done", "_target", "finished", "got")

    def __init__(self, target: int, done: Callable[[], object]) -> None:
        self._target = target
        self._done = done
        self.got = 0
        self.finished = 0.0

    def add(self, size: int) -> None:
        """*size* more bytes arrived."""
        before = self.got
        self.got = before + size
        if before < self._target <= self.got:
            self.finished = clock()
            self._done()

    def on_received(self, _source: object, data: bytes) -> None:
        """The RECEIVED callback."""
        self.add(len(data))


class Rounds:
    """Ping-pong's client side: counts response bytes, not callbacks (raw code calls
    :meth:`due` with each read's size)."""

    __slots__ = ("_done", "_expected", "_got", "_left", "_request", "finished", "rounds")

    def __init__(self, rounds: int, request: bytes, done: Callable[[], object]) -> None:
        self._request = request
        self._left = rounds
        self._got = 0
        self._expected = len(request)
        self._done = done
        self.rounds = 0
        self.finished = 0.0

    def due(self, size: int) -> bool:
        """*size* bytes arrived: whether the next request is due."""
        self._got += size
        if self._got < self._expected:
            return False
        self.rounds += 1
        self._left -= 1
        if self._left <= 0:
            self.finished = clock()
            self._done()
            return False
        self._expected += len(self._request)
        return True


class Volley(Rounds):
    """jfsocket's async client side of ping-pong: each whole response sends the next request."""

    __slots__ = ()

    async def on_received(self, client: Sends, data: bytes) -> None:
        """The client's async RECEIVED callback."""
        if self.due(len(data)):
            await client.send(self._request)


class SyncVolley(Rounds):
    """The threaded binding's client side of ping-pong."""

    __slots__ = ()

    def on_received(self, client: SyncSends, data: bytes) -> None:
        """The client's RECEIVED callback."""
        if self.due(len(data)):
            client.send(self._request)


async def echo(client: Sends, data: bytes) -> None:
    """jfsocket's async server side of ping-pong: send it back."""
    await client.send(data)


def echo_sync(client: SyncSends, data: bytes) -> None:
    """The threaded binding's server side of ping-pong."""
    client.send(data)


class Gauge:
    """Counts datagrams, publishing the count; knows when to stop waiting for more.

    Receiving is over once *peer.count* arrived, or once the sender is done and
    nothing arrived for SETTLE seconds (the rest is lost); ``last`` is then
    when the last datagram was seen.
    """

    __slots__ = ("_peer", "_publish", "_seen", "_seen_at", "_total", "count", "finished")

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._publish = peer.publish
        self._total = peer.count
        self.count = 0
        self.finished = 0.0
        self._seen = 0
        self._seen_at = clock()

    def add(self) -> None:
        """One datagram arrived."""
        n = self.count = self.count + 1
        if not n & (_PUBLISH_EVERY - 1) or n == self._total:
            self._publish(n)
            if n == self._total:
                self.finished = clock()

    def on_received(self, _source: object, _data: bytes) -> None:
        """The RECEIVED callback."""
        self.add()

    def over(self) -> bool:
        """Whether to stop waiting (a poll: call it every few milliseconds)."""
        if self.count >= self._total:
            return True
        now = clock()
        if self.count != self._seen:
            self._seen, self._seen_at = self.count, now
            return False
        return self._peer.peer_done() and now - self._seen_at > SETTLE

    @property
    def last(self) -> float:
        """When the last datagram arrived (to within a poll, if some were lost)."""
        return self.finished if self.count >= self._total else self._seen_at


class Arrivals:
    """Counts connections (from any threads), publishing the count; *done* at *peer.count*."""

    def __init__(self, peer: Peer, done: Callable[[], object]) -> None:
        self._publish = peer.publish
        self._total = peer.count
        self._done = done
        self._lock = threading.Lock()
        self.got = 0
        self.finished = 0.0

    def arrive(self, *_: object) -> None:
        """One more connection (usable as a callback: its arguments are ignored)."""
        with self._lock:
            self.got += 1
            self._publish(self.got)
            if self.got == self._total:
                self.finished = clock()
                self._done()


class _Pacer:
    """The multicast sender's pace: bursts of BURST datagrams; after each, a wait
    (at most PACE_WAIT) until the receiver is within its window.  A lag it gave
    up on is taken as lost, so losses do not make every later burst wait."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._window = peer.window
        self._given_up = 0
        self.sent = 0

    def burst(self) -> int:
        """How many to send next (0: all sent); past the time limit, StalledError."""
        if clock() > self._peer.deadline:
            raise self._peer.stalled("sending")
        return min(BURST, self._peer.count - self.sent)

    def behind(self) -> bool:
        """Whether the receiver lags more than its window."""
        return self._peer.progress < self.sent - self._window - self._given_up

    def give_up(self) -> None:
        """Take the lag beyond the window as lost."""
        self._given_up = self.sent - self._window - self._peer.progress


def blast(peer: Peer, burst: Callable[[int], object]) -> int:
    """Send *peer.count* datagrams, *burst(n)* sending n of them, paced; how many were sent."""
    pacer = _Pacer(peer)
    while n := pacer.burst():
        burst(n)
        pacer.sent += n
        if pacer.behind():
            end = clock() + PACE_WAIT
            while pacer.behind() and clock() < end:
                time.sleep(PACE_POLL)
            if pacer.behind():
                pacer.give_up()
    return pacer.sent


async def blast_async(
    peer: Peer,
    burst: Callable[[int], Awaitable[object]],
    sleep: Callable[[float], Awaitable[object]],
) -> int:
    """:func:`blast` for an event loop: *sleep* is its ``sleep``."""
    pacer = _Pacer(peer)
    while n := pacer.burst():
        await burst(n)
        pacer.sent += n
        if pacer.behind():
            end = clock() + PACE_WAIT
            while pacer.behind() and clock() < end:
                await sleep(PACE_POLL)
            if pacer.behind():
                pacer.give_up()
    return pacer.sent
