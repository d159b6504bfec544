"""Suite-wide checks: the installed jfsocket is the one in this checkout."""

from __future__ import annotations

import ast
import hashlib
import importlib
import pathlib
import sys
import threading
from typing import Any

import pytest

# Imported by name: mypy 2 reads `from jfsocket import core` as importing the
# namespace package `jfsocket`, which has no py.typed of its own.
core = importlib.import_module("jfsocket.core")
bindings = importlib.import_module("jfsocket.bindings")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _serialise_ast_parse() -> None:
    """Work around CPython gh-106905: before 3.11.8 / 3.12.2, two threads that
    build ASTs at once share one recursion counter and one of them raises
    `SystemError: AST constructor recursion depth mismatch`.  pytest parses the
    source of every failed or xfailed test while the threaded binding's threads
    may be formatting a traceback (3.11's carets parse too); in CI that ended
    the whole run with INTERNALERROR.  One lock around `ast.parse` removes the
    overlap; the interpreters that fixed the bug are left alone."""
    if not ((3, 11) <= sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 2)):
        return
    parse = ast.parse
    # Reentrant: a finalizer run by the garbage collector inside one parse may
    # format a traceback, and so parse again, on the same thread.
    lock = threading.RLock()

    def serialised_parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    ast.parse = serialised_parse


_serialise_ast_parse()


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
