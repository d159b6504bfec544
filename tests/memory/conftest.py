"""The memory binding's tests run with the network switched off, as the core's do:
a mistake that reached for a real socket or a name lookup fails the test."""

from __future__ import annotations

import socket

import pytest


class NetworkForbiddenError(AssertionError):
    """Raised when a memory binding test tries to open a socket or look a name up."""


def _forbidden(*args: object, **kwargs: object) -> object:
    raise NetworkForbiddenError("the memory binding opens no socket and looks up no name")


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any socket creation or name lookup fail (until *monkeypatch* undoes it)."""
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


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket creation or name lookup in a memory test fails the test."""
    forbid_network(monkeypatch)
