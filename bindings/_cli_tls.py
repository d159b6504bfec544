"""The command line's TLS options: the contexts ``server --tls-cert`` and
``client --tls`` build, with the user's files, and nothing more permissive
than they asked for (``--insecure`` says so on stderr)."""

from __future__ import annotations

import argparse
import ssl
import sys

__all__ = ["add_client_options", "add_server_options", "client_context", "server_context"]


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert FILE --tls-key FILE``."""
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve TLS with this certificate chain (PEM; its key too, unless --tls-key)",
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """``--tls [--cafile FILE] [--insecure]``."""
    parser.add_argument(
        "--tls",
        action="store_true",
        help="connect with TLS, verifying the server's certificate against the system's "
        "CAs (or --cafile) and the name or address dialed",
    )
    parser.add_argument("--cafile", metavar="FILE", help="with --tls: trust this CA (PEM)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="with --tls: do not verify the server's certificate (says so on stderr)",
    )


def server_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's context, or ``None`` for plaintext; a bad combination or file
    is a usage error naming the option."""
    if args.tls_cert is None:
        if args.tls_key is not None:
            args.usage_error("--tls-key goes with --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        what = "--tls-cert" if args.tls_key is None else "--tls-cert/--tls-key"
        args.usage_error(f"argument {what}: cannot load {args.tls_cert!r}: {exc}")
    return context


def client_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client's context, or ``None`` for plaintext (see :func:`server_context`)."""
    if not args.tls:
        for option, value in (("--cafile", args.cafile), ("--insecure", args.insecure)):
            if value:
                args.usage_error(f"{option} goes with --tls")
        return None
    if args.insecure and args.cafile is not None:
        args.usage_error("--insecure verifies nothing: --cafile would not be used")
    context = ssl.create_default_context()
    if args.cafile is not None:
        try:
            context.load_verify_locations(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            args.usage_error(f"argument --cafile: cannot load {args.cafile!r}: {exc}")
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        print(
            "jfsocket: warning: --insecure: the server's certificate is not verified, "
            "so anyone between us can pretend to be it",
            file=sys.stderr,
            flush=True,
        )
    return context
