"""Typing and lint run with the suite, so CI enforces them (tox runs them too)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a tool from this interpreter's environment in the checkout."""
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(300)
def test_mypy_strict_on_packages_and_tests() -> None:
    """mypy --strict (config in pyproject.toml) on the installed packages and on tests/."""
    packages = ("jfsocket.core", "jfsocket.bindings", "tests")
    result = run(sys.executable, "-m", "mypy", *(arg for p in packages for arg in ("-p", p)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_and_format() -> None:
    """ruff check and ruff format --check on the sources and tests."""
    # ruff is in the test extra, next to this interpreter.
    ruff = str(pathlib.Path(sys.executable).parent / "ruff")
    for args in (("check",), ("format", "--check")):
        result = run(ruff, *args, "core", "bindings", "tests")
        assert result.returncode == 0, result.stdout + result.stderr
