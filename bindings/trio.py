"""The trio binding: the same objects, structured and cancellable.

Every decision comes from :mod:`jfsocket.core`; this module reads, writes,
joins groups and awaits what the core returns.  Its shape:

* each object's ``async with`` owns a nursery; a connection's reader task, a
  server's accept loop and a receiver's reader live there, and leaving the
  block stops/closes the object and then ends every task;
* callbacks may be plain functions or ``async def``; an object's callbacks run
  in order, one at a time (the core's :class:`~jfsocket.core.Dispatcher`), in the task
  that delivered the events: usually the reader task;
* ``await send()`` returns once the bytes were written and SENDED has run,
  and ``connect()`` once CONNECTED has run; called from inside a callback,
  they do not wait for those events (which run once the callbacks queued
  before them have): callbacks never nest, and two objects' callbacks must
  never wait for each other.  trio's flow control gives backpressure;
* cancellation anywhere leaves the core consistent: a send cancelled while
  writing settles with SENDFAIL and drops the connection (the stream may hold
  part of it); events a cancelled callback left queued are dispatched by a
  task in the object's nursery, so DISCONNECT is never lost;
* ``async for event in obj`` yields the core's typed events, as an alternative
  to callbacks (a server's stream includes its clients' events);
* TLS (``ssl=``) is ``trio.SSLStream`` over the socket stream; its handshake
  runs in ``connect`` or, for a server's client, in a task of its own, under
  the core's deadline (:mod:`._trio_tls`).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
import random
import socket as _socket
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, TypeVar, cast

import trio
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
    ErrorCode,
    Event,
    EventTypes,
    OsContext,
    Redialer,
    ServerModel,
    SocketError,
    Stopped,
    StreamEvent,
    innermost,
    inside,
    mark_inside,
    normalize_sockaddr,
    translate_os_error,
)

from ._facade import (
    AsyncServerOps,
    ClientFacade,
    ReceiverFacade,
    SenderFacade,
    raise_failure,
    wrong_runtime,
)
from ._facade import redial as redial_loop
from ._sockopts import (
    apply_changes,
    configure_sender,
    configure_stream,
    family_of,
    linger_zero,
    prepare_listener,
    prepare_receiver,
)
from ._tls import CLOSE_NOTIFY_GRACE, READ_SIZE, tls_info
from ._trio_tls import FinGuard, PeerFinishedError, TrioTls

__all__ = [
    "ALL",
    "CastReceiver",
    "CastSender",
    "EventTypes",
    "SocketError",
    "TcpClient",
    "TcpServer",
]

_O = TypeVar("_O", bound="_Object")
_MSG_TRUNC: Final = int(_socket.MSG_TRUNC)  # an int: IntFlag's & is slow per datagram


def _task() -> trio.lowlevel.Task:
    """Who drains, for the core's ``inside()`` and ``innermost()``."""
    return trio.lowlevel.current_task()


def _inside() -> bool:
    """The current task is running a callback, or was started by one (so it must
    not wait for events)."""
    return inside(trio.lowlevel.current_task())


class _Host:
    """trio's part of an object's :class:`Dispatcher` (``core``): the drainer
    awaits async callbacks, waiters park, and a drain a cancellation cut short
    is resumed by a task of the object's nursery, so DISCONNECT is never lost."""

    __slots__ = ("_lot", "core", "nursery")

    def __init__(
        self,
        registry: CallbackRegistry,
        parent: _Host | None = None,
        *,
        last: tuple[type[StreamEvent], ...] = (),
    ) -> None:
        self.core: Dispatcher = Dispatcher(
            registry, parent.core if parent is not None else None, last=last, host=self
        )
        self._lot: trio.lowlevel.ParkingLot | None = None  # made by the first waiter
        self.nursery: trio.Nursery | None = None

    def push(self, events: list[Event], registry: CallbackRegistry | None = None) -> bool:
        """Queue *events* (``async for`` readers get them too); ``True``: drain now."""
        return self.core.push(events, registry)

    async def emit(self, events: list[Event], registry: CallbackRegistry | None = None) -> None:
        """Push, then drain, or wait until another task has dispatched them."""
        await self.finish(self.core.push(events, registry))

    async def drain(self) -> None:
        """Run callbacks, awaiting async ones, until the queue is empty."""
        await self.core.drain(trio.lowlevel.current_task())

    def wake(self) -> None:
        if self._lot is not None:
            self._lot.unpark_all()

    def resume(self) -> None:
        if self.nursery is not None:
            self.nursery.start_soon(self._resume)

    async def _resume(self) -> None:
        if self.core.claim():
            await self.drain()

    async def wait_done(self, target: int) -> None:
        """Wait until the events pushed up to *target* were dispatched."""
        core = self.core
        if _inside():
            # Inside a callback (ours: they run right after it; another object's:
            # its drainer may be waiting on us, as two connections closing each
            # other would), so do not wait.
            return
        while core.done < target and core.busy:
            if self._lot is None:
                self._lot = trio.lowlevel.ParkingLot()
            core.waiting += 1
            try:
                await self._lot.park()
            finally:
                core.waiting -= 1

    def subscribe(self) -> trio.MemoryReceiveChannel[StreamEvent]:
        """A stream of every event pushed from now on."""
        send, receive = trio.open_memory_channel[StreamEvent](math.inf)
        self.core.subscribe(_Channel(send, self.core))
        return receive

    async def finish(self, run: bool) -> None:
        """After a push that said *run*: drain, or wait until its events were dispatched."""
        if run:
            await self.drain()
        else:
            await self.wait_done(self.core.pushed)


class _Channel:
    """A stream's sending side: one whose reader closed it is dropped, not
    an error in whoever delivers the next event."""

    __slots__ = ("_core", "_send")

    def __init__(self, send: trio.MemorySendChannel[StreamEvent], core: Dispatcher) -> None:
        self._send = send
        self._core = core

    def send_nowait(self, event: StreamEvent) -> None:
        try:
            self._send.send_nowait(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._core.unsubscribe(self)

    def close(self) -> None:
        self._send.close()


async def _as_inside(job: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run *job* as part of the callback that started it (it waits for no event)."""
    mark_inside()
    await job(*args)


#: A broadcast writes what the OS takes at once with os.write on the socket's
#: descriptor (trio has no public non-blocking send); Windows sockets are not files.
_WRITE_NOW: Final = os.name == "posix"


def _write_error(exc: BaseException) -> BaseException:
    """What a failed ``send_all`` tells the user: the OS's error behind a broken
    stream, else (closed under it, cancelled) 1001 with trio's exception inside."""
    cause = exc.__cause__
    if isinstance(exc, trio.BrokenResourceError) and isinstance(cause, OSError):
        return cause
    return SocketError(ErrorCode.NOT_CONNECTED, exc)


class _Object:
    """Nursery ownership, ``async with`` and ``async for``, shared by the four classes."""

    _dispatcher: _Host
    _nursery_cm: Any = None

    def _require_trio(self) -> None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            raise wrong_runtime(self, "trio", "trio (trio.run)") from None

    def _require_nursery(self) -> trio.Nursery:
        self._require_trio()
        nursery = self._dispatcher.nursery
        if nursery is None:
            name = type(self).__name__
            raise RuntimeError(f"use `async with {name}(...)`: its tasks need the nursery it opens")
        return nursery

    async def __aenter__(self: _O) -> _O:
        self._require_trio()
        obj = self
        obj._nursery_cm = trio.open_nursery()
        obj._dispatcher.nursery = await obj._nursery_cm.__aenter__()
        try:
            await obj._enter()
        except BaseException:
            await obj._close_nursery()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self._finish()
        await self._close_nursery()

    async def _close_nursery(self) -> None:
        """End our tasks.  The body's exception is not passed in, so that it
        propagates as itself instead of wrapped in an ExceptionGroup."""
        nursery = self._dispatcher.nursery
        assert nursery is not None
        nursery.cancel_scope.cancel()  # its own cancellation is absorbed by its scope
        self._dispatcher.nursery = None
        await self._nursery_cm.__aexit__(None, None, None)

    def __aiter__(self) -> trio.MemoryReceiveChannel[StreamEvent]:
        """``async for event in obj``: the typed events, until the object is done."""
        return self._dispatcher.subscribe()

    async def _enter(self) -> None:
        pass

    async def _finish(self) -> None:
        raise NotImplementedError


class TcpClient(ClientFacade[trio.SocketStream], _Object, TrioTls):
    """A TCP connection: to a server (``connect``), adopted, or a server's side of one."""

    _socket_type = trio.SocketStream
    _server: TcpServer | None

    def _init(self, options: ConnectionOptions, server: TcpServer | None) -> None:
        self._server = server
        parent = server._dispatcher if server is not None else None
        self._dispatcher = _Host(self._registry, parent, last=self._stream_ends())
        self._conn = Connection(self, options, self._dispatcher.core)
        if server is not None:
            self._dispatcher.nursery = server._dispatcher.nursery
        self._stream: trio.abc.Stream | None = None  # what we read and write (maybe TLS)
        self._raw: trio.SocketStream | None = None  # its socket stream
        self._handshaking: trio.CancelScope | None = None  # close() cancels a TLS handshake
        self._writing = False
        #: What broadcasts could not write at once, for the writer task.
        self._outbox: collections.deque[tuple[int, bytes | memoryview]] | None = None
        # Parking lots are made by their first waiter: most connections have none.
        self._write_lot: trio.lowlevel.ParkingLot | None = None
        self._reader_done = trio.Event()
        self._reader_done.set()
        self._ending: trio.lowlevel.ParkingLot | None = None  # a reader past the peer's EOF
        #: The timer task's scope: its deadline is the core's next one.
        self._alarm: trio.CancelScope | None = None
        self._redialing: trio.CancelScope | None = None  # waiting to dial again

    def _given(self, socket: trio.SocketStream) -> None:
        self._adopt(socket)

    def _adopt(
        self,
        stream: trio.SocketStream,
        attempt: int | None = None,
        secured: trio.SSLStream[FinGuard] | None = None,
    ) -> None:
        """The connection is made (over *secured*, if TLS): CONNECTED is queued
        in the same step.

        It waits there for the reader (or an earlier sender, which then drains
        it first), so nothing can overtake it.
        """
        conn = self._conn
        now = trio.current_time() if conn.clocked else None
        if secured is not None:  # 1006 if closed meanwhile
            events = conn.handshake_done(tls_info(secured), attempt=attempt, now=now)
        else:
            try:
                host = normalize_sockaddr(stream.socket.getsockname())
                remote = normalize_sockaddr(stream.socket.getpeername())
            except OSError as exc:
                raise translate_os_error(OsContext.ADOPT, exc) from exc
            events = conn.connection_made(host, remote, attempt=attempt, now=now)
        if self._redial is not None:
            self._redial.connected(trio.current_time())
        configure_stream(stream.socket, conn.options)
        self._stream = stream if secured is None else secured
        self._raw = stream
        if self._dispatcher.push(events):
            self._dispatcher.core.release()

    async def _enter(self) -> None:
        if self._stream is not None and self._conn.is_open:  # adopted
            self._start_reader(self._require_nursery())

    def _start_reader(self, nursery: trio.Nursery) -> None:
        assert self._stream is not None
        self._reader_done = trio.Event()
        nursery.start_soon(self._reader, self._stream, self._conn.epoch)
        if self._conn.clocked:
            nursery.start_soon(self._timer, self._stream, self._conn.epoch)

    async def _timer(self, stream: trio.abc.Stream, epoch: int) -> None:
        """Sleep until the core's next deadline, hand it the time, repeat;
        a timeout closes the stream (the reader then ends)."""
        conn = self._conn
        while conn.current(epoch):
            deadline = conn.timer()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as alarm:
                self._alarm = alarm
                await trio.sleep_forever()
            self._alarm = None
            if not conn.current(epoch):
                return  # ended meanwhile: the reader reported it
            events = conn.handle_timer(trio.current_time())
            if conn.closed:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)
                self._unregister()
            await self._settle(events)

    def _arm(self) -> None:
        """A send may bring the next deadline forward: wake the timer task sooner."""
        alarm = self._alarm
        if alarm is not None:
            deadline = self._conn.timer()
            if deadline is not None and deadline < alarm.deadline:
                alarm.deadline = deadline

    def _disarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()

    async def connect(
        self,
        ip: str,
        port: int,
        *,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Connect to ``(ip, port)``; CONNECTED has run when this returns.

        Already connected: SocketError 1000; refused, unreachable,
        unresolvable or not connected within *timeout* seconds: 1006 (``err``
        a ``TimeoutError`` then).  With ``ssl=``, CONNECTED follows the TLS
        handshake, whose failure is 1006 (``err`` the ``ssl.SSLError``, or 1008
        after ``handshake_timeout``); the certificate is checked against
        *server_hostname*, by default *ip*.
        """
        host, port, seconds, hostname = self._dial_args(ip, port, timeout, server_hostname)
        nursery = self._require_nursery()
        attempt = self._conn.start_connect()
        try:
            # A reconnect does not wait for the last reader: it may be the very
            # task calling us (from DISCONNECT), and it leaves this connection be.
            with trio.move_on_after(math.inf if seconds is None else seconds) as waited:
                stream = await trio.open_tcp_stream(host, port)
            if waited.cancelled_caught:
                raise TimeoutError(f"not connected within {seconds} s")
        except BaseException as exc:
            # Back to IDLE, also when cancelled.
            raise_failure(self._conn.connect_failed(exc, attempt=attempt), exc)
        secured = None
        if hostname is not None:
            try:
                self._begin_tls(stream, attempt)
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
            secured = await self._secure(stream, hostname, attempt)
        try:
            self._adopt(stream, attempt, secured)
        except BaseException:
            await trio.aclose_forcefully(secured or stream)
            raise
        self._start_reader(nursery)
        if self._dispatcher.core.claim():
            await self._dispatcher.drain()
        else:
            await self._dispatcher.wait_done(self._dispatcher.core.pushed)

    async def _reader(self, stream: trio.abc.Stream, epoch: int) -> None:
        conn, dispatcher, done = self._conn, self._dispatcher, self._reader_done
        size = conn.recv_buffer if stream is self._raw else READ_SIZE  # TLS: whole records
        try:
            if dispatcher.core.claim():  # CONNECTED, unless a sender drained it already
                await dispatcher.drain()
            while True:
                try:
                    # bytes: a SocketStream's and an SSLStream's (a Stream may say bytearray).
                    data = cast(bytes, await stream.receive_some(size))
                except PeerFinishedError:  # TLS: the peer's FIN, with no close_notify before it
                    await self._input_ended(epoch)
                    break
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    run = dispatcher.push(conn.connection_lost(exc.__cause__ or exc, epoch=epoch))
                else:
                    if not data:
                        await self._input_ended(epoch)
                        break
                    run = conn.feed(data, trio.current_time() if conn.clocked else None)
                ended = conn.closed  # read now: a DISCONNECT callback may connect again
                if ended:
                    self._unregister()  # it leaves the registry before its DISCONNECT runs
                if run:
                    await dispatcher.drain()
                if ended:
                    break
        finally:
            self._disarm()
            with trio.CancelScope(shield=True):
                # Ended in order (the peer's EOF, every reply written): with
                # TLS's close_notify.  Cancelled while live: dropped.
                polite = conn.ends_in_order and not conn.current(epoch)
                await self._close_stream(stream, polite=polite)
                # Our nursery was cancelled under us.  (A reconnect may already have
                # begun: then this reader's connection is over, and not ours to end.)
                if conn.current(epoch):
                    await self._settle(conn.connection_lost(None))
                self._unregister()
                done.set()
        if self._redial is not None and conn.epoch == epoch:  # not replaced by a connect
            await self._redial_loop(self._redial)

    async def _redial_loop(self, redial: Redialer) -> None:
        """The connection ended: dial its remote again, as the core's backoff says,
        until one connects (with a reader task of its own), the user closes, or
        the core gives up."""
        conn = self._conn
        core = self._dispatcher.core
        core.publish(redial.lost(trio.current_time(), random.random(), conn.ended_by, conn.asked))
        with trio.CancelScope() as self._redialing:  # close() cancels it
            await redial_loop(self, redial, trio.current_time, trio.sleep_until)
        self._redialing = None

    async def _input_ended(self, epoch: int) -> None:
        """The peer's EOF: its last data runs while we can still reply; once
        every event up to it has run, the core closes (half open: we wait for
        our own close), and the replies accepted by then are written first."""
        conn = self._conn
        await self._settle(conn.receive_eof())
        events = conn.eof_dispatched()
        self._unregister()
        await self._settle(events)
        while conn.current(epoch):
            if self._ending is None:
                self._ending = trio.lowlevel.ParkingLot()
            await self._ending.park()

    async def _settle(self, events: list[Event]) -> None:
        await self._dispatcher.emit(events)

    def _unregister(self) -> None:
        if self._conn.closed:
            if self._ending is not None:  # a reader past the EOF can finish now
                self._ending.unpark_all()
            if self._server is not None:
                self._server._client_gone(self)

    def _writers(self) -> trio.lowlevel.ParkingLot:
        if self._write_lot is None:
            self._write_lot = trio.lowlevel.ParkingLot()
        return self._write_lot

    async def send(self, data: Data) -> None:
        """Send *data*; returns once written and SENDED (or SENDFAIL) has run.

        Not connected: 1001.  A write error is not raised: SENDFAIL reports it.
        """
        conn = self._conn
        # One writer at a time, in arrival order; what broadcasts queued goes first.
        while self._writing or self._outbox is not None:
            await self._writers().park()
        self._writing = True
        try:
            ticket, payload = conn.send(data, trio.current_time() if conn.clocked else None)
            if conn.sooner:  # this send's deadline comes before the armed one
                self._arm()
        except BaseException:
            self._done_writing()
            raise
        if ticket == OVERFLOW:
            self._done_writing()
            await self._overflowed(self._conn.overflowed(data))
            return
        await self._write_rest(ticket, payload)

    async def _overflowed(self, events: list[Event]) -> None:
        """A slow consumer: the core closed it; the socket goes, its *events* run."""
        stream = self._stream
        with trio.CancelScope(shield=True):
            if stream is not None:
                await trio.aclose_forcefully(stream)
            self._unregister()
            await self._settle(events)

    def _send_now(self, data: Data) -> Callable[[], Awaitable[None]] | None:
        """A broadcast's share, which never waits on the peer: written now if
        the OS takes it all, else queued for this connection's writer task
        (``max_pending`` bounds the queue).  ``None``, or what is left to await
        for its events.  Not connected: 1001."""
        conn = self._conn
        ticket, payload = conn.send(data, trio.current_time() if conn.clocked else None)
        if ticket == OVERFLOW:
            return functools.partial(self._overflowed, conn.overflowed(data))
        if conn.sooner:
            self._arm()
        written = 0
        stream = self._stream
        if not self._writing and self._outbox is None and _WRITE_NOW and stream is self._raw:
            assert isinstance(stream, trio.SocketStream)
            # The socket is non-blocking (trio's); trio's own send_all makes
            # this call after its checkpoint.  The caller checkpoints once.
            with contextlib.suppress(OSError):  # would block, or failed: the writer finds out
                written = os.write(stream.socket.fileno(), payload)
            if written == len(payload):
                return self._written(ticket)
        rest = memoryview(payload)[written:] if written else payload
        if self._outbox is None:
            self._outbox = collections.deque()
            nursery = self._dispatcher.nursery
            assert nursery is not None, "a server's client has the server's nursery"
            nursery.start_soon(self._write_outbox)
        self._outbox.append((ticket, rest))
        return None

    async def _write_outbox(self) -> None:
        """Write what broadcasts queued, in order (after the writer before us), then end."""
        while self._writing:
            await self._writers().park()
        self._writing = True
        try:
            outbox = self._outbox
            while outbox:  # broadcasts may add to it meanwhile
                ticket, rest = outbox.popleft()
                if not await self._write(ticket, rest):
                    break  # the connection is gone: the core failed what is left
                after = self._written(ticket)
                if after is not None:
                    await after()
        finally:
            self._outbox = None
            self._done_writing()

    async def _write_rest(self, ticket: int, payload: bytes | memoryview) -> None:
        """Write *payload* (we are the writer), settle *ticket*, run its events."""
        try:
            written = await self._write(ticket, payload)
        finally:
            self._done_writing()
        if written:
            rest = self._written(ticket)
            if rest is not None:
                await rest()

    async def _write(self, ticket: int, payload: bytes | memoryview) -> bool:
        """Write *payload* in full (``True``); on failure fail *ticket* and end the
        connection (``False``).  The caller is the writer."""
        conn = self._conn
        stream = self._stream
        assert stream is not None
        try:
            await stream.send_all(payload)
        except BaseException as exc:
            error = _write_error(exc)
            events = conn.send_failed(ticket, error) + conn.connection_lost(error)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
                self._unregister()
                await self._settle(events)
            if not isinstance(exc, (trio.BrokenResourceError, trio.ClosedResourceError)):
                raise
            return False
        return True

    def _done_writing(self) -> None:
        self._writing = False
        if self._write_lot is not None and self._write_lot:
            self._write_lot.unpark()

    def _written(self, ticket: int) -> Callable[[], Awaitable[None]] | None:
        """*ticket* is in the OS: settled; what is left to await for its events, if any."""
        core = self._dispatcher.core
        pushed = core.pushed
        run = self._conn.settle(ticket)
        self._unregister()  # the last reply after the peer's EOF ends the connection
        if run:
            return self._dispatcher.drain
        if core.pending_since(pushed):
            return functools.partial(self._dispatcher.wait_done, core.pushed)
        return None

    async def shutdown(self) -> None:
        """Close our sending side once the sends accepted so far are written.

        The peer sees EOF; ``send`` then raises 1001; we keep receiving until
        the peer closes, then DISCONNECT.  Not connected: 1001.  Idempotent.
        """
        conn = self._conn
        events = conn.shutdown()
        stream = self._raw  # over TLS too: a TCP FIN, no close_notify (which would end it all)
        if conn.write_closed and stream is not None:
            while self._writing or self._outbox is not None:  # the accepted writes go first
                await self._writers().park()
            self._writing = True
            try:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.send_eof()
            finally:
                self._done_writing()
        self._unregister()  # after the peer's EOF (half open) both ends are done
        await self._settle(events)

    async def close(self, abort: bool = False) -> None:
        """Close the connection; DISCONNECT has run when this returns (idempotent).

        ``abort=True`` resets it: the peer sees an RST, unwritten sends fail at once.
        """
        live = self._conn.live
        if self._redial is not None:
            self._redial.stop()
        if self._redialing is not None:
            self._redialing.cancel()
        events = self._conn.close(abort=abort)
        self._disarm()
        if self._handshaking is not None:
            self._handshaking.cancel()
        stream, raw = self._stream, self._raw
        if raw is not None and abort and live:
            linger_zero(raw.socket)
        if stream is not None:
            # In-flight sends are aborted, not awaited: a peer that does not
            # read must not be able to hang close().  TLS's close_notify goes
            # if nothing else is writing or reading it (briefly: see _tls).
            with trio.CancelScope(shield=True):
                await self._close_stream(stream, polite=live and self._conn.ends_in_order)
        self._unregister()
        with trio.CancelScope(shield=True):
            await self._settle(events)
            if (
                innermost(_task()) is None
            ):  # from a callback, the reader may be the one waiting on us
                await self._reader_done.wait()
        self._dispatcher.core.end_streams()  # (a redialing client's go on until now)

    async def _close_stream(self, stream: trio.abc.Stream, *, polite: bool) -> None:
        """Close *stream*; over TLS, if *polite* and no task is writing it,
        with TLS's close_notify first.  Best effort, briefly: whatever stops
        it (the peer gone, a reader in the middle of a record), the close
        goes on without it."""
        if polite and stream is not self._raw and not self._writing:
            with trio.move_on_after(CLOSE_NOTIFY_GRACE), contextlib.suppress(Exception):
                await stream.aclose()
        await trio.aclose_forcefully(stream)

    async def _finish(self) -> None:
        await self.close()


class TcpServer(AsyncServerOps, _Object):
    """A TCP server; ``async with`` starts it and stops it."""

    _model: ServerModel[TcpClient]

    def _init(self) -> None:
        self._dispatcher = _Host(self._registry, last=(Stopped,))
        self._listener: trio.SocketListener | None = None
        self._clients_gone = trio.lowlevel.ParkingLot()
        #: TLS clients whose handshake is under way (not in the registry yet).
        self._handshakes: set[TcpClient] = set()

    @property
    def clients(self) -> dict[Address, TcpClient]:
        """A copy of ``{remote: TcpClient}``."""
        return self._model.clients

    async def _enter(self) -> None:
        await self.start()

    async def start(self) -> None:
        """Listen; STARTED has run when this returns.  Started: 1000; port taken: 1005."""
        nursery = self._require_nursery()
        address = self._model.start()
        family = family_of(address[0])
        sock = trio.socket.socket(family, _socket.SOCK_STREAM)
        try:
            prepare_listener(sock, self._model.v6only)
            await sock.bind(address)
            sock.listen(self._model.backlog)
        except BaseException as exc:
            sock.close()
            raise_failure(self._model.start_failed(exc), exc)
        self._listener = trio.SocketListener(sock)
        events = self._model.listening(normalize_sockaddr(sock.getsockname()))
        nursery.start_soon(self._accept_loop, self._listener, nursery)
        await self._dispatcher.emit(events)

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            except OSError as exc:
                action = self._model.accept_failed(exc)
                if action is AcceptAction.STOP:
                    return
                if action is AcceptAction.WAIT:
                    await trio.sleep(ACCEPT_RETRY_DELAY)
                continue
            if self._tls_context is not None:  # the handshake is a task of its own
                client = TcpClient(_server=self)
                try:
                    client._begin_tls(stream)
                except SocketError:
                    await trio.aclose_forcefully(stream)  # the peer left before we looked
                    continue
                self._handshakes.add(client)
                nursery.start_soon(client._serve_tls, stream, nursery)
                continue
            try:
                client = TcpClient(stream, _server=self)
            except SocketError:
                await trio.aclose_forcefully(stream)  # the peer left before we looked
                continue
            if client.remote is None or not self._model.accept(client.remote, client):
                await trio.aclose_forcefully(stream)
                continue
            client._start_reader(nursery)

    def _client_gone(self, client: TcpClient) -> None:
        if client.remote is not None:
            self._model.remove(client.remote, client)
        self._clients_gone.unpark_all()

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, close every client (DISCONNECT each), then STOPED (idempotent).

        With *grace* (seconds) the clients keep working until they close or
        the period ends; then the rest are closed.
        """
        model = self._model
        if model.stop(grace, trio.current_time()) is None:
            return
        with trio.CancelScope(shield=True):
            if self._listener is not None:
                await self._listener.aclose()
            for client in list(self._handshakes):  # no CONNECTED yet: closed with no event
                await client.close()
            # Those accepted while stopping too; with a grace period, once it is over.
            while not (clients := model.handle_timer(trio.current_time())) and model.connected:
                deadline = model.timer()
                assert deadline is not None  # clients are connected: the period runs
                with trio.move_on_at(deadline):
                    while model.connected:
                        await self._clients_gone.park()
            for client in clients:
                await client.close()
            while self._model.connected:
                await self._clients_gone.park()
            events = self._model.stopped()
            # Inside a callback, STOPED goes after what is queued there.
            await self._dispatcher.finish(
                self._dispatcher.core.push_behind(innermost(_task()), events)
            )

    async def _broadcast(
        self, targets: list[TcpClient], data: Data, errors: list[SocketError]
    ) -> None:
        # Each share is written here if the OS takes it at once (the usual
        # case: no task, no trip round the scheduler); only one that must
        # wait goes on in a task of its own.
        later: list[Callable[[], Awaitable[None]]] = []
        for client in targets:
            try:
                rest = client._send_now(data)
            except SocketError as exc:
                self._send_failed(None, exc, errors)
                continue
            if rest is not None:
                later.append(rest)
        if not later:
            await trio.lowlevel.checkpoint()  # a trio async function always is one
            return
        inside = _inside()  # from a callback: the rest must not wait for events either
        async with trio.open_nursery() as nursery:
            for rest in later:
                if inside:
                    nursery.start_soon(_as_inside, self._share, rest, errors)
                else:
                    nursery.start_soon(self._share, rest, errors)

    async def _share(self, rest: Callable[[], Awaitable[None]], errors: list[SocketError]) -> None:
        try:
            await rest()
        except SocketError as exc:
            self._send_failed(None, exc, errors)

    async def _finish(self) -> None:
        await self.stop()


class CastReceiver(ReceiverFacade, _Object):
    """Receives UDP multicast datagrams; ``async with`` starts and stops it."""

    def events(self) -> trio.MemoryReceiveChannel[StreamEvent]:
        """``async for event in receiver.events()``: as ``async for event in receiver``."""
        return self.__aiter__()

    def _init(self) -> None:
        self._dispatcher = _Host(self._registry, last=(Stopped,))
        self._sock: trio.socket.SocketType | None = None
        self._reader_done = trio.Event()
        self._reader_done.set()

    async def _enter(self) -> None:
        await self.start()

    async def start(self) -> None:
        """Bind, join the groups, listen; STARTED has run when this returns."""
        nursery = self._require_nursery()
        address = self._model.start()
        family = family_of(address[0])
        sock = trio.socket.socket(family, _socket.SOCK_DGRAM)
        try:
            prepare_receiver(sock, family, self._model)
            await sock.bind(address)
            # Read the joins after the await: groups changed meanwhile count.
            apply_changes(sock, self._model.joins())
        except BaseException as exc:
            sock.close()
            raise_failure(self._model.start_failed(exc), exc)
        events = self._model.listening(normalize_sockaddr(sock.getsockname()))
        self._sock = sock
        self._reader_done = trio.Event()
        nursery.start_soon(self._reader, sock)
        await self._dispatcher.emit(events)

    async def _reader(self, sock: trio.socket.SocketType) -> None:
        model, dispatcher = self._model, self._dispatcher
        core = dispatcher.core
        try:
            while True:
                try:
                    data, ancdata, flags, address = await sock.recvmsg(
                        model.recv_buffer, ANCILLARY_SIZE
                    )
                except (OSError, trio.ClosedResourceError):
                    return
                if model.feed(
                    data, address, core, truncated=bool(flags & _MSG_TRUNC), ancdata=ancdata
                ):
                    await dispatcher.drain()
        finally:
            sock.close()
            self._reader_done.set()

    async def stop(self) -> None:
        """Leave the groups and stop listening; STOPED has run when this returns."""
        drops = self._model.stop()
        sock, self._sock = self._sock, None
        if drops is None or sock is None:
            return
        with contextlib.suppress(OSError):
            apply_changes(sock, drops)
        sock.close()  # the reader wakes with ClosedResourceError
        with trio.CancelScope(shield=True):
            if innermost(_task()) is None:
                await self._reader_done.wait()
            await self._dispatcher.emit(self._model.stopped())

    async def _finish(self) -> None:
        await self.stop()


class CastSender(SenderFacade, _Object):
    """Sends UDP multicast datagrams; SENDED/SENDFAIL for each."""

    def _init(self) -> None:
        self._dispatcher = _Host(self._registry)
        self._sockets: dict[int, trio.socket.SocketType] = {}

    def _socket_for(self, family: int) -> trio.socket.SocketType:
        sock = self._sockets.get(family)
        if sock is not None:
            return sock
        model = self._model
        sock = trio.socket.socket(family, _socket.SOCK_DGRAM)
        try:
            configure_sender(sock, family, model)
        except OSError:
            sock.close()
            raise
        self._sockets[family] = sock
        return sock

    async def send(self, remote: Address, data: Data) -> None:
        """Send *data* to ``(group, port)``; SENDED or SENDFAIL has run when this returns."""
        ticket, payload, target = self._model.send(remote, data)
        family = family_of(target[0])
        try:
            count = await self._socket_for(family).sendto(payload, target)
        except BaseException as exc:
            events = self._model.send_failed(ticket, exc)
            with trio.CancelScope(shield=True):
                await self._dispatcher.emit(events)
            if not isinstance(exc, OSError):
                raise
            return
        await self._dispatcher.finish(
            self._model.settle(ticket, count, payload, self._dispatcher.core)
        )

    async def close(self) -> None:
        """Release the sockets (a later ``send`` opens new ones)."""
        sockets, self._sockets = list(self._sockets.values()), {}
        for sock in sockets:
            sock.close()
        await trio.lowlevel.checkpoint()

    async def _finish(self) -> None:
        await self.close()
        self._dispatcher.core.end_streams()
