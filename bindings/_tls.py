"""TLS for the bindings: what all three decide the same way.

Each binding runs its runtime's TLS (the threaded one a non-blocking
:class:`ssl.SSLSocket` shared by its threads; trio's ``SSLStream``; asyncio's
``start_tls``); the core decides the rest (the HANDSHAKING state, its
deadline, what a failure means).  Here are the checks of the user's
arguments, the name a client checks the certificate against, the
:class:`~jfsocket.core.TlsInfo` made from a finished handshake, and which
errors are a peer that closed without saying so.
"""

from __future__ import annotations

import ssl
from typing import Any, Final, Protocol

from jfsocket.core import TlsInfo

__all__ = [
    "CLOSE_NOTIFY_GRACE",
    "READ_SIZE",
    "Agreed",
    "check_context",
    "server_name",
    "tls_info",
]

#: Read at once over TLS: whole records (16 KiB each) and more, whatever
#: ``recvBuffer`` is (the core still cuts RECEIVED at ``recvBuffer``).
READ_SIZE: Final = 65536
#: Seconds an async ``close()`` lets TLS's close_notify take to go out (it is a
#: few bytes: only a peer that stopped reading makes it wait, and not for long).
CLOSE_NOTIFY_GRACE: Final = 1.0


class Agreed(Protocol):
    """What a finished handshake tells (an SSLObject, an SSLSocket, trio's SSLStream)."""

    def version(self) -> str | None: ...
    def cipher(self) -> tuple[str, str, int] | None: ...
    def getpeercert(self) -> dict[str, Any] | None: ...
    def selected_alpn_protocol(self) -> str | None: ...


def check_context(context: object, *, server: bool) -> ssl.SSLContext | None:
    """*context* (the ``ssl=`` argument) if it fits the side that uses it.

    Not an :class:`ssl.SSLContext`: ``TypeError``.  A client-only context on
    a server, or a server-only one on a client: ``ValueError``.  jfsocket
    never makes a context of its own: what to trust is the user's choice.
    """
    if context is None:
        return None
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext or None, not {type(context).__name__}")
    if server and (context.protocol == ssl.PROTOCOL_TLS_CLIENT or context.check_hostname):
        raise ValueError(
            "ssl of a TcpServer must be a server context, e.g. "
            "ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) with load_cert_chain()"
        )
    if not server and context.protocol == ssl.PROTOCOL_TLS_SERVER:
        raise ValueError(
            "ssl of a TcpClient must be a client context, e.g. ssl.create_default_context()"
        )
    return context


def server_name(ip: str, server_hostname: object, context: ssl.SSLContext | None) -> str | None:
    """The name the server's certificate is checked against: *server_hostname*,
    else the address dialed.  ``None`` on plaintext (where giving one is a
    ``ValueError``)."""
    if server_hostname is not None and not isinstance(server_hostname, str):
        raise TypeError(
            f"server_hostname must be a str or None, not {type(server_hostname).__name__}"
        )
    if context is None:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl=")
        return None
    if server_hostname == "":
        raise ValueError("server_hostname must not be empty")
    return ip if server_hostname is None else server_hostname


def tls_info(obj: Agreed) -> TlsInfo:
    """What the finished handshake of *obj* agreed on."""
    cipher = obj.cipher()
    return TlsInfo(
        version=obj.version(),
        cipher=cipher[0] if cipher is not None else None,
        # {} is what ssl gives for a certificate it did not verify: no facts.
        peer_certificate=obj.getpeercert() or None,
        alpn_protocol=obj.selected_alpn_protocol(),
    )
