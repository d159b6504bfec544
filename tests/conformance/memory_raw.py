"""Plain peers on the memory binding's network: what a raw socket is to the others.

A scenario's raw peer or raw listener (see :class:`~.driver.RawPeer`) is, on
the memory runtime, a bare :class:`VirtualSocket` of the test's network with
nobody reading it but the scenario: its bytes stay unread (they count against
its window, as a socket buffer's do) until the scenario reads them, and each
blocking read or write runs the network, moving its clock to the next
deadline when nothing is due, until it can go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from .driver import RawListener, RawPeer
from .runtimes import CALL_TIMEOUT

__all__ = ["VirtualListener", "VirtualPeer"]


def _drive(net: Any, ready: Callable[[], bool], what: str, timeout: float = CALL_TIMEOUT) -> None:
    """Run *net* until *ready*; fail once *timeout* virtual seconds passed without it."""
    end = net.now + timeout
    while not ready():
        if net.running:  # from a callback: it cannot wait for the network it is in
            pytest.fail(f"memory: {what} would block inside a callback", pytrace=False)
        if net.due():
            net.run()
            continue
        due = net.next_time()
        if due is None or due > end:
            if ready():
                return
            pytest.fail(f"memory: {what} did not happen", pytrace=False)
        net.advance(due - net.now)


class VirtualPeer(RawPeer):
    """:class:`RawPeer` over a virtual socket (held: only the scenario reads it)."""

    def __init__(self, net: Any, sock: Any, label: str, rcvbuf: int | None = None) -> None:
        self.net = net
        self.vsock = sock
        self.label = label
        self.host = sock.address
        sock.stalled = True  # nobody reads but us, through take()
        sock.window = rcvbuf

    def sendall(self, data: bytes) -> None:
        """Write it all, running the network while the peer's window is full."""
        view = memoryview(data)
        while True:
            view = view[self.vsock.write(view) :]
            if not view:
                break
            _drive(self.net, lambda: self.vsock.room() > 0, f"{self.label}'s write")
        self.net.settle()

    def _take(self, size: int, what: str) -> bytes:
        got: list[bytes] = []

        def arrived() -> bool:
            piece = self.vsock.take(size)
            if piece is not None:
                got.append(piece)
            return bool(got)

        _drive(self.net, arrived, what)
        return got[0]

    def recv_exactly(self, size: int) -> bytes:
        """Read *size* bytes."""
        data = b""
        while len(data) < size:
            chunk = self._take(size - len(data), f"{size} bytes for {self.label}")
            assert chunk, f"EOF after {len(data)} of {size} bytes"
            data += chunk
        return data

    def recv_some(self, size: int = 65536) -> bytes:
        """One read: what has arrived (b'' at EOF)."""
        return self._take(size, f"data for {self.label}")

    def read_until_eof(self, timeout: float = CALL_TIMEOUT) -> bytes:
        """Everything until the other end's EOF."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._take(1 << 20, f"{self.label}'s EOF")
            except ConnectionResetError:
                pytest.fail(f"{self.label}: reset instead of EOF", pytrace=False)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def at_eof(self) -> bool:
        """The other end closed: reading gives EOF (or a reset)."""
        try:
            return self._take(1, f"data or EOF for {self.label}") == b""
        except ConnectionResetError:
            return True

    def queued(self) -> int:
        """Bytes that arrived and wait to be read."""
        return int(self.vsock.unread)

    def nodelay(self) -> None:
        """Nothing to do: a virtual write is one piece."""

    def shutdown_write(self) -> None:
        """Send EOF, keep the socket."""
        self.vsock.shutdown_write()
        self.net.settle()

    def reset(self) -> None:
        """Vanish with an RST."""
        self.vsock.close(reset=True)
        self.net.settle()

    def close(self) -> None:
        """Close (a FIN)."""
        self.vsock.close()
        self.net.settle()


class VirtualListener(RawListener):
    """:class:`RawListener` on the network's localhost: it takes every connection
    to its port, and hands them out with :meth:`accept`."""

    def __init__(self, net: Any, label: str, rcvbuf: int | None = None) -> None:
        self.net = net
        self.label = label
        self._vhost = net.localhost
        self.host = ("127.0.0.1", self._vhost.port())
        self._rcvbuf = rcvbuf
        self._waiting: deque[Any] = deque()
        self._vhost.listeners.append(self)

    def _takes(self, ip: str, port: int) -> bool:
        return (ip, port) == self.host

    def _overlaps(self, ip: str, port: int) -> bool:
        return port == self.host[1]

    def _accept(self, sock: Any) -> bool:
        sock.stalled = True
        sock.window = self._rcvbuf
        self._waiting.append(sock)
        return True

    def accept(self) -> RawPeer:
        """The next connection."""
        _drive(self.net, lambda: bool(self._waiting), f"a connection to {self.label}")
        return VirtualPeer(self.net, self._waiting.popleft(), self.label, self._rcvbuf)

    def close(self) -> None:
        """Stop listening."""
        if self in self._vhost.listeners:
            self._vhost.listeners.remove(self)
        for sock in self._waiting:
            sock.close()
        self._waiting.clear()
