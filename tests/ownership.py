"""Which code is jfsocket's own: the one test the suite's leak checks share.

Library code is code whose file lies inside the installed packages' folders,
``jfsocket.core`` and ``jfsocket.bindings`` (``site-packages/jfsocket/core``, or
``core/`` and ``bindings/`` of the checkout for an editable install).  Not a
path substring: in a clone whose folder is named ``jfsocket`` that would also
take in the tests themselves and every package in ``.venv``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Final

import trio

__all__ = ["PACKAGE_DIRS", "is_jfsocket_code", "is_jfsocket_task", "is_under"]


def _package_dir(name: str) -> str:
    # By name, not `from jfsocket import core`: see tests/conftest.py.
    filename = importlib.import_module(name).__file__
    assert filename is not None, f"{name} is not a regular package"
    return os.path.dirname(os.path.realpath(filename))


#: The real folders of the installed jfsocket.core and jfsocket.bindings.
PACKAGE_DIRS: Final = (_package_dir("jfsocket.core"), _package_dir("jfsocket.bindings"))


def is_under(filename: str, package_dirs: Iterable[str]) -> bool:
    """Whether the file *filename* lies inside one of *package_dirs* (string logic only).

    Folders compare as whole path components (``/x/core`` holds ``/x/core/a.py``,
    not ``/x/core2/a.py``); a name that is no absolute path (``<string>``) is in none.
    """
    if not os.path.isabs(filename):
        return False
    path = os.path.normcase(os.path.normpath(filename))
    return any(
        path.startswith(os.path.join(os.path.normcase(os.path.normpath(folder)), ""))
        for folder in package_dirs
    )


def is_jfsocket_code(code: object) -> bool:
    """Whether *code* (a code object, or None) was compiled from jfsocket's installed files."""
    filename = getattr(code, "co_filename", None)
    if not isinstance(filename, str):
        return False
    if os.path.isabs(filename):
        filename = os.path.realpath(filename)  # PACKAGE_DIRS are resolved too
    return is_under(filename, PACKAGE_DIRS)


def is_jfsocket_task(task: trio.lowlevel.Task) -> bool:
    """Whether a trio task runs jfsocket's code, or is named as jfsocket's.

    trio names a task ``module.qualname`` of its function, so the name still says
    jfsocket when the coroutine's code is a decorator's wrapper from elsewhere.
    """
    return task.name.startswith("jfsocket.") or is_jfsocket_code(
        getattr(task.coro, "cr_code", None)
    )
