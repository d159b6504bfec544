"""The core suite runs with the network switched off."""

from __future__ import annotations

import socket

import pytest


class NetworkForbiddenError(AssertionError):
    """Raised when core tests try to open a socket."""


def _forbidden(*args: object, **kwargs: object) -> object:
    raise NetworkForbiddenError("the core is sans-I/O: its tests must not create sockets")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket creation or name lookup in a core test fails the test."""
    for name in (
        "socket",
        "create_connection",
        "create_server",
        "socketpair",
        "fromfd",
        "getaddrinfo",
        "gethostbyname",
    ):
        monkeypatch.setattr(socket, name, _forbidden)
