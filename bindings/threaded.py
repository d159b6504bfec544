"""The threaded binding: the seed's API on blocking sockets and threads.

Every decision comes from :mod:`jfsocket.core`; this module reads, writes,
joins groups, and dispatches what the core returns.  Its shape:

* one reader thread per TCP connection (the seed's model) and per multicast
  receiver, plus one accept thread per server;
* ``send`` writes in the calling thread (``sendall`` under a write lock), so it
  returns once the bytes are with the OS, applying the kernel's backpressure;
  a server's broadcast writes what each client's socket takes at once and
  hands the rest to that connection's writer thread (started then, gone once
  it is written), so one client that stops reading holds no other;
* callbacks of one object never run at the same time and run in order: each
  object has a core :class:`Dispatcher`, drained by whichever thread
  delivers first.  No lock is held while a callback runs, so a callback may
  call anything, on any object, without deadlock;
* a socket's fd is closed by its reader thread, under the write lock, so a
  concurrent ``send`` can never write into a recycled fd; ``close``/``stop``
  only shut the socket down (which wakes the reader) and then join it, unless
  they are called from that very thread or from inside its callbacks;
* TLS (``ssl=``) is a non-blocking :class:`ssl.SSLSocket` shared by the
  reader and the writers (:class:`~._threaded_tls.TlsSocket`): each call into
  it is under its own lock, and waits happen outside it; a writer holds the
  write lock, so records go out whole and in order.  The handshake runs in
  the connecting thread (a client) or the connection's reader thread (a
  server's, so that a silent peer never holds the accept loop), bounded by
  the core's deadline.
"""

from __future__ import annotations

import contextlib
import random
import socket as _socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Final, TypeVar

from jfsocket.core import (
    ACCEPT_RETRY_DELAY,
    ALL,
    ANCILLARY_SIZE,
    OVERFLOW,
    AcceptAction,
    Address,
    CallbackRegistry,
    Connection,
    ConnectionOptions,
    Data,
    Dispatcher,
    EventTypes,
    OsContext,
    Redialer,
    ServerModel,
    SocketError,
    Stopped,
    TlsInfo,
    encode_payload,
    innermost,
    inside,
    normalize_sockaddr,
    translate_os_error,
)

from ._facade import (
    ClientFacade,
    ReceiverFacade,
    SenderFacade,
    ServerFacade,
    SyncLifetime,
)
from ._sockopts import (
    apply_changes,
    configure_sender,
    configure_stream,
    family_of,
    linger_zero,
    prepare_listener,
    prepare_receiver,
)
from ._sync_stream import EventQueue
from ._threaded_tls import ThreadedTls, TlsSocket
from ._timers import Alarm, join_idle, now
from ._tls import READ_SIZE

__all__ = [
    "ALL",
    "CastReceiver",
    "CastSender",
    "EventTypes",
    "SocketError",
    "TcpClient",
    "TcpServer",
]

_T = TypeVar("_T")
#: Events a reader may queue ahead of a slow dispatcher before it stops reading
#: (so a stalled callback slows the peer down instead of growing memory).
_MAX_BACKLOG: Final = 1024
_MSG_TRUNC: Final = int(_socket.MSG_TRUNC)  # an int: IntFlag's & is slow per datagram
_MSG_DONTWAIT: Final = int(_socket.MSG_DONTWAIT)
_me = threading.get_ident  # who drains, for inside() and innermost()


class _Waiters:
    """The threaded host of a :class:`Dispatcher`: threads that wait for it
    (rare: close, shutdown, a full backlog), on a condition of its lock."""

    __slots__ = ("_cond", "_lock", "dispatcher")

    def __init__(
        self, registry: CallbackRegistry, lock: threading.Lock, last: tuple[type, ...] = ()
    ) -> None:
        self._lock = lock
        # Made by the first waiter: a Condition is most of an idle connection's
        # own memory, and most connections never wait.
        self._cond: threading.Condition | None = None
        self.dispatcher = Dispatcher(registry, guard=lock, host=self, last=last)

    def wake(self) -> None:
        """From the drainer (lock not held), while someone waits: they look again."""
        cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def resume(self) -> None:
        """An interrupted drain: the next push drains what is left."""

    def notify(self) -> None:
        """Let waiters look again (lock held)."""
        if self.dispatcher.waiting and self._cond is not None:
            self._cond.notify_all()

    def wait(self, until: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait (lock held) until *until* is true, or *timeout* seconds passed."""
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(self._lock)
        dispatcher = self.dispatcher
        dispatcher.waiting += 1  # after the condition exists: wake() may come at once
        try:
            cond.wait_for(until, timeout)
        finally:
            dispatcher.waiting -= 1

    def wait_idle(self) -> None:
        """Wait until every queued event was dispatched."""
        with self._lock:
            self.wait(lambda: not self.dispatcher.busy)

    def wait_dispatched(self) -> None:
        """Wait (lock held) until every event pushed so far has run."""
        dispatcher = self.dispatcher
        target = dispatcher.pushed
        self.wait(lambda: dispatcher.done >= target)


def _backlogged(dispatcher: Dispatcher) -> bool:
    """Too many events wait for a drainer on another thread (lock held)."""
    return dispatcher.queued > _MAX_BACKLOG and dispatcher.busy


def _shutdown(sock: _socket.socket | None, how: int = _socket.SHUT_RDWR) -> None:
    """Wake whatever blocks on *sock*; harmless if it is already gone.

    The plain socket's ``shutdown``, even on an ``SSLSocket``: its own would
    drop the TLS session under a reader that still has data to decrypt.
    """
    if sock is not None:
        with contextlib.suppress(OSError):
            _socket.socket.shutdown(sock, how)


def _join(thread: threading.Thread | None) -> None:
    """Wait for *thread*, unless this thread is inside a callback.

    From inside any callback we never wait: the thread we would wait for may be
    waiting for us (two connections closing each other from their callbacks).
    Our threads end by themselves once their socket is shut down.
    """
    if thread is not None and thread is not threading.current_thread() and not inside(_me()):
        thread.join()


class TcpClient(ClientFacade[_socket.socket], SyncLifetime, ThreadedTls):
    """A TCP connection: to a server (``connect``), adopted, or a server's side of one."""

    _socket_type = _socket.socket
    _server: TcpServer | None

    def _init(self, options: ConnectionOptions, server: TcpServer | None) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._waiters = _Waiters(self._registry, self._lock)
        self._dispatcher = self._waiters.dispatcher
        self._conn = Connection(self, options, self._dispatcher)
        self._sock: _socket.socket | None = None
        self._reader: threading.Thread | None = None
        #: What a broadcast could not write at once, for the writer thread:
        #: (ticket, the bytes left; over TLS, the whole payload: OpenSSL goes on).
        self._outbox: deque[tuple[int, bytes | memoryview]] | None = None
        self._tls: TlsSocket | None = None  # the connection's TLS, from its handshake on
        self._writer: threading.Thread | None = None
        #: Wakes us at the core's deadlines (only a connection that has some).
        self._alarm = Alarm(self._on_timer) if self._conn.clocked else None
        self._reset = False  # close(abort=True): the socket ends with an RST

    def _given(self, socket: _socket.socket) -> None:
        run = self._adopt(socket)
        if self._server is None:
            if run:
                self._dispatcher.run_all(_me())
            self._start_reader()
        elif run:
            # Not on the accept thread: CONNECTED waits for the reader, which the
            # server starts once the client is registered (or for an earlier sender).
            with self._lock:
                self._dispatcher.release()

    # -- properties --------------------------------------------------------------

    def _adopt(self, sock: _socket.socket, tls: TlsInfo | None = None) -> bool:
        """The connection is made (and secured by *tls*): CONNECTED is queued
        first, in the same step."""
        conn = self._conn
        if tls is None:
            host, remote = self._addresses(sock)
            sock.settimeout(None)  # over TLS it stays non-blocking
            configure_stream(sock, conn.options)
        with self._lock:
            if tls is None:
                events = conn.connection_made(host, remote, now=now())
            else:  # 1006 if closed meanwhile
                events = conn.handshake_done(tls, now=now())
            self._sock = sock
            self._reset = False
            if self._redial is not None:
                self._redial.connected(now())
            self._arm()
            return self._dispatcher.push(events)

    @staticmethod
    def _addresses(sock: _socket.socket) -> tuple[Address, Address]:
        try:
            return normalize_sockaddr(sock.getsockname()), normalize_sockaddr(sock.getpeername())
        except OSError as exc:
            raise translate_os_error(OsContext.ADOPT, exc) from exc

    def _arm(self) -> None:
        """Be woken at the core's next deadline (lock held)."""
        if self._alarm is not None:
            self._alarm.arm(self._conn.timer())

    def _on_timer(self) -> None:
        """On the timers' thread: what the core says is due (a timeout closes)."""
        conn, lock = self._conn, self._lock
        with lock:
            run = self._dispatcher.push(conn.handle_timer(now()))
            sock = self._sock
            closed = conn.closed
            if not closed:
                self._arm()
            self._waiters.notify()
        if closed:
            self._ended_by_core(sock, run)
        elif run:
            self._dispatcher.run_all(_me())

    def connect(
        self,
        ip: str,
        port: int,
        *,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Connect to ``(ip, port)``; CONNECTED has fired when this returns.

        Already connected: SocketError 1000; refused, unreachable, timed out or
        unresolvable: 1006.  ``timeout`` (beyond the seed) bounds the attempt.
        With ``ssl=``, CONNECTED follows the TLS handshake, whose failure is 1006
        (``err`` the ``ssl.SSLError``, or 1008 after ``handshake_timeout``); the
        certificate is checked against *server_hostname*, by default *ip*.
        """
        host, port, seconds, hostname = self._dial_args(ip, port, timeout, server_hostname)
        with self._lock:
            self._conn.start_connect()
            previous = self._reader
        _join(previous)  # a reconnect: the last connection's reader is finishing
        try:
            sock = _socket.create_connection((host, port), timeout=seconds)
        except OSError as exc:
            with self._lock:
                error = self._conn.connect_failed(exc)
            raise error from exc
        try:
            if hostname is None:
                run = self._adopt(sock)
            else:
                sock = self._begin_tls(sock, hostname)
                run = self._secure(sock)
        except BaseException:
            sock.close()
            raise
        if run:
            self._dispatcher.run_all(_me())
        self._start_reader()

    def _start_reader(self, accepted: _socket.socket | None = None) -> None:
        """The reader thread; for a server's TLS client (*accepted*), it runs the
        handshake first."""
        reader = threading.Thread(
            target=self._read_loop if accepted is None else self._serve_tls,
            args=(self._sock if accepted is None else accepted,),
            name=f"jfsocket reader {self.remote or 'handshaking'}",
        )
        reader.start()
        # Published once started: a close() racing with this never joins an unstarted thread.
        with self._lock:
            self._reader = reader

    def _read_loop(self, sock: _socket.socket) -> None:
        conn, lock, dispatcher, waiters = self._conn, self._lock, self._dispatcher, self._waiters
        with lock:
            run = dispatcher.claim()  # a server's client: its CONNECTED waits here
        if run:
            dispatcher.run_all(_me())
        run = False
        tls = self._tls
        # TLS: plaintext as it comes, whole records (the core still cuts at recv_buffer).
        receive, size = (sock.recv, conn.recv_buffer) if tls is None else (tls.receive, READ_SIZE)
        try:
            while True:
                try:
                    data = receive(size)
                except OSError as exc:  # ssl.SSLError too: a broken record
                    run = self._stream_ended(sock, exc)
                    break
                if not data:
                    self._input_ended()
                    break
                # acquire/release on the paths run once a message: cheaper than
                # `with`, which makes two bound methods and calls __exit__.
                lock.acquire()
                try:
                    run = conn.feed(data, now() if conn.clocked else None)
                    # Not the drainer: another thread is, and may be slow.
                    if not run and _backlogged(dispatcher):
                        waiters.wait(lambda: conn.closed or not _backlogged(dispatcher))
                    if conn.closed:
                        break
                finally:
                    lock.release()
                if run:
                    dispatcher.run_all(_me())
        finally:
            if conn.ends_in_order:
                self._notify_close()
            self._end_socket(sock)  # a send blocked on a peer that stopped reading gives up now
            with self._write_lock:
                (sock if tls is None else tls).close()
            self._unregister()
            if run:
                dispatcher.run_all(_me())
        if self._redial is not None:
            self._redial_loop(self._redial)

    def _redial_loop(self, redial: Redialer) -> None:
        """The connection ended: dial its remote again, as the core's backoff says,
        until one connects (its reader is a new thread), or the user closes, or
        the core gives up."""
        conn, lock, dispatcher = self._conn, self._lock, self._dispatcher
        with lock:
            dispatcher.publish(redial.lost(now(), random.random(), conn.ended_by, conn.asked))
        while True:
            with lock:
                deadline = redial.timer()
                if deadline is None:
                    return  # closed by the user, or given up
                if not redial.handle_timer(now()):
                    self._waiters.wait(lambda: not redial.active, deadline - now())
                    continue
            remote = conn.remote
            assert remote is not None
            try:
                self.connect(*remote)
                return
            except SocketError as exc:
                with lock:
                    dispatcher.publish(redial.failed(now(), random.random(), exc))

    def _stream_ended(self, sock: _socket.socket, exc: OSError) -> bool:
        """A read error: ``True`` if the caller must drain.

        A write in flight finishes or fails first (the shutdown aborts one
        blocked on a peer that stopped reading), and settles under the write
        lock: a send whose bytes the OS took is SENDED, not failed by this end.
        """
        _shutdown(sock)
        with self._write_lock, self._lock:
            return self._dispatcher.push(self._conn.connection_lost(exc))

    def _input_ended(self) -> None:
        """The peer's EOF: its last data runs while we can still reply; once
        every event up to it has run, the core closes (half open: we wait for
        our own close), and the replies accepted by then are written first."""
        conn, lock, dispatcher, waiters = self._conn, self._lock, self._dispatcher, self._waiters
        # Under the write lock, as in _stream_ended: when the EOF is our own
        # close's shutdown, a write the OS took meanwhile is SENDED, not failed.
        with self._write_lock, lock:
            run = dispatcher.push(conn.receive_eof())
        if run:
            dispatcher.run_all(_me())
        with lock:
            waiters.wait_dispatched()  # another thread may be draining
            run = dispatcher.push(conn.eof_dispatched())
        self._unregister()  # before its DISCONNECT runs
        if run:
            dispatcher.run_all(_me())
        with lock:
            waiters.wait(lambda: conn.closed)

    def _unregister(self) -> None:
        """Once closed, a server's client leaves the registry (before its DISCONNECT runs)."""
        if self._server is not None and self._conn.closed:
            self._server._client_gone(self)

    # -- data ----------------------------------------------------------------------

    def send(self, data: Data) -> None:
        """Send *data* (str, bytes, bytearray, memoryview); SENDED or SENDFAIL follows.

        Returns once the bytes are handed to the OS.  Not connected: 1001.
        """
        conn, lock = self._conn, self._lock
        lock.acquire()  # not `with`: see _read_loop
        try:
            ticket, payload = conn.send(data, now() if conn.clocked else None)
            sock = self._sock
            if ticket == OVERFLOW:
                run = self._overflowed(data)
            else:
                if conn.sooner:  # this send's deadline comes before the armed one
                    self._arm()
                if self._outbox is not None:  # the writer holds earlier bytes: they go first
                    if threading.current_thread() is self._writer:  # its own callback
                        self._outbox.append((ticket, payload))
                        return
                    self._waiters.wait(lambda: self._outbox is None)
        finally:
            lock.release()
        if ticket == OVERFLOW:
            self._ended_by_core(sock, run)
            return
        assert sock is not None
        self._write(sock, ticket, payload)

    def _write(self, sock: _socket.socket, ticket: int, payload: bytes | memoryview) -> None:
        """Write *payload* in full (waiting for the peer), settle *ticket*, dispatch."""
        conn, lock, tls, write_lock = self._conn, self._lock, self._tls, self._write_lock
        try:
            write_lock.acquire()  # not `with`: see _read_loop
            try:
                if tls is None:
                    sock.sendall(payload)
                else:
                    tls.send_all(payload)
                lock.acquire()  # settled before the write lock goes: see _stream_ended
                try:
                    run = conn.settle(ticket)
                    if conn.closed:
                        _shutdown(sock)
                    if self._dispatcher.waiting:  # shutdown() or an ended reader may wait
                        self._waiters.notify()
                finally:
                    lock.release()
            finally:
                write_lock.release()
        except OSError as exc:
            with lock:
                events = conn.send_failed(ticket, exc)
                events += conn.connection_lost(exc)
                run = self._dispatcher.push(events)
                self._waiters.notify()
            _shutdown(sock)
        if conn.closed:
            self._unregister()
        if run:
            self._dispatcher.run_all(_me())

    def _send_soon(self, data: Data) -> None:
        """``send`` that never waits on the peer (a broadcast's, one client at a time):
        what the OS does not take at once, this connection's writer thread writes."""
        conn, write_lock = self._conn, self._write_lock
        with self._lock:
            ticket, payload = conn.send(data, now() if conn.clocked else None)
            sock = self._sock
            assert sock is not None
            if ticket == OVERFLOW:
                run = self._overflowed(data)
            elif self._outbox is not None or not write_lock.acquire(blocking=False):
                # Another thread is writing, or the writer is busy: behind them.
                self._hand_to_writer(sock, ticket, payload)
                if conn.sooner:
                    self._arm()
                return
            else:
                tls = self._tls
                try:
                    if tls is None:
                        written = sock.send(payload, _MSG_DONTWAIT)
                    else:  # all, or the writer goes on with the same payload
                        written = len(payload) if tls.send_now(payload) else 0
                except OSError:  # it would block, or it failed: the writer finds out
                    written = 0
                finally:
                    write_lock.release()
                if written != len(payload):
                    rest = payload if tls is not None else memoryview(payload)[written:]
                    self._hand_to_writer(sock, ticket, rest)
                    if conn.sooner:
                        self._arm()
                    return
                run = conn.settle(ticket)
                if self._dispatcher.waiting:
                    self._waiters.notify()
        if ticket == OVERFLOW:
            self._ended_by_core(sock, run)
        elif run:
            self._dispatcher.run_all(_me())

    def _overflowed(self, data: Data) -> bool:
        """``send`` of *data* made us a slow consumer (lock held): the core's
        events are queued (``True``: drain them), then :meth:`_ended_by_core`."""
        run = self._dispatcher.push(self._conn.overflowed(data))
        self._waiters.notify()
        return run

    def _ended_by_core(self, sock: _socket.socket | None, run: bool) -> None:
        """The core closed the connection (a deadline, a slow consumer): the
        reader and any blocked writer end now; its events run."""
        _shutdown(sock)
        self._unregister()
        if run:
            self._dispatcher.run_all(_me())

    def _hand_to_writer(self, sock: _socket.socket, ticket: int, rest: bytes | memoryview) -> None:
        """Queue *rest* for the writer thread, started if there is none (lock held)."""
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append((ticket, rest))
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, args=(sock,), name=f"jfsocket writer {self.remote}"
            )
            self._writer.start()

    def _write_loop(self, sock: _socket.socket) -> None:
        """Write what was handed over, in order, until none is left (or the end)."""
        conn, lock, waiters = self._conn, self._lock, self._waiters
        while True:
            with lock:
                outbox = self._outbox
                if not outbox or conn.closed:  # at the end, the core failed what is left
                    self._outbox = None
                    self._writer = None
                    waiters.notify()  # a send waiting for us goes now
                    return
                ticket, rest = outbox.popleft()
            self._write(sock, ticket, rest)

    def close(self, abort: bool = False) -> None:
        """Close the connection; DISCONNECT fires once.  Idempotent, callable from callbacks.

        ``abort=True`` resets it (the peer sees an RST) and fails unwritten sends at once.
        """
        with self._lock:
            if self._redial is not None:
                self._redial.stop()
            live = self._conn.live
            run = self._dispatcher.push(self._conn.close(abort=abort))
            sock, reader, writer = self._sock, self._reader, self._writer
            if self._alarm is not None:
                self._alarm.cancel()
            if abort and live and sock is not None:
                self._reset = True
                linger_zero(sock)
            self._waiters.notify()
        # Sends in flight in other threads are aborted, not awaited: a peer that
        # does not read must not be able to hang close().
        if live and self._conn.ends_in_order:
            self._notify_close()
        self._end_socket(sock)
        self._unregister()
        if run:
            self._dispatcher.run_all(_me())
        if not inside(_me()):
            _join(reader)
            _join(writer)
            self._waiters.wait_idle()
            join_idle()

    def _end_socket(self, sock: _socket.socket | None) -> None:
        """Wake what blocks on *sock*; on a reset, with no FIN before the RST
        unless a write is stuck (its unsent bytes hold the FIN back)."""
        if self._reset and sock is not None and not self._write_lock.locked():
            _shutdown(sock, _socket.SHUT_RD)
        else:
            _shutdown(sock)

    def shutdown(self) -> None:
        """Close our sending side once the sends accepted so far are written.

        The peer sees EOF; ``send`` then raises 1001; we keep receiving until
        the peer closes, then DISCONNECT.  Not connected: 1001.  Idempotent.
        """
        conn, lock, dispatcher, waiters = self._conn, self._lock, self._dispatcher, self._waiters
        with lock:
            run = dispatcher.push(conn.shutdown())
            sock = self._sock
            waiters.wait(lambda: not conn.pending or not conn.write_closed)
            waiters.notify()
            shut = conn.write_closed
        if shut and sock is not None:
            with self._write_lock:
                _shutdown(sock, _socket.SHUT_WR)
        if conn.closed:  # after the peer's EOF (half open): both ends are done
            _shutdown(sock)
            self._unregister()
        if run:
            dispatcher.run_all(_me())

    def _finish(self) -> None:
        self.close()


class TcpServer(ServerFacade, SyncLifetime):
    """A TCP server; its clients are :class:`TcpClient` objects that inherit its callbacks."""

    _model: ServerModel[TcpClient]

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._waiters = _Waiters(self._registry, self._lock)
        self._dispatcher = self._waiters.dispatcher
        self._listener: _socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._readers: list[threading.Thread] = []
        self._prune_at = 64
        #: TLS clients whose handshake is under way (not in the registry yet).
        self._handshaking: set[TcpClient] = set()

    @property
    def clients(self) -> dict[Address, TcpClient]:
        """A copy of ``{remote: TcpClient}``."""
        with self._lock:
            return self._model.clients

    def start(self) -> None:
        """Listen; STARTED has fired when this returns.  Started: 1000; port taken: 1005."""
        with self._lock:
            address = self._model.start()
        listener = _socket.socket(family_of(address[0]), _socket.SOCK_STREAM)
        try:
            prepare_listener(listener, self._model.v6only)
            listener.bind(address)
            listener.listen(self._model.backlog)
        except OSError as exc:
            listener.close()
            with self._lock:
                error = self._model.start_failed(exc)
            raise error from exc
        with self._lock:
            events = self._model.listening(normalize_sockaddr(listener.getsockname()))
            self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"jfsocket acceptor {self.host}"
        )
        self._acceptor.start()
        self._dispatcher.emit(events, key=_me())

    def _accept_loop(self, listener: _socket.socket) -> None:
        retry = threading.Event()
        while True:
            try:
                sock, _ = listener.accept()
            except OSError as exc:
                action = self._model.accept_failed(exc)
                if action is AcceptAction.STOP:
                    break
                if action is AcceptAction.WAIT:
                    retry.wait(ACCEPT_RETRY_DELAY)
                continue
            if self._tls_context is not None:  # the handshake is the reader thread's
                client = TcpClient(_server=self)
                try:
                    secure = client._begin_tls(sock, None)
                except SocketError:
                    sock.close()  # the peer left before we could look at it
                    continue
                with self._lock:
                    self._handshaking.add(client)
                client._start_reader(secure)
                self._keep_reader(client)
                continue
            try:
                client = TcpClient(sock, _server=self)
            except SocketError:
                sock.close()  # the peer left before we could look at it
                continue
            with self._lock:
                accepted = client.remote is not None and self._model.accept(client.remote, client)
            if not accepted:
                sock.close()  # stop() won the race: no CONNECTED, so no DISCONNECT
                continue
            client._start_reader()
            self._keep_reader(client)

    def _keep_reader(self, client: TcpClient) -> None:
        """Remember *client*'s reader, for stop() to join."""
        with self._lock:
            if len(self._readers) >= self._prune_at:  # amortised: not O(n) per accept
                self._readers = [t for t in self._readers if t.is_alive()]
                self._prune_at = max(64, 2 * len(self._readers))
            if client._reader is not None:
                self._readers.append(client._reader)

    def _handshake_over(self, client: TcpClient) -> None:
        with self._lock:
            self._handshaking.discard(client)

    def _client_gone(self, client: TcpClient) -> None:
        with self._lock:
            if client.remote is not None:
                self._model.remove(client.remote, client)
            self._waiters.notify()

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, close every client (DISCONNECT each), then STOPED.

        With *grace* (seconds) the clients keep working until they close or
        the period ends; then the rest are closed.  Done when it returns
        (from inside a callback, STOPED follows that callback's own events).
        Idempotent.
        """
        model = self._model
        with self._lock:
            clients = model.stop(grace, now())
            listener, acceptor = self._listener, self._acceptor
        if clients is None:
            return
        assert listener is not None
        _shutdown(listener)
        _join(acceptor)
        listener.close()
        with self._lock:
            handshaking = list(self._handshaking)
        for client in handshaking:  # no CONNECTED yet: closed with no event
            client.close()
        with self._lock:
            # Those accepted while stopping too; with a grace period, once it is over.
            while not (clients := model.handle_timer(now())) and model.connected:
                deadline = model.timer()
                assert deadline is not None  # clients are connected: the period runs
                self._waiters.wait(lambda: not model.connected, deadline - now())
        for client in clients:
            client.close()
        with self._lock:
            self._waiters.wait(lambda: not self._model.connected)
            events = self._model.stopped()
            readers, self._readers = self._readers, []
        for reader in readers:
            _join(reader)
        # Inside a callback, STOPED goes after the events already queued there.
        if self._dispatcher.push_behind(innermost(_me()), events):
            self._dispatcher.run_all(_me())

    def send(self, data: Data, remote: Address | None = None) -> None:
        """Send to one remote, or to every connected client.

        Unknown remote: 1003; one that has disconnected: 1001.
        """
        encode_payload(data, self._options.encoding)  # bad data fails even with no clients
        with self._lock:
            targets = self._model.targets(remote)
        for client in targets:
            try:
                if remote is not None:
                    client.send(data)
                else:
                    # A broadcast waits on no client: a slow one's share is written
                    # by its own writer thread while the others get theirs.
                    client._send_soon(data)
            except SocketError as exc:
                if not self._model.broadcast_skips(remote, exc):
                    raise

    def close(self, remote: Address | None = None) -> None:
        """Close one remote's connection, or all of them."""
        with self._lock:
            targets = self._model.targets(remote)
        for client in targets:
            client.close()

    def _finish(self) -> None:
        self.stop()


class CastReceiver(ReceiverFacade, SyncLifetime):
    """Receives UDP multicast datagrams on a port, for the groups joined."""

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._waiters = _Waiters(self._registry, self._lock, last=(Stopped,))
        self._dispatcher = self._waiters.dispatcher
        self._sock: _socket.socket | None = None
        self._reader: threading.Thread | None = None

    def events(self, timeout: float | None = None) -> EventQueue:
        """The typed events from now on (:class:`Received` says who sent a
        datagram, and where it arrived), until STOPED; ``for event in
        receiver.events(timeout=5):``."""
        with self._lock:
            return EventQueue(self._dispatcher, timeout)

    def start(self) -> None:
        """Bind, join the groups, listen; STARTED has fired when this returns."""
        with self._lock:
            address = self._model.start()
            family = family_of(address[0])
            sock = _socket.socket(family, _socket.SOCK_DGRAM)
            try:
                prepare_receiver(sock, family, self._model)
                sock.bind(address)
                apply_changes(sock, self._model.joins())
            except OSError as exc:
                sock.close()
                raise self._model.start_failed(exc) from exc
            events = self._model.listening(normalize_sockaddr(sock.getsockname()))
            self._sock = sock
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock,), name=f"jfsocket receiver {self.host}"
        )
        self._reader.start()
        self._dispatcher.emit(events, key=_me())

    def _read_loop(self, sock: _socket.socket) -> None:
        model, lock, dispatcher, waiters = self._model, self._lock, self._dispatcher, self._waiters
        try:
            while True:
                try:
                    data, ancdata, flags, address = sock.recvmsg(model.recv_buffer, ANCILLARY_SIZE)
                except OSError:
                    break
                if address is None or not model.is_listening:
                    break  # woken by stop()
                with lock:
                    run = model.feed(
                        data,
                        address,
                        dispatcher,
                        truncated=bool(flags & _MSG_TRUNC),
                        ancdata=ancdata,
                    )
                    if not run and _backlogged(dispatcher):
                        waiters.wait(lambda: not model.is_listening or not _backlogged(dispatcher))
                if run:
                    dispatcher.run_all(_me())
        finally:
            sock.close()

    def stop(self) -> None:
        """Leave the groups and stop listening; STOPED has fired when this returns."""
        with self._lock:
            drops = self._model.stop()
            sock, reader = self._sock, self._reader
            self._sock = None
            self._waiters.notify()
        if drops is None or sock is None:
            return
        with contextlib.suppress(OSError):
            apply_changes(sock, drops)
        _shutdown(sock)  # wakes the reader, which closes the socket on its way out
        _join(reader)
        self._dispatcher.emit(self._model.stopped(), key=_me())

    def _guard(self) -> threading.Lock:
        return self._lock

    def _finish(self) -> None:
        self.stop()


class CastSender(SenderFacade, SyncLifetime):
    """Sends UDP multicast datagrams; SENDED/SENDFAIL for each."""

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._waiters = _Waiters(self._registry, self._lock)
        self._dispatcher = self._waiters.dispatcher
        self._sockets: dict[int, _socket.socket] = {}

    def _socket_for(self, family: int) -> _socket.socket:
        sock = self._sockets.get(family)
        if sock is not None:
            return sock
        model = self._model
        sock = _socket.socket(family, _socket.SOCK_DGRAM)
        try:
            configure_sender(sock, family, model)
        except OSError:
            sock.close()
            raise
        self._sockets[family] = sock
        return sock

    def send(self, remote: Address, data: Data) -> None:
        """Send *data* to ``(group, port)``; not a multicast group: 1004."""
        with self._lock:
            ticket, payload, target = self._model.send(remote, data)
            family = family_of(target[0])
            try:
                count = self._socket_for(family).sendto(payload, target)
            except OSError as exc:
                run = self._dispatcher.push(self._model.send_failed(ticket, exc))
            else:
                run = self._model.settle(ticket, count, payload, self._dispatcher)
        if run:
            self._dispatcher.run_all(_me())

    def close(self) -> None:
        """Release the sockets (a later ``send`` opens new ones)."""
        with self._lock:
            sockets, self._sockets = list(self._sockets.values()), {}
        for sock in sockets:
            sock.close()

    def _finish(self) -> None:
        self.close()
