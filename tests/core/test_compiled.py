"""The compiled core: :data:`jfsocket.core.COMPILED` tells the truth, and CI can demand it.

``JFSOCKET_EXPECT_COMPILED=1`` (CI's compiled install) fails the suite on a core
that silently fell back to pure Python; ``=0`` on one that did not.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import pkgutil
from importlib.machinery import EXTENSION_SUFFIXES

import pytest

core = importlib.import_module("jfsocket.core")  # see tests/conftest.py

#: The core's modules that stay Python in a compiled core (setup.py's INTERPRETED).
INTERPRETED = frozenset({"events", "timing", "tls"})


def _extension(module_name: str) -> bool:
    """The module is a C extension (a mypyc build), not Python source."""
    module = importlib.import_module(module_name)
    return str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES))


def test_compiled_tells_what_each_module_is() -> None:
    """COMPILED: every module but the interpreted ones is an extension; else none is."""
    names = sorted(info.name for info in pkgutil.iter_modules(core.__path__))
    assert {"connection", "dispatch", "events"} <= set(names)
    kinds = {name: _extension(f"jfsocket.core.{name}") for name in names}
    assert kinds == {name: core.COMPILED and name not in INTERPRETED for name in names}
    assert _extension("jfsocket.core") is core.COMPILED


def test_the_sources_are_installed_either_way() -> None:
    """Every module's .py is installed beside it (mypy and the purity test read them)."""
    folder = pathlib.Path(core.__path__[0])
    names = {info.name for info in pkgutil.iter_modules(core.__path__)}
    assert {path.stem for path in folder.glob("*.py")} == names | {"__init__"}
    assert (folder / "py.typed").is_file()


@pytest.mark.skipif(
    os.environ.get("JFSOCKET_EXPECT_COMPILED") not in ("0", "1"),
    reason="JFSOCKET_EXPECT_COMPILED is not set (CI sets it for each of its installs)",
)
def test_the_core_is_built_as_expected() -> None:
    """CI's compiled install must not have fallen back to pure Python, and its pure one is pure."""
    expected = os.environ["JFSOCKET_EXPECT_COMPILED"] == "1"
    assert core.COMPILED is expected, (
        f"JFSOCKET_EXPECT_COMPILED={int(expected)} but jfsocket.core.COMPILED is {core.COMPILED}: "
        "see the build log (pip install -v) for why"
    )
