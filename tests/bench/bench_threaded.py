"""The threaded binding beside raw blocking sockets on threads: every scenario
of :data:`tests.bench.scenarios.SCENARIOS`, run by :mod:`tests.bench.runner`."""

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
    warm_up: bool = True,
) -> list[Result]:
    """The rows (see :func:`tests.bench.runner.main` for the arguments)."""
    return run(
        "threaded",
        quick,
        sizes=sizes,
        clients=clients,
        runs=runs,
        timeout=timeout,
        scenarios=scenarios,
        warm_up=warm_up,
    )
