"""The memory binding's tests run with the network switched off, as the core's do:
a mistake that reached for a real socket or a name lookup fails the test."""

from __future__ import annotations

import pytest

from ..nonet import forbid_network

__all__ = ["MEMORY_OPENS_NOTHING", "no_network"]

#: Why a memory test (or a memory conformance scenario) may not touch the network.
MEMORY_OPENS_NOTHING = "the memory binding opens no socket and looks up no name"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket creation or name lookup in a memory test fails the test."""
    forbid_network(monkeypatch, MEMORY_OPENS_NOTHING)
