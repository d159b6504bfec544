"""The leak checks' ownership test: jfsocket's code is known by where it is installed."""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from .ownership import PACKAGE_DIRS, is_jfsocket_code, is_jfsocket_task, is_under

#: A checkout cloned into a folder named jfsocket, installed editable.
CLONE = "/home/u/jfsocket"
EDITABLE = (f"{CLONE}/core", f"{CLONE}/bindings")
#: A regular install into that clone's own .venv.
SITE = f"{CLONE}/.venv/lib/python3.11/site-packages"
REGULAR = (f"{SITE}/jfsocket/core", f"{SITE}/jfsocket/bindings")


@pytest.mark.parametrize(
    "filename",
    [f"{CLONE}/core/connection.py", f"{CLONE}/bindings/trio.py", f"{CLONE}/core/sub/x.py"],
)
def test_an_editable_install_owns_its_package_folders(filename: str) -> None:
    assert is_under(filename, EDITABLE)


@pytest.mark.parametrize(
    "filename",
    [
        f"{CLONE}/tests/trio/conftest.py",
        f"{CLONE}/tests/conformance/runtimes.py",
        f"{SITE}/trio/_core/_run.py",
        f"{SITE}/trio/_core/_entry_queue.py",
        f"{CLONE}/core2/x.py",  # a sibling whose name starts like a package folder
        f"{CLONE}/core.py",
        f"{CLONE}/core",  # the folder itself is no file inside it
        "core/connection.py",  # relative: no absolute path, not ours
        "<string>",
    ],
)
def test_an_editable_install_in_a_clone_named_jfsocket_owns_nothing_else(filename: str) -> None:
    assert not is_under(filename, EDITABLE)


def test_a_regular_install_owns_its_site_packages_folders_only() -> None:
    assert is_under(f"{SITE}/jfsocket/core/x.py", REGULAR)
    assert is_under(f"{SITE}/jfsocket/bindings/asyncio.py", REGULAR)
    assert not is_under(f"{SITE}/trio/x.py", REGULAR)
    assert not is_under(f"{SITE}/jfsocket/other/x.py", REGULAR)
    # The checkout's sources are not what runs, and its tests are never ours.
    assert not is_under(f"{CLONE}/core/connection.py", REGULAR)
    assert not is_under(f"{CLONE}/tests/trio/conftest.py", REGULAR)


def test_a_trailing_separator_or_dot_in_a_package_folder_changes_nothing() -> None:
    dirs = (f"{CLONE}/core/", f"{CLONE}/./bindings")
    assert is_under(f"{CLONE}/core/x.py", dirs)
    assert is_under(f"{CLONE}/bindings/x.py", dirs)
    assert not is_under(f"{CLONE}/core2/x.py", dirs)
    assert not is_under(f"{CLONE}/core/../tests/x.py", dirs)


def test_the_package_folders_are_where_the_packages_were_imported_from() -> None:
    names = ("jfsocket.core", "jfsocket.bindings")
    for name, folder in zip(names, PACKAGE_DIRS, strict=True):
        package = importlib.import_module(name)
        assert os.path.isabs(folder) and folder == os.path.realpath(folder)
        assert os.path.samefile(folder, os.path.dirname(str(package.__file__)))
    # Whatever the checkout's folder is called, the suite itself is not the library.
    assert not is_under(os.path.realpath(__file__), PACKAGE_DIRS)


def _a_test_helper() -> None:
    """Code of the suite, not of the library."""


def test_the_real_predicate_knows_library_code_from_the_suite_and_trio() -> None:
    core = importlib.import_module("jfsocket.core")
    bindings_trio = importlib.import_module("jfsocket.bindings.trio")
    # A core compiled by mypyc has no code objects: then one compiled from the
    # installed connection.py stands for its code.
    core_code = getattr(core.Connection.__init__, "__code__", None) or compile(
        "", os.path.join(core.__path__[0], "connection.py"), "exec"
    )
    assert is_jfsocket_code(core_code)
    assert is_jfsocket_code(bindings_trio.TcpServer.__init__.__code__)
    assert not is_jfsocket_code(_a_test_helper.__code__)
    assert not is_jfsocket_code(
        test_the_real_predicate_knows_library_code_from_the_suite_and_trio.__code__
    )
    assert not is_jfsocket_code(trio.run.__code__)
    assert not is_jfsocket_code(None)


def _compiled_in_core() -> Callable[[trio.Event], Awaitable[None]]:
    """An ``async def`` whose code claims a file in jfsocket.core's folder (none is written)."""
    namespace: dict[str, Any] = {}
    source = "async def waiter(release):\n    await release.wait()\n"
    exec(compile(source, os.path.join(PACKAGE_DIRS[0], "_not_a_file.py"), "exec"), namespace)
    waiter: Callable[[trio.Event], Awaitable[None]] = namespace["waiter"]
    return waiter


def test_a_trio_task_is_ours_by_its_code_or_its_name() -> None:
    seen: dict[str, bool] = {}

    async def child(release: trio.Event) -> None:
        await release.wait()

    async def main() -> None:
        release = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child, release, name="suite")
            nursery.start_soon(child, release, name="jfsocket.renamed")
            nursery.start_soon(child, release, name="jfsocketlike")
            nursery.start_soon(_compiled_in_core(), release, name="library code")
            await trio.testing.wait_all_tasks_blocked()
            seen.update((task.name, is_jfsocket_task(task)) for task in nursery.child_tasks)
            seen["main"] = is_jfsocket_task(trio.lowlevel.current_task())
            release.set()

    trio.run(main)
    assert seen == {
        "suite": False,
        "jfsocket.renamed": True,
        "jfsocketlike": False,
        "library code": True,
        "main": False,
    }
