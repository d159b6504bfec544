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

import array
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

if sys.platform == "win32":
    FIONREAD = None
else:
    from fcntl import ioctl
    from termios import FIONREAD

__all__ = ["ThreadedTls", "TlsSocket"]

_IN: Final = 1  # wait until readable
_OUT: Final = 2  # wait until writable
_HUP: Final = 3  # readable, and the peer may have shut its side down: look before reading
#: The most plaintext one TLS record carries (2**14 bytes).
_FULL_RECORD: Final = 16384
#: The most a record adds to its plaintext on the wire: its header, and what
#: TLS 1.2 lets encryption add (TLS 1.3 lets it add less).
_RECORD_OVERHEAD: Final = 5 + 2048
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

    __slots__ = (
        "_fd",
        "_left",
        "_lock",
        "_open",
        "_read",
        "_readable",
        "_sock",
        "_waiting",
        "_writable",
        "_write",
    )

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        # The C object under the SSL socket: its read() and write() are what
        # SSLSocket's own wrap in two Python calls each (a check that the
        # socket is open: see close()).
        tls = sock._sslobj  # type: ignore[attr-defined]
        self._read = cast("Callable[[int], bytes]", tls.read)
        self._write = cast("Callable[[bytes | memoryview], int]", tls.write)
        self._lock = threading.Lock()
        self._open = True
        self._fd = sock.fileno()
        self._left = 0  # bytes the socket surely holds (see _count_left)
        # FIONREAD's answer, where there is one (not on Windows: polls only).
        self._waiting = None if FIONREAD is None else array.array("i", [0])
        self._readable = _waiter(sock, _IN)
        self._writable = _waiter(sock, _OUT)

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
        """Plaintext, one record of it (at most *size* bytes), waiting until
        there is some; ``b''`` at the end (TLS's close_notify, the peer's close,
        or our own).  As ``socket.recv``: a broken record raises ``ssl.SSLError``.

        One record, read straight into the bytes returned: gathering several
        into one buffer cost a copy of each byte, more than the reads saved.
        """
        sock, lock, readable, read = self._sock, self._lock, self._readable, self._read
        while True:
            # A poll before the read, unless the socket surely holds more than
            # the peer's FIN (see below): it costs less than a want-read (an
            # exception), and tells whether only the FIN is left.
            if self._left <= 0 and readable(-1) == _HUP and _at_eof(sock):
                return b""
            # acquire/release, not `with`: this runs once a message (see send_all).
            lock.acquire()
            try:
                data = read(size)
            except ssl.SSLWantReadError:  # part of a record, or TLS's own (a ticket)
                self._left = 0
                continue
            except ssl.SSLWantWriteError:  # TLS must write first (a renegotiation)
                self._left = 0
            except ssl.SSLEOFError:  # the peer's FIN inside a record: as SSLSocket, the end
                return b""
            else:
                self._count_left(len(data))
                return data
            finally:
                lock.release()
            _waiter(sock, _OUT)(-1)  # rare: a poller of its own, not the writers'

    def _count_left(self, got: int) -> None:
        """After a read of *got* bytes: how many more the socket surely holds.

        A full record says that the peer is sending more than one: then one
        ioctl tells how many bytes wait, and reads go on with no poll while
        the most that they can have taken (each record's plaintext and the
        most TLS adds to it) leaves some.  Records of TLS's own (tickets, a
        key update) that a read takes on its way count for nothing; peers
        send those with the handshake, before any batch of full records.
        """
        left = self._left - got - _RECORD_OVERHEAD
        if left <= 0 and got == _FULL_RECORD and self._waiting is not None:
            ioctl(self._fd, FIONREAD, self._waiting)
            left = self._waiting[0]
        self._left = left

    def send_all(self, payload: bytes | memoryview) -> None:
        """Write *payload* in full, waiting for the peer as long as it takes.

        After a :meth:`send_now` that returned ``False``, the same *payload*
        must come first: OpenSSL goes on from where that one stopped.
        """
        if not self._open:
            raise ConnectionAbortedError("the TLS connection was closed")
        lock, write = self._lock, self._write
        while True:
            # acquire/release: cheaper than `with` (no bound methods made, no
            # __exit__ call), and this runs once a message.
            lock.acquire()
            try:
                write(payload)
                return
            except ssl.SSLWantWriteError:
                ready = self._writable
            except ssl.SSLWantReadError:  # rare (a renegotiation): not the reader's poller
                ready = _waiter(self._sock, _IN)
            finally:
                lock.release()
            ready(-1)

    def send_now(self, payload: bytes | memoryview) -> bool:
        """Write *payload* if the socket takes all of it now: ``False`` if not,
        and :meth:`send_all` of the same *payload* must finish it."""
        if not self._open:
            raise ConnectionAbortedError("the TLS connection was closed")
        with self._lock:
            try:
                self._write(payload)
                return True
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False

    def close(self) -> None:
        """Close the SSL socket (the caller holds the write lock; the reader is
        done): a write from now on raises, where the C object would write to
        the fd's number, which the OS may have given to another socket."""
        self._open = False
        self._sock.close()

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
