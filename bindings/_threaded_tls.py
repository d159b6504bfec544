"""The threaded binding's TLS: the handshake and TLS's own bytes.

A mixin of the threaded ``TcpClient`` (kept apart so that the binding stays
readable): the handshake runs on the blocking socket under the core's
deadline, in the connecting thread or a server's reader thread; the reader
sends what TLS itself must answer, and ``close`` TLS's close_notify, both in
order with the writes.
"""

from __future__ import annotations

import contextlib
import socket as _socket
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from jfsocket.core import Connection, Dispatcher, SocketError, TlsInfo

from ._sockopts import configure_stream
from ._timers import now
from ._tls import READ_SIZE, TlsPipe

__all__ = ["ThreadedTls"]

_MSG_DONTWAIT: Final = int(_socket.MSG_DONTWAIT)


class ThreadedTls:
    """TLS for the threaded ``TcpClient`` (its attributes, declared here)."""

    _conn: Connection
    _lock: threading.Lock
    _write_lock: threading.Lock
    _dispatcher: Dispatcher
    _server: Any
    _sock: _socket.socket | None
    _pipe: TlsPipe | None
    _outbox: deque[tuple[int | None, bytes | memoryview, bool]] | None
    _tls_context: Any

    if TYPE_CHECKING:

        def _addresses(self, sock: _socket.socket) -> tuple[Any, Any]: ...
        def _adopt(self, sock: _socket.socket, tls: TlsInfo | None = None) -> bool: ...
        def _unregister(self) -> None: ...
        def _read_loop(self, sock: _socket.socket) -> None: ...

    def _begin_tls(self, sock: _socket.socket, hostname: str | None) -> None:
        """The TLS handshake on connected *sock* begins, for the core: a
        ``close()`` from now on ends it.  The peer gone already: 1001."""
        conn = self._conn
        context = self._tls_context
        assert context is not None
        host, remote = self._addresses(sock)
        configure_stream(sock, conn.options)  # TCP_NODELAY: the handshake's flights go at once
        pipe = TlsPipe(context, server_side=self._server is not None, server_hostname=hostname)
        with self._lock:
            conn.handshake_started(host, remote, now=now())
            self._sock = sock  # close() shuts it down: the handshake ends
            self._pipe = pipe  # unused until it is done: sends are refused meanwhile

    def _secure(self, sock: _socket.socket) -> bool:
        """The rest of the TLS handshake on *sock*, then :meth:`_adopt`; raises the
        core's 1006 if it fails, is late, or the connection was closed meanwhile."""
        conn, lock, server, pipe = self._conn, self._lock, self._server, self._pipe
        assert pipe is not None
        try:
            self._handshake(sock, pipe)
        except OSError as exc:  # ssl.SSLError, a socket error, our deadline
            with lock:
                error = conn.handshake_failed(exc)
            raise error from exc
        remote = conn.remote
        if server is not None and remote is not None:
            with server._lock:
                accepted = server._model.accept(remote, self)
            if not accepted:  # stopping: closed with no event
                with lock:
                    conn.close()
        try:
            return self._adopt(sock, pipe.info())
        except SocketError:
            with lock:
                conn.close()  # closed meanwhile, or the server is stopping: no event
            self._unregister()
            raise

    def _handshake(self, sock: _socket.socket, pipe: TlsPipe) -> None:
        """Run *pipe*'s handshake on *sock* until done, under the core's deadline."""
        conn, lock = self._conn, self._lock
        while True:
            done, out = pipe.handshake()
            with lock:
                if not conn.handshaking:  # closed, or late (the core said so)
                    raise ConnectionAbortedError("the TLS handshake was stopped")
                deadline = conn.timer()
            left = None if deadline is None else deadline - now()
            if left is not None and left <= 0:
                with lock:
                    conn.handle_timer(now())
                continue
            sock.settimeout(left)
            try:
                if out:
                    sock.sendall(out)
                if done:
                    return
                pipe.feed_handshake(sock.recv(READ_SIZE))
            except TimeoutError:
                continue  # the core, asked at the top, decides

    def _serve_tls(self, sock: _socket.socket) -> None:
        """A server's TLS client, whose handshake began: the rest of it, then the
        reader's loop."""
        server = self._server
        assert server is not None
        try:
            run = self._secure(sock)
        except SocketError:  # the core logged why
            with self._write_lock:
                sock.close()
            return
        finally:
            server._handshake_over(self)
        if run:
            self._dispatcher.run_all(threading.get_ident())
        self._read_loop(sock)

    def _flush_tls(self, sock: _socket.socket, pipe: TlsPipe) -> None:
        """Send what TLS itself must answer (a key update): behind the bytes
        the writer holds, if any, else now, in order with every write."""
        with self._write_lock:
            with self._lock:
                if self._outbox is not None:
                    self._outbox.append((None, pipe.take(), True))
                    return
            with contextlib.suppress(OSError):  # a broken socket: the reader finds out
                sock.sendall(pipe.take())

    def _notify_close(self, sock: _socket.socket | None) -> None:
        """TLS's close_notify, if it can go at once (no write in flight or queued)."""
        pipe = self._pipe
        if pipe is None or sock is None or not self._write_lock.acquire(blocking=False):
            return
        try:
            if self._outbox is None:
                sock.send(pipe.close_notify(), _MSG_DONTWAIT)
        except OSError:
            pass
        finally:
            self._write_lock.release()
