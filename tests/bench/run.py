"""Run the benchmarks and print their tables.

From the checkout root: ``python -m tests.bench.run [NAMES...] [--quick]``.
Every ``tests/bench/bench_<name>.py`` is a benchmark exposing
``main(quick: bool) -> list[Result]``; NAMES pick some by ``<name>`` (or by
module name), and all run when none is given.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from .common import Result, print_table

__all__ = ["BenchMain", "discover", "load", "main"]

BenchMain = Callable[[bool], list[Result]]

_HERE = Path(__file__).resolve().parent
_PACKAGE = __name__.rpartition(".")[0] or "tests.bench"
_PREFIX = "bench_"


def discover() -> dict[str, str]:
    """Benchmark short names (``framing``) mapped to their module names, sorted."""
    return {
        path.stem.removeprefix(_PREFIX): f"{_PACKAGE}.{path.stem}"
        for path in sorted(_HERE.glob(f"{_PREFIX}*.py"))
    }


def load(module_name: str) -> BenchMain:
    """The ``main`` function of benchmark module *module_name*."""
    module = importlib.import_module(module_name)
    entry = getattr(module, "main", None)
    if not callable(entry):
        raise TypeError(f"{module_name} has no main(quick: bool) -> list[Result]")
    return cast(BenchMain, entry)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv*, run the selected benchmarks, print one table per benchmark."""
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(available)}"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    args = parser.parse_args(argv)
    selected: list[str] = []
    for name in args.names or list(available):
        short = name.removeprefix(_PREFIX).removesuffix(".py")
        if short not in available:
            parser.error(f"no benchmark {name!r}; available: {', '.join(available)}")
        if short not in selected:
            selected.append(short)

    print(
        f"jfsocket benchmarks{' (quick)' if args.quick else ''}: "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
        flush=True,
    )
    for short in selected:
        started = time.perf_counter()
        results = load(available[short])(args.quick)
        print(f"\n## {short} ({time.perf_counter() - started:.1f} s)", flush=True)
        print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
