"""Suite-wide checks: the installed jfsocket is the one in this checkout."""

from __future__ import annotations

import hashlib
import importlib
import pathlib

import pytest

# Imported by name: mypy 2 reads `from jfsocket import core` as importing the
# namespace package `jfsocket`, which has no py.typed of its own.
core = importlib.import_module("jfsocket.core")
bindings = importlib.import_module("jfsocket.bindings")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _digest(folder: pathlib.Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.py"))
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a stale install: the suite runs against the installed package."""
    for package, source in ((core, "core"), (bindings, "bindings")):
        installed = pathlib.Path(package.__path__[0])
        if installed.resolve() == (ROOT / source).resolve():
            continue  # an editable install maps straight to the checkout
        if _digest(installed) != _digest(ROOT / source):
            pytest.exit(
                f"the installed {package.__name__} ({installed}) differs from ./{source}: "
                "reinstall with `pip install '.[test]'` (or use tox)",
                returncode=4,
            )
