"""The trio binding's TLS handshake: ``trio.SSLStream`` under the core's deadline.

A client runs it inside ``connect``; a server's client in a task of the
server's nursery, so a silent peer never holds the accept loop.
:class:`TrioTls` is the mixin of the trio ``TcpClient`` that does both.
"""

from __future__ import annotations

import math
import ssl
from typing import TYPE_CHECKING, Any

import trio
from jfsocket.core import Connection, OsContext, SocketError, normalize_sockaddr, translate_os_error

from ._sockopts import configure_stream

__all__ = ["FinGuard", "PeerFinishedError", "TrioTls", "begin", "handshake"]


class PeerFinishedError(Exception):
    """The peer's FIN, under TLS whose handshake is done: its EOF (see :class:`FinGuard`)."""


class FinGuard(trio.abc.Stream):
    """The socket's stream as TLS sees it.  Once the handshake is done, the
    peer's FIN raises :class:`PeerFinishedError` instead of reaching TLS, where
    OpenSSL 3 would take it for a fatal error (no close_notify came), alert
    the peer and write no more: a peer that half-closed still gets our
    replies, as on plaintext.  ``SSLStream`` lets the exception through and
    stays usable."""

    __slots__ = ("armed", "inner")

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        self.armed = False  # the handshake is done: a FIN is the peer's EOF

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if not data and self.armed:
            raise PeerFinishedError
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


def begin(conn: Connection, transport: trio.SocketStream, *, attempt: int | None) -> None:
    """The socket is connected: the handshake begins now, for the core (so a
    ``close()`` from here on ends it).  The peer gone already: 1001."""
    sock = transport.socket
    try:
        host = normalize_sockaddr(sock.getsockname())
        remote = normalize_sockaddr(sock.getpeername())
    except OSError as exc:
        raise translate_os_error(OsContext.ADOPT, exc) from exc
    configure_stream(sock, conn.options)  # TCP_NODELAY: the handshake's flights go at once
    conn.handshake_started(host, remote, attempt=attempt, now=trio.current_time())


async def handshake(
    conn: Connection,
    transport: trio.SocketStream,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    hostname: str | None,
    attempt: int | None,
    scope: trio.CancelScope,
) -> trio.SSLStream[FinGuard]:
    """TLS over *transport*, whose handshake :func:`begin` began; the secured
    stream once it is done.

    *scope* is the caller's: ``close()`` cancels it, and it ends at the core's
    deadline.  A failure, a late handshake or a close raises the core's 1006
    (``err`` the ``ssl.SSLError``, or 1008); a cancellation goes on as itself,
    after the core heard of it.  An accepted connection's failure is logged.
    """
    guard = FinGuard(transport)
    secured = trio.SSLStream(guard, context, server_side=server_side, server_hostname=hostname)
    try:
        deadline = conn.timer()
        scope.deadline = math.inf if deadline is None else deadline
        with scope:
            if not conn.handshaking:  # closed before we got here
                raise ConnectionAbortedError("the TLS handshake was stopped")
            await secured.do_handshake()
        if scope.cancelled_caught:  # late (the core decides), or closed
            conn.handle_timer(trio.current_time())
            raise ConnectionAbortedError("the TLS handshake was stopped")
        guard.armed = True
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(secured)
        # trio reports TLS's errors as a broken stream: the user gets ssl's own.
        cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
        error = conn.handshake_failed(cause or exc, attempt=attempt)
        if isinstance(exc, (OSError, trio.BrokenResourceError)):
            raise error from cause
        raise
    return secured


class TrioTls:
    """TLS for the trio ``TcpClient`` (its attributes, declared here)."""

    _conn: Connection
    _server: Any
    _tls_context: ssl.SSLContext | None
    _handshaking: trio.CancelScope | None

    if TYPE_CHECKING:

        @property
        def remote(self) -> tuple[str, int] | None: ...
        def _adopt(
            self,
            stream: trio.SocketStream,
            attempt: int | None = None,
            secured: trio.SSLStream[FinGuard] | None = None,
        ) -> None: ...
        def _start_reader(self, nursery: trio.Nursery) -> None: ...

    def _begin_tls(self, stream: trio.SocketStream, attempt: int | None = None) -> None:
        """The handshake begins (see :func:`begin`); ``close()`` can end it from now."""
        begin(self._conn, stream, attempt=attempt)
        self._handshaking = trio.CancelScope()

    async def _secure(
        self, stream: trio.SocketStream, hostname: str | None, attempt: int | None
    ) -> trio.SSLStream[FinGuard]:
        """The TLS handshake on *stream* (a 1006 if it fails; see :func:`handshake`)."""
        context, scope = self._tls_context, self._handshaking
        assert context is not None and scope is not None
        try:
            return await handshake(
                self._conn,
                stream,
                context,
                server_side=self._server is not None,
                hostname=hostname,
                attempt=attempt,
                scope=scope,
            )
        finally:
            self._handshaking = None

    async def _serve_tls(self, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        """A server's TLS client, whose handshake began: the rest of it, then as
        any accepted connection."""
        server = self._server
        assert server is not None
        try:
            secured = await self._secure(stream, None, None)
        except SocketError:
            return  # the core logged why
        finally:
            server._handshakes.discard(self)
        if self.remote is None or not server._model.accept(self.remote, self):
            self._conn.close()  # stopping: no CONNECTED, so no event at all
            await trio.aclose_forcefully(secured)
            return
        try:
            self._adopt(stream, None, secured)
        except SocketError:  # closed meanwhile
            self._conn.close()
            server._client_gone(self)
            await trio.aclose_forcefully(secured)
            return
        self._start_reader(nursery)
