"""Build jfsocket.core with mypyc where it can be; the pure-Python core otherwise.

pyproject.toml holds the metadata; this file only adds the compiled core:

* ``JFSOCKET_PURE=1`` (read when building) forces the pure-Python core;
* so do an editable install (edits to core/ must take effect) and an
  interpreter mypyc does not target (not CPython);
* a failure to compile (no C compiler, no Python headers, code mypyc cannot
  compile) falls back to the pure core, with one line in the build log saying
  so (CI, which has a compiler, fails on that: JFSOCKET_EXPECT_COMPILED=1).

Whichever way it is built, the wheel holds core/'s ``.py`` sources (the
purity test and ``mypy`` read them) next to the extension modules, which
Python imports first.  ``jfsocket.core.COMPILED`` tells which ran.
"""

from __future__ import annotations

import os
import pathlib
import platform
import shutil
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

ROOT = pathlib.Path(__file__).resolve().parent
# mypy names modules after their folders: stage core/ as jfsocket/core/.
STAGE = pathlib.Path("build", "mypyc-src")
C_OUT = pathlib.Path("build", "mypyc-c")
#: Core modules left interpreted (type-checked with the rest, not compiled):
#: events.py holds the user's attrs event classes, which mypyc would leave
#: interpreted classes anyway (with their ``type`` ClassVar made a field), so
#: compiling it gains nothing; timing.py likewise (Keepalive, Backoff), and it
#: runs only when objects are made; tls.py too (TlsInfo, made once per handshake).
INTERPRETED = frozenset({"events", "timing", "tls"})


def say(message: str) -> None:
    """One line in the build log (pip shows it with -v)."""
    print(f"jfsocket build: {message}", file=sys.stderr, flush=True)


def pure_reason() -> str | None:
    """Why this build makes the pure-Python core, or ``None`` to compile it."""
    if os.environ.get("JFSOCKET_PURE", "").strip() not in ("", "0"):
        return "JFSOCKET_PURE is set"
    if platform.python_implementation() != "CPython":
        return f"mypyc does not target {platform.python_implementation()}"
    if "editable_wheel" in sys.argv:
        return "an editable install runs core/'s sources as they are edited"
    return None


def compiled_core() -> list[Extension]:
    """The mypyc extension modules of jfsocket.core (empty: build it pure)."""
    try:
        from mypyc.build import mypycify
    except ImportError:
        say("pure-Python core (mypyc is not installed: it comes with mypy)")
        return []
    package = STAGE / "jfsocket" / "core"
    shutil.rmtree(STAGE, ignore_errors=True)
    package.mkdir(parents=True)
    # A regular package for mypy's sake only; it is not compiled nor installed.
    (package.parent / "__init__.py").write_text("")
    sources = []
    for path in sorted((ROOT / "core").glob("*.py")):
        shutil.copyfile(path, package / path.name)
        sources.append(str(package / path.name))
    compiled = [s for s in sources if pathlib.Path(s).stem not in INTERPRETED]
    say(f"compiling jfsocket.core with mypyc ({len(compiled)} of {len(sources)} modules)")
    try:
        return mypycify(
            sources,
            only_compile_paths=compiled,
            target_dir=str(C_OUT),
            group_name="jfsocket_core",
            opt_level="3",
        )
    except SystemExit:  # mypyc reports what it cannot compile (above), then exits
        say("mypyc could not compile the core (see above); pure-Python core installed instead")
        return []


class BuildExt(build_ext):
    """build_ext that falls back to the pure core when the C build fails."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            # All or nothing: a half-compiled core would import the missing half.
            for output in self.get_outputs():
                pathlib.Path(output).unlink(missing_ok=True)
            self.extensions = []
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            say(f"could not compile the core, installing the pure-Python core ({reason})")


def extensions() -> list[Extension]:
    """What this run of setup.py builds: mypyc's modules only when it builds
    (metadata and an sdist need no compiling, and no generated C)."""
    reason = pure_reason()
    if reason is not None:
        say(f"pure-Python core ({reason})")
        return []
    if not _BUILDS & set(sys.argv[1:]):
        return []
    return compiled_core()


_BUILDS = frozenset({"bdist_wheel", "build", "build_ext", "install"})
setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
