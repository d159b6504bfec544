"""The TLS rows' certificates: one throwaway CA per scenario run, made by
trustme in the parent and written to a temporary folder that both sides'
processes load their contexts from (the same contexts for jfsocket and for
the raw code: only the code around them differs)."""

from __future__ import annotations

import ssl
from pathlib import Path

from ..certs import Certs
from .peers import Job
from .plumbing import LOOPBACK

__all__ = ["HOSTNAME", "client_context", "server_context", "write"]

#: The name the client sides check the certificate against.
HOSTNAME = LOOPBACK


def write(folder: str) -> str:
    """A CA and a server certificate for 127.0.0.1 in *folder*; returns it."""
    Certs().write(Path(folder))
    return folder


def server_context(job: Job) -> ssl.SSLContext | None:
    """The server side's context, or ``None`` for a plaintext row."""
    if not job.certs:
        return None
    folder = Path(job.certs)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def client_context(job: Job) -> ssl.SSLContext | None:
    """The client side's verifying context, or ``None`` for a plaintext row."""
    if not job.certs:
        return None
    return ssl.create_default_context(cafile=Path(job.certs) / "ca.pem")
