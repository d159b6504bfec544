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
from typing import TYPE_CHECKING, Any

from jfsocket.core import Address, Connection, SocketError, TlsInfo

from ._facade import raise_failure
from ._tls import CLOSE_NOTIFY_GRACE, tls_info

if TYPE_CHECKING:
    from ._asyncio_host import Host
    from .asyncio import _Stream

__all__ = ["AsyncioTls", "secured_info", "start_tls"]

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
) -> asyncio.Transport:
    """Upgrade *transport* (its reading paused since it connected, so the
    peer's first flight waits in the kernel); the TLS transport once done."""
    loop = asyncio.get_running_loop()
    extra: dict[str, Any] = {}
    if sys.version_info >= (3, 11):
        # close() waits this long at most for the peer's close_notify.
        extra["ssl_shutdown_timeout"] = CLOSE_NOTIFY_GRACE
    secured = await loop.start_tls(
        transport,
        protocol,
        context,
        server_side=server_side,
        server_hostname=hostname,
        ssl_handshake_timeout=None if handshake_timeout is None else handshake_timeout + _LATER,
        **extra,
    )
    # uvloop may hand back a transport that was aborted under the handshake.
    if secured is None or secured.is_closing() or secured.get_extra_info("ssl_object") is None:
        raise ConnectionAbortedError("the connection closed during the TLS handshake")
    # Paused only while bytes wait in TLS's own buffer for the socket's: the
    # socket's transport (high water 0) pauses TLS as soon as the OS holds back.
    secured.set_write_buffer_limits(high=1, low=0)
    return secured


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
        conn.handle_timer(asyncio.get_running_loop().time())
        if proto is not None and proto.transport is not None and not conn.handshaking:
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
            )
        except BaseException as exc:
            raw.abort()
            raise_failure(conn.handshake_failed(exc, attempt=proto.attempt), exc)
        finally:
            self._shaking = None
            self._disarm()
        proto.transport, proto.secured = transport, True
        try:
            adopted = self._adopt(proto, transport, secured_info(transport))
        except BaseException:
            transport.abort()
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
