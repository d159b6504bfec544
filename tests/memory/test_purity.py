"""The memory binding's own modules reach for no socket, thread or clock: its
network is the only I/O it has, and its clock the only time."""

from __future__ import annotations

import ast
import pathlib

BINDINGS = pathlib.Path(__file__).resolve().parent.parent.parent / "bindings"
MODULES = ("memory.py", "_memnet.py", "_memsock.py", "_memtcp.py")
FORBIDDEN = frozenset({"socket", "select", "selectors", "threading", "time", "asyncio", "trio"})


def test_memory_modules_import_no_io() -> None:
    """No forbidden module is imported by the memory binding's own sources."""
    found = []
    for name in MODULES:
        tree = ast.parse((BINDINGS / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(name, a.name) for a in node.names if a.name in FORBIDDEN]
            elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN:
                found.append((name, node.module))
    assert found == []


def test_the_check_sees_an_import() -> None:
    """The walk above finds a forbidden import when there is one."""
    tree = ast.parse("import threading\nfrom time import monotonic\n")
    names = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(names) == 2
