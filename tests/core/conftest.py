"""The core suite runs with the network switched off."""

from __future__ import annotations

import pytest

from ..nonet import NetworkForbiddenError, forbid_network

__all__ = ["NetworkForbiddenError", "no_network"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket creation or name lookup in a core test fails the test."""
    forbid_network(monkeypatch, "the core is sans-I/O: its tests must not create sockets")
