"""TLS as the core sees it: a record of what a handshake agreed on.

The core never imports :mod:`ssl`: the bindings run their runtime's TLS and
hand the core facts.  What the core decides about TLS lives in
:mod:`.connection` (the HANDSHAKING state and its deadline); this module
holds the frozen record ``TcpClient.tls`` returns (an attrs class, not
compiled, like the events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["TlsInfo"]


def _certificate(value: object) -> Mapping[str, Any] | None:
    """The peer certificate in dict form (``getpeercert()``), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"peer_certificate must be a mapping or None, not {type(value).__name__}")
    return dict(value)


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a str or None, not {type(value).__name__}")
    return value


@attrs.frozen(kw_only=True)
class TlsInfo:
    """What the TLS handshake of a connection agreed on."""

    #: The protocol version, e.g. ``'TLSv1.3'``.
    version: str | None = attrs.field(converter=_optional_str)
    #: The cipher suite's name, e.g. ``'TLS_AES_256_GCM_SHA384'``.
    cipher: str | None = attrs.field(converter=_optional_str)
    #: The peer's certificate in the dict form of ``SSLSocket.getpeercert()``
    #: (``None``: the peer sent none, or it was not verified).
    peer_certificate: Mapping[str, Any] | None = attrs.field(converter=_certificate, hash=False)
    #: The protocol ALPN chose (``None``: none was negotiated).
    alpn_protocol: str | None = attrs.field(converter=_optional_str)
