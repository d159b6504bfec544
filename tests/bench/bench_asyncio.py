"""The asyncio binding beside raw asyncio ``Protocol`` code, on asyncio's default
loop and on uvloop (where it is installed), with asyncio streams as an extra
baseline for ping-pong: every scenario of :data:`tests.bench.scenarios.SCENARIOS`,
run by :mod:`tests.bench.runner`."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .common import Result
from .runner import main as run

__all__ = ["main"]


def main(
    quick: bool = False,
    *,
    sizes: Mapping[str, int] | None = None,
    clients: int | None = None,
    runs: int | None = None,
    timeout: float | None = None,
    scenarios: Collection[str] | None = None,
    loops: Collection[str] | None = None,
    warm_up: bool = True,
) -> list[Result]:
    """The rows (see :func:`tests.bench.runner.main` for the arguments)."""
    return run(
        "asyncio",
        quick,
        sizes=sizes,
        clients=clients,
        runs=runs,
        timeout=timeout,
        scenarios=scenarios,
        loops=loops,
        warm_up=warm_up,
    )
