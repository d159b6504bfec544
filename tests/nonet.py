"""Switch the network off for a test: the core's and the memory binding's tests
run so, and a mistake that reached for a real socket or a name lookup fails."""

from __future__ import annotations

import socket

import pytest

__all__ = ["NetworkForbiddenError", "forbid_network"]

#: What opens a socket or looks a name up.
_NETWORK_CALLS = (
    "socket",
    "create_connection",
    "create_server",
    "socketpair",
    "fromfd",
    "getaddrinfo",
    "gethostbyname",
)


class NetworkForbiddenError(AssertionError):
    """Raised when a test without network tries to open a socket or look a name up."""


def forbid_network(monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    """Make any socket creation or name lookup fail with *why* (until
    *monkeypatch* undoes it)."""

    def forbidden(*args: object, **kwargs: object) -> object:
        raise NetworkForbiddenError(why)

    for name in _NETWORK_CALLS:
        monkeypatch.setattr(socket, name, forbidden)
