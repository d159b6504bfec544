"""The import contract: core/ never reaches for I/O, threads, event loops or clocks."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

core = importlib.import_module("jfsocket.core")  # see tests/conftest.py

FORBIDDEN = frozenset(
    {
        "socket",
        "select",
        "selectors",
        "ssl",
        "threading",
        "_thread",
        "asyncio",
        "trio",
        "time",
        "datetime",
        "multiprocessing",
        "subprocess",
        "concurrent",
    }
)


def violations(folder: pathlib.Path) -> list[str]:
    """Every import (static or by name) of a forbidden module in *folder*'s sources."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, (ast.Name, ast.Attribute))
                and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
                in {"__import__", "import_module"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    found.append(f"{path.name}:{getattr(node, 'lineno', 0)}: {name}")
    return found


def test_core_imports_no_io_module() -> None:
    """The installed jfsocket.core imports none of the forbidden modules."""
    assert violations(pathlib.Path(core.__path__[0])) == []


def test_the_check_catches_each_way_of_importing(tmp_path: pathlib.Path) -> None:
    """The contract fails when someone adds an I/O import to core/."""
    (tmp_path / "a.py").write_text("import socket\n")
    (tmp_path / "b.py").write_text("from asyncio import sleep\n")
    (tmp_path / "c.py").write_text("import importlib\nimportlib.import_module('trio')\n")
    (tmp_path / "d.py").write_text("t = __import__('time')\n")
    (tmp_path / "e.py").write_text("from . import framing\nimport threading.local\n")
    assert violations(tmp_path) == [
        "a.py:1: socket",
        "b.py:1: asyncio",
        "c.py:2: trio",
        "d.py:1: time",
        "e.py:2: threading.local",
    ]


def test_core_imports_without_loading_an_event_loop_library() -> None:
    """Importing the core in a fresh interpreter loads no socket, asyncio or trio.

    attrs comes first: what it loads is its own (on Python 3.10 it imports
    ``platform``, hence ``subprocess`` and ``selectors``)."""
    code = (
        "import sys, attrs\n"
        "before = set(sys.modules)\n"
        "import jfsocket.core\n"
        "bad = {'socket', 'select', 'selectors', 'ssl', 'asyncio', 'trio'}\n"
        "print(sorted(bad & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_core_tests_run_with_the_network_switched_off() -> None:
    """The fixture of tests/core/conftest.py makes socket creation fail the test."""
    import socket

    import pytest

    from tests.core.conftest import NetworkForbiddenError

    with pytest.raises(NetworkForbiddenError):
        socket.socket()
    with pytest.raises(NetworkForbiddenError):
        socket.getaddrinfo("localhost", 80)
