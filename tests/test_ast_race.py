"""The suite's guard against CPython gh-106905 (see tests/conftest.py) holds:
threads that parse at once, while the collector runs Python code, all succeed."""

from __future__ import annotations

import ast
import gc
import pathlib
import threading

SOURCE = pathlib.Path(ast.__file__).read_text()


def test_threads_parse_at_once_without_a_system_error() -> None:
    errors: list[BaseException] = []

    def churn(phase: str, info: dict[str, int]) -> None:
        # Python code inside a collection lets another thread take the GIL in
        # the middle of an AST construction: the window of the CPython bug.
        sorted(str(n) for n in range(50))

    def parse() -> None:
        try:
            for _ in range(5):
                ast.parse(SOURCE)
        except SystemError as exc:
            errors.append(exc)

    gc.callbacks.append(churn)
    try:
        threads = [threading.Thread(target=parse) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.callbacks.remove(churn)
    assert errors == []
