"""The interop tests share the threaded tests' helpers, leak check included."""

from __future__ import annotations

from tests.threaded.conftest import no_leaks, objects

__all__ = ["no_leaks", "objects"]
