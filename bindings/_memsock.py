"""The virtual sockets of the memory binding's network, and its alarms.

A TCP connection is a pair of :class:`VirtualSocket`: what one writes (as much
as the peer's window takes) arrives at the other after the link's latency,
in order; an EOF after the data, a reset ahead of it.  The socket tells its
:class:`Owner` (the binding's ``TcpClient``) what arrived, as a reader thread
tells the threaded binding.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from jfsocket.core import Address

if TYPE_CHECKING:
    from ._memnet import Host, Network

__all__ = ["Alarm", "Owner", "VirtualSocket"]


class Alarm:
    """One deadline of one object: :meth:`arm` replaces the last one."""

    __slots__ = ("_fire", "_net", "_version", "when")

    def __init__(self, net: Network, fire: Callable[[], None]) -> None:
        self._net = net
        self._fire = fire
        self._version = 0
        self.when: float | None = None

    def arm(self, when: float | None) -> None:
        """Wake up at *when* (``None``: not at all)."""
        if when == self.when:
            return
        self._version += 1
        self.when = when
        if when is not None:
            version = self._version
            self._net.at(when, lambda: self._ring(version))

    def _ring(self, version: int) -> None:
        if version == self._version:
            self.when = None
            self._fire()


class Owner(Protocol):
    """What a connection's user (the binding's ``TcpClient``) is told by its socket."""

    def _data(self, sock: VirtualSocket, data: bytes) -> None: ...
    def _eof(self, sock: VirtualSocket) -> None: ...
    def _lost(self, sock: VirtualSocket, exc: OSError) -> None: ...
    def _room(self, sock: VirtualSocket) -> None: ...


class VirtualSocket:
    """One end of a virtual TCP connection."""

    def __init__(self, net: Network, host: Host, address: Address, peer_address: Address) -> None:
        self.net = net
        self.vhost = host
        self.address = address
        self.peer_address = peer_address
        self.peer: VirtualSocket | None = None
        self.owner: Owner | None = None
        #: Arriving: ``(due, bytes)``, ``(due, b'')`` for EOF, ``(due, None)`` for a reset.
        self._inbox: deque[tuple[float, bytes | None]] = deque()
        #: Bytes written to us and not read yet (what the peer's window counts).
        self.unread = 0
        #: How many unread bytes we hold (``None``: the network's ``window``).
        self.window: int | None = None
        self.stalled = False
        self.closed = False  # no more reading nor writing
        self.write_shut = False
        self._scheduled = False
        self._reset_coming = False

    def __repr__(self) -> str:
        return f"<VirtualSocket {self.address} -> {self.peer_address}>"

    def write(self, data: bytes | memoryview) -> int:
        """Write what the peer's window takes; how many bytes it took."""
        peer = self.peer
        if peer is None or self.closed or self.write_shut:
            raise BrokenPipeError(errno.EPIPE, "broken pipe")
        if peer.closed:
            # Written into the void: the peer's OS answers with an RST.
            if not self._reset_coming:
                self._reset_coming = True
                self._arrive(None, peer.vhost)
            return len(data)
        taken = min(self.room(), len(data))
        if taken > 0:
            peer.unread += taken
            peer._arrive(bytes(data[:taken]), self.vhost)
        return max(taken, 0)

    def room(self) -> int:
        """How many more bytes the peer's window takes now."""
        peer = self.peer
        if peer is None:
            return 0
        window = peer.window if peer.window is not None else self.net.window
        return window - peer.unread

    def take(self, limit: int) -> bytes | None:
        """Read up to *limit* bytes that have arrived, for a reader that pulls
        (a stalled socket keeps what arrives): ``b''`` at EOF, ``None`` if
        nothing has; ``ConnectionResetError`` for a reset."""
        inbox, net = self._inbox, self.net
        if not inbox or inbox[0][0] > net.now:
            return None
        due, item = inbox[0]
        if item is None:
            inbox.popleft()
            self.closed = True
            raise ConnectionResetError(errno.ECONNRESET, "connection reset")
        if not item:
            return b""  # EOF stays: every later read sees it too
        piece, rest = item[:limit], item[limit:]
        if rest:
            inbox[0] = (due, rest)
        else:
            inbox.popleft()
        self.unread -= len(piece)
        if self.peer is not None:
            net.soon(self.peer._window_opened)
        return piece

    def shutdown_write(self) -> None:
        """Send EOF after what was written (once)."""
        if not self.write_shut and self.peer is not None:
            self.write_shut = True
            self.peer._arrive(b"", self.vhost)

    def close(self, reset: bool = False) -> None:
        """Close: EOF to the peer (or, with *reset*, an RST that overtakes what is queued)."""
        if self.closed:
            return
        peer = self.peer
        if peer is not None and not peer.closed:
            if reset:
                peer._inbox.clear()
                peer.unread = 0
                peer._arrive(None, self.vhost)
            elif not self.write_shut:
                peer._arrive(b"", self.vhost)
        self.write_shut = True
        self.closed = True
        self._inbox.clear()
        self.unread = 0
        self.net._sockets.pop(self, None)

    def _arrive(self, item: bytes | None, source: Host) -> None:
        self._inbox.append((self.net.now + self.net.link_of(source, self.vhost).latency, item))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self._inbox:
            self._scheduled = True
            self.net.at(self._inbox[0][0], self._deliver)

    def _deliver(self) -> None:
        """Read what has arrived, unless stalled or cut off."""
        self._scheduled = False
        net, peer = self.net, self.peer
        while self._inbox and not self.closed:
            if self.stalled or (peer is not None and net.partitioned(peer.vhost, self.vhost)):
                return  # resumed by resume() / heal()
            due, item = self._inbox[0]
            if due > net.now:
                self._schedule()
                return
            self._inbox.popleft()
            owner = self.owner
            if item is None:
                self.closed = True
                if owner is not None:
                    owner._lost(self, ConnectionResetError(errno.ECONNRESET, "connection reset"))
                return
            if not item:
                if owner is not None:
                    owner._eof(self)
                continue
            segment = net.segment or len(item)
            for start in range(0, len(item), segment):
                piece = item[start : start + segment]
                self.unread -= len(piece)
                if owner is not None and not self.closed:
                    owner._data(self, piece)
            if peer is not None:
                net.soon(peer._window_opened)

    def _window_opened(self) -> None:
        """We read some: the peer's writes that waited for room may go on."""
        if self.owner is not None:
            self.owner._room(self)
