"""The threaded binding's TLS: a non-blocking ``ssl.SSLSocket`` shared by threads.

A connection's reader thread and its writer threads (a ``send`` writes in
the calling thread) use one SSL object.  OpenSSL forbids two threads inside
one at once, and CPython lets go of the GIL inside ``SSL_read`` and
``SSL_write``; so every call into it is under one lock, and none blocks:
the socket is non-blocking, and a thread waits for it (``poll``) with the
lock released.  OpenSSL reads and writes the socket itself, as a blocking
``SSLSocket`` does, so TLS costs no copy beyond the raw code's (memory
buffers, :class:`ssl.MemoryBIO`, cost three per record).

:class:`TlsSocket` is that object; :class:`ThreadedTls` is the handshake
part of the threaded ``TcpClient`` (kept apart so that the binding stays
readable): it runs on the connecting thread, or a server's reader thread,
under the core's deadline.
"""

from __future__ import annotations

import contextlib
import select
import socket as _socket
import ssl
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from jfsocket.core import (
    Connection,
    Dispatcher,
    OsContext,
    SocketError,
    TlsInfo,
    translate_os_error,
)

from ._sockopts import configure_stream
from ._timers import now
from ._tls import READ_SIZE, tls_info

__all__ = ["ThreadedTls", "TlsSocket"]

_IN: Final = 1  # wait until readable
_OUT: Final = 2  # wait until writable
_HUP: Final = 3  # readable, and the peer may have shut its side down: look before reading
#: Where poll() says that the peer shut down (Linux): elsewhere, each read looks first.
_RDHUP: Final = int(getattr(select, "POLLRDHUP", 0))


def _waiter(sock: _socket.socket, events: int) -> Callable[[int], int]:
    """A wait, for one thread at a time, until *sock* is readable (``_IN``) or
    writable (``_OUT``), at most *timeout* milliseconds (-1: as long as it
    takes): 0 if the time ran out, else what it is (``_HUP`` for a readable
    socket whose peer may have ended).  An error counts as ready: the next
    call finds out."""
    if sys.platform == "win32":  # no poll(); select() has no FD_SETSIZE limit there
        fd = sock.fileno()
        rlist, wlist = ([fd], []) if events == _IN else ([], [fd])
        ready = _HUP if events == _IN else _OUT

        def select_wait(timeout: int) -> int:
            seconds = None if timeout < 0 else timeout / 1000
            return ready if any(select.select(rlist, wlist, [fd], seconds)) else 0

        return select_wait
    poller = select.poll()  # holds no fd: nothing to close
    if events == _OUT:
        poller.register(sock, select.POLLOUT)
        seen, ended = _OUT, 0
    else:
        poller.register(sock, select.POLLIN | _RDHUP)
        # Where poll() cannot tell (no POLLRDHUP), every readable socket may have ended.
        seen, ended = _IN, (_RDHUP | select.POLLHUP | select.POLLERR) if _RDHUP else -1
    poll = poller.poll

    def poll_wait(timeout: int) -> int:
        got = poll(timeout)
        if not got:
            return 0
        return _HUP if got[0][1] & ended else seen

    return poll_wait


def _ms(seconds: float | None) -> int:
    """*seconds* for poll(): milliseconds, rounded up (-1: no limit)."""
    return -1 if seconds is None else max(0, int(seconds * 1000 + 0.999))


def _at_eof(sock: _socket.socket) -> bool:
    """Only the peer's FIN is left to read.  An SSL read must not meet it:
    OpenSSL 3 takes an EOF with no close_notify for a fatal error, alerts
    the peer and writes no more, and a peer that half-closed still reads
    our replies."""
    try:
        return not _socket.socket.recv(sock, 1, _socket.MSG_PEEK)
    except BlockingIOError:
        return False


def _ended_tls(exc: ValueError) -> OSError:
    """``SSLSocket`` raises ValueError once unwrapped (our close_notify went)."""
    return ConnectionAbortedError(f"the TLS session was closed: {exc}")


def _discard_input(sock: _socket.socket) -> None:
    """Read (and drop) what the peer sent that TLS left unread, up to a
    bound: a close with unread bytes would be a reset, and a plaintext
    client deserves a plain EOF."""
    with contextlib.suppress(OSError):
        for _ in range(16):
            if not _socket.socket.recv(sock, READ_SIZE):
                return


class TlsSocket:
    """One connection's TLS, on a non-blocking :class:`ssl.SSLSocket`.

    :meth:`receive` is the reader's (one thread); :meth:`send_all` and
    :meth:`send_now` are for whoever holds the connection's write lock, which
    also keeps the order of what goes out.  Only ``read``/``write`` of the
    SSL socket are used, never ``recv``/``send``: once the socket is
    unwrapped those would carry plaintext, where these raise.
    """

    __slots__ = ("_buffer", "_lock", "_read", "_readable", "_sock", "_writable")

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        # typeshed gives read() -> bytes; with a buffer it is the count read into it.
        self._read = cast("Callable[[int, memoryview], int]", sock.read)
        self._lock = threading.Lock()
        self._readable = _waiter(sock, _IN)
        self._writable = _waiter(sock, _OUT)
        self._buffer: memoryview | None = None  # the reader's, made at its first read

    @property
    def socket(self) -> ssl.SSLSocket:
        """The SSL socket (shut it down with ``socket.socket.shutdown``, which
        keeps the session: the reader still reads what is left)."""
        return self._sock

    def handshake(self, left: Callable[[], float | None]) -> None:
        """The handshake, waiting at most ``left()`` seconds at a time (``None``:
        no limit); a ``TimeoutError`` when a wait ran out."""
        sock = self._sock
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                ready = self._readable
            except ssl.SSLWantWriteError:
                ready = self._writable
            if not ready(_ms(left())):
                raise TimeoutError("the TLS handshake took too long")

    def info(self) -> TlsInfo:
        """What the handshake agreed on."""
        return tls_info(self._sock)

    def receive(self, size: int) -> bytes:
        """Plaintext, at most *size* (≤ ``READ_SIZE``) bytes of it, waiting until
        there is some; ``b''`` at the end (TLS's close_notify, the peer's close,
        or our own).  As ``socket.recv``: a broken record raises ``ssl.SSLError``."""
        view = self._buffer
        if view is None:
            view = self._buffer = memoryview(bytearray(READ_SIZE))
        sock, lock, readable, read = self._sock, self._lock, self._readable, self._read
        got = 0
        while True:
            # A record cut short by the room left (the only way OpenSSL keeps
            # plaintext back) fills it, and ends the loop: no pending() to ask.
            # Before each read: a poll costs less than a want-read (an
            # exception), and tells whether only the peer's FIN is left.
            ready = readable(0 if got else -1)
            if not ready or (ready == _HUP and _at_eof(sock)):
                break
            with lock:
                try:
                    count = read(size - got, view[got:size])
                except ssl.SSLWantReadError:  # part of a record, or TLS's own (a ticket)
                    if got:
                        break
                    continue
                except ssl.SSLWantWriteError:  # TLS must write first (a renegotiation)
                    count = -1
                except ValueError:  # unwrapped: we closed
                    break
            if count < 0:
                _waiter(sock, _OUT)(-1)  # rare: a poller of its own, not the writers'
                continue
            if not count:  # the end (close_notify): what came before it goes first
                break
            got += count
            if got >= size:
                break
        return view[:got].tobytes()

    def send_all(self, payload: bytes | memoryview) -> None:
        """Write *payload* in full, waiting for the peer as long as it takes.

        After a :meth:`send_now` that returned ``False``, the same *payload*
        must come first: OpenSSL goes on from where that one stopped.
        """
        sock, lock = self._sock, self._lock
        while True:
            with lock:
                try:
                    sock.write(payload)
                    return
                except ssl.SSLWantWriteError:
                    ready = self._writable
                except ssl.SSLWantReadError:  # rare (a renegotiation): not the reader's poller
                    ready = _waiter(sock, _IN)
                except ValueError as exc:
                    raise _ended_tls(exc) from None
            ready(-1)

    def send_now(self, payload: bytes | memoryview) -> bool:
        """Write *payload* if the socket takes all of it now: ``False`` if not,
        and :meth:`send_all` of the same *payload* must finish it."""
        with self._lock:
            try:
                self._sock.write(payload)
                return True
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False
            except ValueError as exc:
                raise _ended_tls(exc) from None

    def close_notify(self) -> None:
        """TLS's close_notify, if it can go at once (the caller holds the write
        lock, and nothing is half written); the peer's own is not awaited."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._sock.unwrap()  # want-read (the peer's close_notify): ours went


class ThreadedTls:
    """TLS for the threaded ``TcpClient`` (its attributes, declared here)."""

    _conn: Connection
    _lock: threading.Lock
    _write_lock: threading.Lock
    _dispatcher: Dispatcher
    _server: Any
    _sock: _socket.socket | None
    _tls: TlsSocket | None
    _outbox: deque[tuple[int, bytes | memoryview]] | None
    _tls_context: Any

    if TYPE_CHECKING:

        def _addresses(self, sock: _socket.socket) -> tuple[Any, Any]: ...
        def _adopt(self, sock: _socket.socket, tls: TlsInfo | None = None) -> bool: ...
        def _unregister(self) -> None: ...
        def _read_loop(self, sock: _socket.socket) -> None: ...

    def _begin_tls(self, sock: _socket.socket, hostname: str | None) -> ssl.SSLSocket:
        """The TLS handshake on connected *sock* begins, for the core: a
        ``close()`` from now on ends it.  The SSL socket that replaces *sock*
        (detached: close this one instead).  The peer gone already: 1001."""
        conn = self._conn
        context: ssl.SSLContext = self._tls_context
        host, remote = self._addresses(sock)
        configure_stream(sock, conn.options)  # TCP_NODELAY: the handshake's flights go at once
        sock.setblocking(False)
        try:
            secure = context.wrap_socket(
                sock,
                server_side=self._server is not None,
                server_hostname=hostname,
                do_handshake_on_connect=False,
            )
        except OSError as exc:  # it looks at the peer: gone already
            sock.close()
            raise translate_os_error(OsContext.ADOPT, exc) from exc
        with self._lock:
            conn.handshake_started(host, remote, now=now())
            self._sock = secure  # close() shuts it down: the handshake ends
            self._tls = TlsSocket(secure)  # unused until it is done: sends are refused meanwhile
        return secure

    def _secure(self, sock: ssl.SSLSocket) -> bool:
        """The rest of the TLS handshake on *sock*, then :meth:`_adopt`; raises the
        core's 1006 if it fails, is late, or the connection was closed meanwhile."""
        conn, lock, server, tls = self._conn, self._lock, self._server, self._tls
        assert tls is not None
        try:
            self._handshake(tls)
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
            return self._adopt(sock, tls.info())
        except SocketError:
            with lock:
                conn.close()  # closed meanwhile, or the server is stopping: no event
            self._unregister()
            raise

    def _handshake(self, tls: TlsSocket) -> None:
        """Run *tls*'s handshake until done, under the core's deadline."""
        conn, lock = self._conn, self._lock

        def left() -> float | None:
            with lock:
                if not conn.handshaking:  # closed, or late (the core said so)
                    raise ConnectionAbortedError("the TLS handshake was stopped")
                deadline = conn.timer()
            return None if deadline is None else max(0.0, deadline - now())

        while True:
            try:
                tls.handshake(left)
                return
            except TimeoutError:  # the core, asked again, decides
                with lock:
                    conn.handle_timer(now())

    def _serve_tls(self, sock: ssl.SSLSocket) -> None:
        """A server's TLS client, whose handshake began: the rest of it, then the
        reader's loop."""
        server = self._server
        assert server is not None
        try:
            run = self._secure(sock)
        except SocketError:  # the core logged why
            _discard_input(sock)
            with self._write_lock:
                sock.close()
            return
        finally:
            server._handshake_over(self)
        if run:
            self._dispatcher.run_all(threading.get_ident())
        self._read_loop(sock)

    def _notify_close(self) -> None:
        """TLS's close_notify, if it can go at once (no write in flight or queued)."""
        tls = self._tls
        if tls is None or not self._write_lock.acquire(blocking=False):
            return
        try:
            with self._lock:  # a broadcast's half-written bytes are handed over under it
                idle = self._outbox is None
            if idle:
                tls.close_notify()
        finally:
            self._write_lock.release()
