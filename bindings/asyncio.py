"""The asyncio binding: the same objects on asyncio's transports and protocols.

Every decision comes from :mod:`jfsocket.core`; this module feeds it what the
transports report and awaits what it returns.  Its shape:

* each connection is an :class:`asyncio.Protocol` (the core cuts what it
  reads at ``recvBuffer``), each receiver a ``DatagramProtocol``: the
  loop calls them, they feed the core and run plain callbacks right there, in
  the loop's callback, with no task and no hop;
* an ``async def`` callback delivered there runs its first step right away,
  as a task of its own (``Host._first_step``: started eagerly on 3.12+, the
  object's stand-in task before), so ``current_task()``, ``asyncio.timeout``
  and task groups work in it; one that never suspends (``await
  client.send(...)``, usually) costs no trip round the loop.  If it suspends,
  its task finishes it, and then the loop drains what is queued behind it.
  Meanwhile the connection stops reading, so a slow callback slows the peer
  instead of queueing data without bound.  The ordering rules are the core's
  (:class:`~jfsocket.core.Dispatcher`); this module only awaits, wakes and
  owns the tasks;
* ``await send()`` returns once the transport has handed the bytes to the OS
  and SENDED has run.  The write buffer's high-water mark is 0, so the
  transport calls ``pause_writing`` as soon as it has to buffer, and
  ``resume_writing`` once the OS took everything: a peer that stops reading
  blocks its senders, with no more than one message each in memory;
* called from inside a callback, ``send``/``connect``/``close``/``stop`` do
  not wait for their own events (which run once the callbacks queued before
  them have): callbacks never nest, and objects never wait on each other's;
* cancellation leaves the core consistent: a cancelled ``connect`` leaves the
  client IDLE; a cancelled ``send`` leaves its bytes to the transport, which
  settles them (SENDED, or SENDFAIL if the connection dies first); leaving
  ``async with`` finishes its cleanup even when cancelled again, then re-raises;
* ``async for event in obj`` yields the core's typed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import socket as _socket
from collections.abc import Awaitable, Coroutine
from typing import Any, Final, cast

from jfsocket.core import (
    ALL,
    OVERFLOW,
    Address,
    Connection,
    ConnectionOptions,
    Data,
    Dispatcher,
    Event,
    EventTypes,
    OsContext,
    Redialer,
    ServerModel,
    SocketError,
    Stopped,
    TlsInfo,
    mark_inside,
    normalize_sockaddr,
    translate_os_error,
)

from ._asyncio_host import (
    AsyncObject,
    EventStream,
    Host,
    cleanup,
    innermost_callback,
    inside_callback,
    resume,
    running_loop,
    sendto,
)
from ._asyncio_tls import AsyncioTls, close_notify
from ._facade import (
    AsyncServerOps,
    ClientFacade,
    ReceiverFacade,
    SenderFacade,
    raise_failure,
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

__all__ = [
    "ALL",
    "CastReceiver",
    "CastSender",
    "EventTypes",
    "SocketError",
    "TcpClient",
    "TcpServer",
]

#: Who paused our writes: the transport we write to, or (TLS) the socket's under it.
_APP: Final = 1
_SOCKET: Final = 2


class _Stream(asyncio.Protocol):
    """One transport's protocol: feeds the client's core, honours flow control."""

    __slots__ = (
        "_client",
        "_conn",
        "_dispatcher",
        "_early",
        "_fin_held",
        "_flushed",
        "_held",
        "_lost",
        "_lost_waiter",
        "_reading",
        "attempt",
        "epoch",
        "error",
        "paused",
        "raw",
        "secured",
        "transport",
        "unsettled",
    )

    def __init__(self, client: TcpClient, attempt: int | None = None) -> None:
        self._client = client
        self.attempt = attempt  # the connect() that made us, if one did
        self.epoch = -1  # the connection we carry, once adopted
        self._conn = client._conn
        self._dispatcher = client._dispatcher
        self.transport: asyncio.Transport | None = None
        self.error: SocketError | None = None  # the adoption failed: connect() raises it
        self.paused = False  # the transport is buffering: writes are not in the OS yet
        self._held = 0  # which transports hold bytes (_APP, _SOCKET): paused while any does
        self.unsettled: list[int] = []  # tickets written while paused
        self._flushed: asyncio.Future[None] | None = None
        self._lost = False
        self._lost_waiter: asyncio.Future[None] | None = None  # made only if someone waits
        self._reading = True
        self._fin_held = False  # over TLS: the peer's FIN waits for what TLS keeps
        self.secured = False  # the transport is TLS (its handshake is done)
        self.raw: asyncio.Transport | None = None  # TLS's: the socket's transport under it
        #: While not ``None``, what arrives is kept here (TLS reads on from its
        #: handshake before start_tls returns to us); ``b''`` is the EOF.
        self._early: list[bytes] | None = None

    @property
    def current(self) -> bool:
        """This transport carries the client's connection (not one it replaced)."""
        return self._conn.epoch == self.epoch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Typed as a Transport: uvloop's transports quack alike but do not inherit.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=0)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != _socket.AF_UNIX:
            # asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP, not on all it accepts.
            configure_stream(sock, self._conn.options)
        client = self._client
        try:
            if client._tls_context is not None:
                client._begin_tls(self, transport)  # CONNECTED waits for the handshake
                return
            adopted = client._adopt(self, transport)
        except SocketError as exc:
            self.error = exc
            adopted = False
        if not adopted:
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early.append(bytes(data))
            return
        conn = self._conn
        # Cut at recvBuffer by the core, with no copy; the time only if a deadline needs it.
        run = conn.feed(data, asyncio.get_running_loop().time() if conn.clocked else None)
        if conn.closed:  # a framing error ended it
            self._ended()
        if run:
            self._dispatcher.kick()
        else:
            self._dispatched(run)

    def eof_received(self) -> bool:
        if self._early is not None:
            self._early.append(b"")
            return False  # a TLS transport: it closes itself either way
        conn = self._conn
        events = conn.receive_eof()
        if conn.closed:  # after our shutdown(), or a message cut short: the end
            self._ended()
            self._deliver(events)
            return False
        self._deliver(events)
        # Once every event up to the EOF has run (now, or when an async
        # callback finishes), the core closes; replies go out first.
        if self._dispatcher.core.busy:
            # Idle may be reached inside a task draining an async callback,
            # which must not start the next callbacks inline: the loop does, next.
            self._dispatcher.core.on_idle = self._eof_dispatched_soon
        else:
            self._eof_dispatched()
        # Keep the transport: we may still write.  (TLS's closes itself on EOF
        # whatever we say, and a True would only be logged as having no effect.)
        return not self.secured

    def socket_eof(self) -> None:
        """Over TLS: the peer's FIN, which TLS does not see (see _asyncio_tls).
        What TLS has decrypted comes first: all of it, unless we paused TLS's
        reading, which then keeps some; the EOF waits until it has given it."""
        if self._reading:
            self.eof_received()
        else:
            self._fin_held = True

    def _held_eof(self) -> None:
        """From the loop, after TLS's own resume: the EOF, if nothing is held now."""
        if self._fin_held and self._reading:
            self._fin_held = False
            self.eof_received()

    def _eof_dispatched_soon(self) -> None:
        asyncio.get_running_loop().call_soon(self._eof_dispatched)

    def _eof_dispatched(self) -> None:
        if not self.current:
            return  # the client has connected again meanwhile
        conn = self._conn
        events = conn.eof_dispatched()
        if conn.closed:
            self._ended()
        self._deliver(events)

    def take_early(self) -> list[bytes]:
        """What arrived before TLS took over the transport (kept from now on: TLS's)."""
        early = self._early or []
        self._early = []
        return [data for data in early if data]

    def replay(self) -> None:
        """From the loop, once adopted: what arrived meanwhile, in order."""
        early, self._early = self._early, None
        for data in early or ():
            if data:
                self.data_received(data)
            else:
                self.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return  # reported already (see TcpClient.connect)
        if self._early is not None and self.current:
            self.replay()
        if self._conn.current(self.epoch):
            events = self._conn.connection_lost(exc)
            self._ended()
            self._deliver(events)
        else:
            self._ended()
        self._resume_writers()
        self._lost = True
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)

    async def wait_lost(self) -> None:
        """Wait for ``connection_lost``: the socket is closed and the end reported."""
        if not self._lost:
            if self._lost_waiter is None:
                self._lost_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._lost_waiter)

    def _ended(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if self.secured and self._conn.ends_in_order:
                close_notify(self, transport)  # e.g. the peer's EOF, our replies gone
            else:
                transport.abort()
        if self.current:
            self._client._disarm()
            self._dispatcher.retire()  # its stand-in task ends once the last events ran
            self._client._over()
        self._client._unregister()

    def _deliver(self, events: list[Event]) -> None:
        if events:
            self._dispatched(self._dispatcher.push(events))

    def _dispatched(self, run: bool) -> None:
        """After a push: drain it here, or hold the peer while a task is busy."""
        dispatcher = self._dispatcher
        if run:
            dispatcher.kick()
        elif self._reading and dispatcher.core.busy:
            # A task is still running an async callback: let the peer wait,
            # rather than queueing its data without bound.
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                self._reading = False
                dispatcher.core.on_idle = self._read_again

    def _read_again(self) -> None:
        self._reading = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
            if self._fin_held:  # TLS resumes from the loop: it gives what it kept first
                asyncio.get_running_loop().call_soon(self._held_eof)

    # -- flow control ------------------------------------------------------------

    def pause_writing(self) -> None:
        self._held |= _APP
        self.paused = True

    def resume_writing(self) -> None:
        self._held &= ~_APP
        if not self._held:
            self._flushed_all()

    def socket_paused(self) -> None:
        """Over TLS: the socket's transport holds bytes TLS gave it (see _asyncio_tls)."""
        self._held |= _SOCKET
        self.paused = True

    def socket_resumed(self) -> None:
        self._held &= ~_SOCKET
        if not self._held:
            self._flushed_all()

    def _flushed_all(self) -> None:
        """No transport holds our bytes: what was written while held is in the OS."""
        self.paused = False
        tickets, self.unsettled = self.unsettled, []
        transport = self.transport
        # Only a flush counts: bytes a closing transport dropped fail with the connection.
        if tickets and self.current and transport is not None and not transport.is_closing():
            conn = self._conn
            events: list[Event] = []
            for ticket in tickets:
                events += conn.sent(ticket)
            if conn.closed:  # the last reply after the peer's EOF
                self._ended()
            self._deliver(events)
        self._resume_writers()

    def _resume_writers(self) -> None:
        flushed, self._flushed = self._flushed, None
        if flushed is not None and not flushed.done():
            flushed.set_result(None)

    async def settled(self) -> None:
        """Wait until the transport flushed what was written, or the connection is lost."""
        transport = self.transport
        if transport is None or transport.is_closing():
            await self.wait_lost()
            return
        if self._flushed is None:
            self._flushed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flushed)  # a cancelled send leaves its bytes settling


class TcpClient(ClientFacade[_socket.socket], AsyncObject, AsyncioTls):
    """A TCP connection: to a server (``connect``), adopted, or a server's side of one."""

    _socket_type = _socket.socket
    _server: TcpServer | None

    def _init(self, options: ConnectionOptions, server: TcpServer | None) -> None:
        self._server = server
        parent = server._dispatcher if server is not None else None
        self._dispatcher = Host(self._registry, parent, last=self._stream_ends())
        self._conn = Connection(self, options, self._dispatcher.core)
        self._proto: _Stream | None = None
        self._adoptee: _socket.socket | None = None
        #: The loop's call_at handle for the core's next deadline, and when it is.
        self._alarm: asyncio.TimerHandle | None = None
        self._redialing: asyncio.Task[None] | None = None  # waiting to dial again
        self._redialed = 0  # the connection (epoch) whose end the core was told of
        self._shaking: _Stream | None = None  # its TLS handshake is under way

    def _given(self, socket: _socket.socket) -> None:
        self._adoptee = socket  # adopted on entering ``async with``: it needs the loop

    @staticmethod
    def _addresses(transport: asyncio.BaseTransport) -> tuple[Address, Address]:
        try:
            host = normalize_sockaddr(transport.get_extra_info("sockname"))
            remote = normalize_sockaddr(transport.get_extra_info("peername"))
        except (OSError, TypeError) as exc:  # the peer left first: no address to read
            raise translate_os_error(OsContext.ADOPT, exc) from exc
        return host, remote

    def _adopt(
        self, proto: _Stream, transport: asyncio.Transport, tls: TlsInfo | None = None
    ) -> bool:
        """The transport is up (and secured by *tls*): CONNECTED is queued
        before any data can arrive.

        It waits there for whoever made the connection (or for the first
        data, which then delivers it first), so nothing can overtake it.
        ``False``: the server refused it (it is stopping): no event at all.
        """
        conn = self._conn
        host, remote = self._addresses(transport) if tls is None else (conn.host, conn.remote)
        assert host is not None and remote is not None
        server = self._server
        if server is not None and not server._model.accept(remote, self):
            return False
        now = asyncio.get_running_loop().time() if conn.clocked else None
        if tls is None:
            events = conn.connection_made(host, remote, attempt=proto.attempt, now=now)
        else:  # 1006 if closed meanwhile
            events = conn.handshake_done(tls, attempt=proto.attempt, now=now)
        proto.epoch = conn.epoch
        self._proto = proto
        if self._redial is not None:
            self._redial.connected(asyncio.get_running_loop().time())
        self._arm()
        if self._dispatcher.push(events):
            if server is not None and tls is None:
                self._dispatcher.kick()  # nobody awaits an accepted connection
            else:
                self._dispatcher.core.release()  # connect() or the first data drains it
        return True

    async def _enter(self) -> None:
        sock, self._adoptee = self._adoptee, None
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        proto = _Stream(self)
        try:
            await loop.connect_accepted_socket(lambda: proto, sock)
        except BaseException:
            sock.close()
            raise
        if proto.error is not None:
            raise proto.error
        await self._drain_connected()

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
        loop = running_loop(self)
        attempt = self._conn.start_connect()
        proto: _Stream | None = None

        def made() -> _Stream:
            nonlocal proto
            proto = _Stream(self, attempt)
            return proto

        try:
            await asyncio.wait_for(loop.create_connection(made, host, port), seconds)
        except BaseException as exc:
            if proto is not None and proto.transport is not None and proto.error is None:
                # Cancelled after CONNECTED: the loop closes the transport, but
                # uvloop then never calls connection_lost, so report it here.
                proto.transport.abort()
                proto.connection_lost(None)
                raise
            if isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, TimeoutError):
                exc = TimeoutError("connect timed out")  # Python 3.10's asyncio has its own
            # Back to IDLE, also when cancelled.
            raise_failure(self._conn.connect_failed(exc, attempt=attempt), exc)
        assert proto is not None
        if proto.error is not None:  # closed while connecting
            raise proto.error
        if hostname is not None:
            await self._secure(proto, hostname)
        await self._drain_connected()

    def _arm(self) -> None:
        """Be called back at the core's next deadline (if sooner than armed)."""
        if not self._conn.clocked:
            return
        deadline = self._conn.timer()
        alarm = self._alarm
        if deadline is None or (alarm is not None and alarm.when() <= deadline):
            return
        if alarm is not None:
            alarm.cancel()
        self._alarm = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _over(self) -> None:
        """The connection ended: tell the core once; dial again if it says so."""
        redial, conn = self._redial, self._conn
        if redial is None or self._redialed == conn.epoch:
            return
        self._redialed = conn.epoch
        loop = asyncio.get_running_loop()
        notices = redial.lost(loop.time(), random.random(), conn.ended_by, conn.asked)
        # After the DISCONNECT, which our caller is about to deliver.
        loop.call_soon(self._dispatcher.core.publish, notices)
        if redial.timer() is not None and self._redialing is None:
            self._redialing = loop.create_task(self._redial_loop(redial))
            self._dispatcher._track(self._redialing)

    async def _redial_loop(self, redial: Redialer) -> None:
        loop = asyncio.get_running_loop()

        def sleep_until(deadline: float) -> Awaitable[None]:
            return asyncio.sleep(max(0.0, deadline - loop.time()))

        try:
            await redial_loop(self, redial, loop.time, sleep_until)
        finally:
            self._redialing = None

    def _disarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def _on_timer(self) -> None:
        """From the loop: what the core says is due (a timeout closes)."""
        self._alarm = None
        conn, proto = self._conn, self._proto
        events = conn.handle_timer(asyncio.get_running_loop().time())
        if proto is None:
            return
        if conn.closed:
            proto._ended()
        else:
            self._arm()  # reads only moved the deadline: wake again at the new one
        proto._deliver(events)

    async def _drain_connected(self) -> None:
        if self._dispatcher.core.claim():
            await self._dispatcher.drain()
        else:
            await self._dispatcher.wait_done(self._dispatcher.core.pushed)

    def _unregister(self) -> None:
        if self._server is not None and self._conn.closed:
            self._server._client_gone(self)

    async def send(self, data: Data) -> None:
        """Send *data*; returns once the OS has it and SENDED (or SENDFAIL) has run.

        Not connected: 1001.  A write error is not raised: SENDFAIL reports it.
        """
        rest = self._send_now(data)
        if rest is not None:
            await rest

    def _send_now(self, data: Data, *, share: bool = False) -> Coroutine[Any, Any, None] | None:
        """``send``'s first step, with no coroutine: ``None`` if that was all
        (the transport took it and nobody waits for its SENDED), else the rest.

        A broadcast's *share* does not wait for a transport that holds bytes
        (a peer not reading): the transport settles it, and ``max_pending``
        bounds what it may hold.
        """
        conn = self._conn
        now = asyncio.get_running_loop().time() if conn.clocked else None
        ticket, payload = conn.send(data, now)
        proto = self._proto
        assert proto is not None
        if conn.sooner:  # this send's deadline comes before the armed one
            self._arm()
        core = self._dispatcher.core
        pushed = core.pushed
        if ticket == OVERFLOW:  # a slow consumer: the core closed it
            ended = self._dispatcher.push(conn.overflowed(data))
            proto._ended()
            return self._send_rest(proto, ended, pushed)  # in a task: drain, never kick()
        transport = proto.transport
        assert transport is not None
        run: bool | None = None  # None: the transport, not we, settles it
        # A transport that is closing broke, and connection_lost is on its way
        # (a write now would be dropped without a word): that fails this send.
        if not transport.is_closing():
            transport.write(payload)
            if proto.paused:  # this write may have paused it: it holds bytes
                proto.unsettled.append(ticket)
            else:
                run = conn.settle(ticket)  # the OS has it all
                if conn.closed:  # the last reply after the peer's EOF
                    proto._ended()
                if not run and not core.pending_since(pushed):
                    return None
        if run is None and share:  # the transport settles it, or connection_lost fails it
            return None
        return self._send_rest(proto, run, pushed)

    async def _send_rest(self, proto: _Stream, run: bool | None, pushed: int) -> None:
        dispatcher = self._dispatcher
        if run:
            await dispatcher.drain()
            return
        if run is None:
            await proto.settled()  # the transport, not we, settles it
        if dispatcher.core.pending_since(pushed):
            await dispatcher.wait_done(dispatcher.core.pushed)

    async def shutdown(self) -> None:
        """Close our sending side once the sends accepted so far are written.

        The peer sees EOF (the transport sends it after what it still
        buffers); ``send`` then raises 1001; we keep receiving until the peer
        closes, then DISCONNECT.  Not connected: 1001.  Idempotent.
        """
        conn = self._conn
        events = conn.shutdown()
        proto = self._proto
        transport = proto.transport if proto is not None else None
        if conn.write_closed and transport is not None and not transport.is_closing():
            # TLS has no half-close of its own (its close_notify ends it all): a FIN.
            (proto.raw if proto is not None and proto.raw is not None else transport).write_eof()
        if conn.closed and proto is not None:  # after the peer's EOF (half open)
            proto._ended()
        await self._dispatcher.emit(events)

    async def close(self, abort: bool = False) -> None:
        """Close the connection; DISCONNECT has run when this returns (idempotent).

        Bytes still in the transport's buffer are dropped and their sends
        fail: a peer that does not read must not be able to hang ``close()``.
        ``abort=True`` resets it: the peer sees an RST.
        """
        live = self._conn.live
        if self._redial is not None:
            self._redial.stop()
        if self._redialing is not None and self._redialing is not asyncio.current_task():
            self._redialing.cancel()
        events = self._conn.close(abort=abort)
        self._dispatcher.retire()
        self._disarm()
        self._handshake_stopped()  # the handshake fails, and connect() raises 1006
        proto = self._proto
        if proto is not None and proto.transport is not None:
            transport = proto.transport
            sock = transport.get_extra_info("socket")
            if abort and live and sock is not None:
                linger_zero(sock)
            if proto.secured and live and self._conn.ends_in_order:
                close_notify(proto, transport)
            else:
                transport.abort()
        self._unregister()
        dispatcher = self._dispatcher
        if dispatcher.push(events):
            await dispatcher.drain()
        if proto is not None:
            await proto.wait_lost()  # the socket is closed, and DISCONNECT pushed
        dispatcher.core.end_streams()  # (a redialing client's go on until now)
        await dispatcher.wait_done(dispatcher.core.pushed)
        if not inside_callback():
            await dispatcher.reap()

    async def _finish(self) -> None:
        await self.close()


class TcpServer(AsyncServerOps, AsyncObject):
    """A TCP server; ``async with`` starts it and stops it."""

    _model: ServerModel[TcpClient]

    def _init(self) -> None:
        self._dispatcher = Host(self._registry, last=(Stopped,))
        self._server: asyncio.Server | None = None
        self._all_gone: asyncio.Future[None] | None = None
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
        loop = running_loop(self)
        address = self._model.start()
        sock = _socket.socket(family_of(address[0]), _socket.SOCK_STREAM, _socket.IPPROTO_TCP)
        server: asyncio.Server | None = None
        try:
            prepare_listener(sock, self._model.v6only)
            sock.bind(address)
            sock.setblocking(False)
            # Made without serving, it never suspends: a cancellation can only
            # land once we hold the server, which then closes its socket.
            server = await loop.create_server(
                lambda: _Stream(TcpClient(_server=self)),
                sock=sock,
                backlog=self._model.backlog,
                start_serving=False,
            )
            await server.start_serving()
            self._server = server
        except BaseException as exc:
            if server is not None:
                server.close()
            else:
                sock.close()
            raise_failure(self._model.start_failed(exc), exc)
        events = self._model.listening(normalize_sockaddr(sock.getsockname()))
        await self._dispatcher.emit(events)

    def _client_gone(self, client: TcpClient) -> None:
        if client.remote is not None:
            self._model.remove(client.remote, client)
        gone = self._all_gone
        if not self._model.connected and gone is not None and not gone.done():
            gone.set_result(None)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, close every client (DISCONNECT each), then STOPED (idempotent).

        With *grace* (seconds) the clients keep working until they close or
        the period ends; then the rest are closed.
        """
        if self._model.stop(grace, asyncio.get_running_loop().time()) is None:
            return
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client in list(self._handshakes):  # no CONNECTED yet: closed with no event
            client._conn.close()
            client._handshake_stopped()
        # Once begun, stopping finishes even if we are cancelled: no half-stopped server.
        # The callback we are in, if any: STOPED queues behind it.  (Taken now:
        # what a task drains changes once that callback suspends.)
        inside = innermost_callback()
        await cleanup(self._stopping(server, inside), self._dispatcher)

    async def _stopping(self, server: asyncio.Server | None, inside: Dispatcher | None) -> None:
        model, loop = self._model, asyncio.get_running_loop()
        # Those accepted while stopping too; with a grace period, once it is over.
        while not (clients := model.handle_timer(loop.time())) and model.connected:
            deadline = model.timer()
            assert deadline is not None  # clients are connected: the period runs
            self._all_gone = loop.create_future()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._all_gone), deadline - loop.time())
        for client in clients:
            await client.close()
        if self._model.connected:
            self._all_gone = asyncio.get_running_loop().create_future()
            await self._all_gone
        if server is not None:
            await server.wait_closed()
        events = self._model.stopped()
        # Inside a callback, STOPED goes after what is queued there.
        await self._dispatcher.finish(self._dispatcher.core.push_behind(inside, events))
        if inside is None:
            await self._dispatcher.reap()

    async def _broadcast(
        self, targets: list[TcpClient], data: Data, errors: list[SocketError]
    ) -> None:
        # Each share's first step runs here, with no coroutine: one the
        # transport takes at once (the usual case) costs no task and no trip
        # round the loop; only one that must wait goes on in a task of its own.
        waiting: list[asyncio.Future[None]] = []
        context: contextvars.Context | None = None
        try:
            for client in targets:
                try:
                    rest = client._send_now(data, share=True)
                except SocketError as exc:
                    self._send_failed(None, exc, errors)
                    continue
                if rest is None:
                    continue
                try:  # its first step here too: plain SENDED callbacks need no task
                    yielded = rest.send(None)
                except StopIteration:
                    continue
                if context is None:
                    context = contextvars.copy_context()
                    if inside_callback():  # from a callback: the rest must not wait for events
                        context.run(mark_inside)
                waiting.append(context.run(asyncio.ensure_future, resume(rest, yielded)))
            if waiting:
                await asyncio.gather(*waiting)
        finally:
            for task in waiting:
                task.cancel()  # a no-op on those done: cancelled, the broadcast ends whole

    async def _finish(self) -> None:
        await self.stop()


#: Most datagrams read per wake-up before the loop runs others (fairness).
_DATAGRAMS_PER_WAKE: Final = 64
_MSG_TRUNC: Final = int(_socket.MSG_TRUNC)  # an int: IntFlag's & is slow per datagram


class CastReceiver(ReceiverFacade, AsyncObject):
    """Receives UDP multicast datagrams; ``async with`` starts and stops it.

    It reads with ``recvmsg`` when the loop says the socket is readable (not
    through a datagram transport, which drops the ancillary data that says
    where each datagram arrived).
    """

    def _init(self) -> None:
        self._dispatcher = Host(self._registry, last=(Stopped,))
        self._sock: _socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Reads per wake-up: as many as the last wake-up found, doubling while
        # a batch finds more.  A read that finds none costs an exception; a
        # wake-up of a fast loop (uvloop) costs less, of a slow one more.
        self._batch = 1

    def events(self) -> EventStream:
        """``async for event in receiver.events()``: as ``async for event in receiver``."""
        return self.__aiter__()

    async def _enter(self) -> None:
        await self.start()

    async def start(self) -> None:
        """Bind, join the groups, listen; STARTED has run when this returns."""
        loop = running_loop(self)
        address = self._model.start()
        family = family_of(address[0])
        sock = _socket.socket(family, _socket.SOCK_DGRAM)
        try:
            prepare_receiver(sock, family, self._model)
            sock.bind(address)
            sock.setblocking(False)
            apply_changes(sock, self._model.joins())
            loop.add_reader(sock.fileno(), self._readable, sock)
        except BaseException as exc:
            sock.close()
            raise_failure(self._model.start_failed(exc), exc)
        events = self._model.listening(normalize_sockaddr(sock.getsockname()))
        self._sock, self._loop = sock, loop
        await self._dispatcher.emit(events)

    def _readable(self, sock: _socket.socket) -> None:
        model, dispatcher = self._model, self._dispatcher
        core = dispatcher.core
        batch = self._batch
        for count in range(batch):
            try:
                data, ancdata, flags, address = sock.recvmsg(
                    model.recv_buffer, model.ancillary(core)
                )
            except OSError:  # none left (or an ICMP error about some earlier datagram)
                self._batch = count or 1
                return
            if model.feed(data, address, core, truncated=bool(flags & _MSG_TRUNC), ancdata=ancdata):
                dispatcher.kick()
        self._batch = min(batch * 2, _DATAGRAMS_PER_WAKE)

    async def stop(self) -> None:
        """Leave the groups and stop listening; STOPED has run when this returns."""
        drops = self._model.stop()
        sock, loop = self._sock, self._loop
        self._sock = self._loop = None
        if drops is None or sock is None or loop is None:
            return
        with contextlib.suppress(OSError):
            apply_changes(sock, drops)
        loop.remove_reader(sock.fileno())
        sock.close()
        self._dispatcher.retire()
        await cleanup(self._stopping(), self._dispatcher)

    async def _stopping(self) -> None:
        await self._dispatcher.emit(self._model.stopped())
        if not inside_callback():
            await self._dispatcher.reap()

    async def _finish(self) -> None:
        await self.stop()


class CastSender(SenderFacade, AsyncObject):
    """Sends UDP multicast datagrams; SENDED/SENDFAIL for each."""

    def _init(self) -> None:
        self._dispatcher = Host(self._registry)
        self._sockets: dict[int, _socket.socket] = {}

    def _socket_for(self, family: int) -> _socket.socket:
        sock = self._sockets.get(family)
        if sock is not None:
            return sock
        sock = _socket.socket(family, _socket.SOCK_DGRAM)
        try:
            configure_sender(sock, family, self._model)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sockets[family] = sock
        return sock

    async def send(self, remote: Address, data: Data) -> None:
        """Send *data* to ``(group, port)``; SENDED or SENDFAIL has run when this returns."""
        ticket, payload, target = self._model.send(remote, data)
        try:
            sock = self._socket_for(family_of(target[0]))
            count = await sendto(sock, payload, target)
        except BaseException as exc:
            await self._dispatcher.emit(self._model.send_failed(ticket, exc))
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
        if not inside_callback():
            await self._dispatcher.reap()

    async def _finish(self) -> None:
        await self.close()
