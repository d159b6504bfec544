"""The interop tests use the conformance driver and its leak check."""

from __future__ import annotations

from tests.conformance.conftest import no_leaks

__all__ = ["no_leaks"]
