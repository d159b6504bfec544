"""Certificates for the TLS tests, made by trustme: nothing is committed.

One throwaway CA per test session, one server certificate for 127.0.0.1 and
::1 (the only addresses the tests use), and the contexts both sides build
from them the way a user would (``ssl.create_default_context``).
"""

from __future__ import annotations

import pathlib
import ssl

import trustme

__all__ = ["Certs"]


class Certs:
    """A CA, a server certificate signed by it, and a CA that signed nothing here."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "::1")
        self.other_ca = trustme.CA()

    def server_context(self) -> ssl.SSLContext:
        """A server's context with the certificate loaded."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        return context

    def client_context(self, *, trusted: bool = True) -> ssl.SSLContext:
        """A verifying client's context that trusts our CA (or, untrusted, another one)."""
        context = ssl.create_default_context()
        (self.ca if trusted else self.other_ca).configure_trust(context)
        return context

    def write(self, folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
        """The CA certificate, the server certificate chain and its key, as PEM files."""
        ca = folder / "ca.pem"
        cert = folder / "cert.pem"
        key = folder / "key.pem"
        self.ca.cert_pem.write_to_path(str(ca))
        self.cert.cert_chain_pems[0].write_to_path(str(cert))
        for blob in self.cert.cert_chain_pems[1:]:
            blob.write_to_path(str(cert), append=True)
        self.cert.private_key_pem.write_to_path(str(key))
        return ca, cert, key
