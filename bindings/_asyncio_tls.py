"""The asyncio binding's TLS: ``loop.start_tls`` on a connected transport.

Both sides connect (or accept) in plaintext, then upgrade: so the core's
HANDSHAKING state and its deadline, not asyncio's, decide when a handshake
has failed, and a server's failed handshakes are logged by the core (with
the remote and the reason) rather than by the loop's exception handler.
It runs the same on uvloop, which has ``start_tls`` too.
:class:`AsyncioTls` is the mixin of the asyncio ``TcpClient`` that does it.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from jfsocket.core import Address, Connection, SocketError, TlsInfo

from ._asyncio_host import _Resumed  # finishes a coroutine whose first step ran here
from ._facade import raise_failure
from ._tls import CLOSE_NOTIFY_GRACE, tls_info

if TYPE_CHECKING:
    from ._asyncio_host import Host
    from .asyncio import _Stream

__all__ = ["AsyncioTls", "close_notify", "secured_info", "start_tls"]

#: asyncio's own handshake deadline is set past the core's, which comes first.
_LATER: float = 1.0


async def start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    hostname: str | None,
    handshake_timeout: float | None,
    early: Callable[[], list[bytes]],
) -> asyncio.Transport:
    """Upgrade *transport*; the TLS transport once the handshake is done.

    Its reading was paused when it connected, so that the peer's first
    flight waits in the kernel for TLS; but uvloop may have read some
    already, which *protocol* kept: *early* hands it over, and it goes to
    TLS's protocol as soon as that one is in place, before it reads a byte.
    """
    loop = asyncio.get_running_loop()
    extra: dict[str, Any] = {}
    if sys.version_info >= (3, 11):
        # asyncio's own TLS shutdown (after the peer's EOF) waits this long at
        # most for the peer's close_notify; our close() does not wait for it.
        extra["ssl_shutdown_timeout"] = CLOSE_NOTIFY_GRACE
    upgrade = loop.start_tls(
        transport,
        protocol,
        context,
        server_side=server_side,
        server_hostname=hostname,
        ssl_handshake_timeout=None if handshake_timeout is None else handshake_timeout + _LATER,
        **extra,
    )
    # Its first step puts TLS's protocol on the transport (and schedules the
    # rest): the bytes read before go to that protocol now, in order.
    secured: asyncio.BaseTransport | None
    try:
        first = upgrade.send(None)
    except StopIteration as done:
        secured = done.value
    else:
        _feed(transport.get_protocol(), early())
        secured = cast("asyncio.BaseTransport | None", await _Resumed(upgrade, first))
    # uvloop may hand back a transport that was aborted under the handshake.
    if secured is None or secured.is_closing() or secured.get_extra_info("ssl_object") is None:
        raise ConnectionAbortedError("the connection closed during the TLS handshake")
    # Paused while bytes wait in TLS's own buffer for the socket's; the
    # socket's transport (high water 0) holding some is the watch's to tell.
    tls = cast(asyncio.Transport, secured)  # uvloop's quack alike, and do not inherit
    tls.set_write_buffer_limits(high=1, low=0)
    return tls


class _Watch(asyncio.BufferedProtocol):
    """Between the socket's transport and TLS's protocol: passes the bytes on,
    and tells our stream when the socket's transport holds bytes back and
    when it has flushed them, so that SENDED still means "in the OS" (TLS's
    transport only tells about its own buffer).

    The peer's FIN goes to our stream, not to TLS: asyncio's TLS would end
    the session at it (and OpenSSL 3 take it for a fatal error, as no
    close_notify came), where a peer that half-closed still reads our
    replies, as on plaintext.  The socket's transport stays open for them."""

    __slots__ = ("_fin", "_inner", "_stream")

    def __init__(self, inner: Any, stream: _Stream) -> None:
        self._inner = inner
        self._stream = stream
        self._fin = False

    def get_buffer(self, sizehint: int) -> Any:
        return self._inner.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._inner.buffer_updated(nbytes)

    def eof_received(self) -> bool:
        if not self._fin:  # (a transport that reads again after it may say it twice)
            self._fin = True
            self._stream.socket_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()
        self._stream.socket_paused()

    def resume_writing(self) -> None:
        self._inner.resume_writing()  # TLS writes what it held: that may pause again
        if not _socket_holds(self._stream):
            self._stream.socket_resumed()


def close_notify(stream: _Stream, transport: asyncio.Transport) -> None:
    """Close TLS *transport*: its close_notify, then the socket's FIN, waiting
    neither for the peer's reply nor for a peer that stopped reading (then
    the connection is simply dropped, as on plaintext)."""
    raw = stream.raw
    if raw is None or transport.get_write_buffer_size() or raw.get_write_buffer_size():
        transport.abort()
        return
    transport.close()  # TLS writes its close_notify to the socket's transport now
    raw.close()  # and the socket closes once that is in the OS, not after a reply
    if raw.get_write_buffer_size():
        raw.abort()


def _socket_holds(stream: _Stream) -> bool:
    raw = stream.raw
    return raw is not None and raw.get_write_buffer_size() > 0


def _feed(protocol: asyncio.BaseProtocol, chunks: list[bytes]) -> None:
    """Hand *chunks* to *protocol* as if the transport had read them."""
    for data in chunks:
        if not isinstance(protocol, asyncio.Protocol):  # a buffered one (asyncio's, uvloop's)
            buffered = cast(asyncio.BufferedProtocol, protocol)
            view = memoryview(data)
            while view:
                buffer = memoryview(buffered.get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                buffered.buffer_updated(size)
                view = view[size:]
        else:
            protocol.data_received(data)


def secured_info(transport: asyncio.BaseTransport) -> TlsInfo:
    """What the handshake of TLS *transport* agreed on."""
    obj = transport.get_extra_info("ssl_object")
    assert obj is not None, "a TLS transport has its SSLObject"
    return tls_info(obj)


class AsyncioTls:
    """TLS for the asyncio ``TcpClient`` (its attributes, declared here)."""

    _conn: Connection
    _server: Any
    _tls_context: ssl.SSLContext | None
    _shaking: _Stream | None
    _alarm: asyncio.TimerHandle | None
    _dispatcher: Host

    if TYPE_CHECKING:

        @staticmethod
        def _addresses(transport: asyncio.BaseTransport) -> tuple[Address, Address]: ...
        def _adopt(
            self, proto: _Stream, transport: asyncio.Transport, tls: TlsInfo | None = None
        ) -> bool: ...
        def _disarm(self) -> None: ...
        def _unregister(self) -> None: ...
        async def _drain_connected(self) -> None: ...

    def _begin_tls(self, proto: _Stream, transport: asyncio.Transport) -> None:
        """The socket is connected: the handshake begins, under the core's deadline.
        A server's client runs it in a task; a client, in ``connect``."""
        host, remote = self._addresses(transport)
        server = self._server
        if server is not None and not server.isAlive:  # accepted as it stopped: no event
            transport.abort()
            return
        transport.pause_reading()  # the peer's first flight waits for start_tls
        proto._early = []
        loop = asyncio.get_running_loop()
        conn = self._conn
        conn.handshake_started(host, remote, attempt=proto.attempt, now=loop.time())
        self._shaking = proto
        deadline = conn.timer()
        if deadline is not None:
            self._alarm = loop.call_at(deadline, self._handshake_late)
        if self._server is not None:
            self._server._handshakes.add(self)
            self._dispatcher.spawn(self._serve_tls(proto))

    def _handshake_late(self) -> None:
        """From the loop at the handshake's deadline: the core decides; a late
        handshake is stopped (start_tls then fails, and reports it)."""
        self._alarm = None
        conn, proto = self._conn, self._shaking
        loop = asyncio.get_running_loop()
        conn.handle_timer(loop.time())
        if conn.handshaking:
            # Woken before the deadline (uvloop's timers round to milliseconds,
            # and may fire early): again at it, or asyncio's own, later
            # timeout would end the handshake with the wrong error.
            deadline = conn.timer()
            if deadline is not None:
                self._alarm = loop.call_at(deadline, self._handshake_late)
        elif proto is not None and proto.transport is not None:
            proto.transport.abort()

    async def _secure(self, proto: _Stream, hostname: str | None) -> None:
        """Run the TLS handshake of *proto*'s transport, then :meth:`_adopt`; a
        failure, a late handshake or a close raises the core's 1006."""
        raw = proto.transport
        context = self._tls_context
        assert raw is not None and context is not None
        conn = self._conn
        try:
            transport = await start_tls(
                raw,
                proto,
                context,
                server_side=self._server is not None,
                hostname=hostname,
                handshake_timeout=conn.options.handshake_timeout,
                early=proto.take_early,
            )
        except BaseException as exc:
            raw.abort()
            raise_failure(conn.handshake_failed(exc, attempt=proto.attempt), exc)
        finally:
            self._shaking = None
            self._disarm()
        raw.set_protocol(_Watch(raw.get_protocol(), proto))
        proto.raw, proto.transport, proto.secured = raw, transport, True
        try:
            adopted = self._adopt(proto, transport, secured_info(transport))
        except BaseException:
            transport.abort()
            conn.close()  # closed or late meanwhile: no event, out of the registry
            self._unregister()
            raise
        if not adopted:  # the server is stopping: closed with no event
            conn.close()
            transport.abort()
            raise SocketError(1006, ConnectionAbortedError("the server is stopping"))
        asyncio.get_running_loop().call_soon(proto.replay)

    async def _serve_tls(self, proto: _Stream) -> None:
        """A server's TLS client: the handshake (the core logs a failure), then
        as any accepted connection."""
        server = self._server
        assert server is not None
        try:
            await self._secure(proto, None)
        except SocketError:
            self._unregister()
            return
        finally:
            server._handshakes.discard(self)
        await self._drain_connected()

    def _handshake_stopped(self) -> None:
        """Abort the handshake under way (its task then ends)."""
        shaking = self._shaking
        if shaking is not None and shaking.transport is not None:
            shaking.transport.abort()
