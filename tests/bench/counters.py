"""Counters the async benchmarks share: what jfsocket's callbacks (and the raw
baselines' protocols) do with each message, the same for every runtime."""

from __future__ import annotations

import sys
from collections.abc import Callable
from time import perf_counter
from typing import Protocol

__all__ = ["Gauge", "Sends", "Tally", "Volley", "echo"]


class Sends(Protocol):
    """A connection of any async binding: all the counters need is ``send``."""

    async def send(self, data: bytes) -> None:
        """Send *data*; return once it is settled."""


class Tally:
    """Counts bytes; calls *done* once *target* were counted."""

    __slots__ = ("_done", "_target", "got")

    def __init__(self, target: int, done: Callable[[], object]) -> None:
        self._target = target
        self._done = done
        self.got = 0

    def add(self, size: int) -> None:
        """*size* more bytes arrived."""
        self.got += size
        if self.got >= self._target:
            self._done()

    def on_received(self, _source: object, data: bytes) -> None:
        """The RECEIVED callback."""
        self.add(len(data))


class Volley:
    """jfsocket's client side of ping-pong: each whole response sends the next request."""

    __slots__ = ("_done", "_expected", "_got", "_left", "_request")

    def __init__(self, rounds: int, request: bytes, done: Callable[[], object]) -> None:
        self._request = request
        self._left = rounds
        self._got = 0
        self._expected = len(request)
        self._done = done

    async def on_received(self, client: Sends, data: bytes) -> None:
        """The client's async RECEIVED callback: count bytes, not callbacks."""
        self._got += len(data)
        if self._got < self._expected:
            return
        self._left -= 1
        if self._left <= 0:
            self._done()
            return
        self._expected += len(self._request)
        await client.send(self._request)


async def echo(client: Sends, data: bytes) -> None:
    """jfsocket's server side of ping-pong: the async RECEIVED callback sends it back."""
    await client.send(data)


class Gauge:
    """Counts datagrams; wakes the paced sender once a count is reached."""

    __slots__ = ("_wake", "_wake_at", "count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0  # perf_counter() of the latest datagram
        self._wake_at = sys.maxsize
        self._wake: Callable[[], object] = int

    def add(self) -> None:
        """One datagram arrived."""
        self.count += 1
        self.last = perf_counter()
        if self.count >= self._wake_at:
            self._wake_at = sys.maxsize
            self._wake()

    def on_received(self, _source: object, _data: bytes) -> None:
        """The RECEIVED callback."""
        self.add()

    def arm(self, count: int, wake: Callable[[], object]) -> None:
        """Call *wake* once *count* datagrams arrived."""
        self._wake, self._wake_at = wake, count

    def disarm(self) -> None:
        """Forget the wake-up asked for."""
        self._wake_at = sys.maxsize
