"""``_start``: a task started eagerly, on every Python the suite runs on.

The asyncio binding runs an ``async def`` callback's first step at once, as a
task of its own.  Python 3.12+ has ``eager_start``; before, ``_start`` emulates
it with asyncio's private ``_enter_task``/``_leave_task``, the binding's only
private API.  These tests pin down what both must do, so a Python release that
changes those internals fails here, not in a user's callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from jfsocket.bindings import asyncio as binding

pytestmark = pytest.mark.asyncio

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_eager_var", default="unset")


async def _from_loop_callback(call: Callable[[], object]) -> object:
    """Run *call* in a loop callback (where a protocol's code runs: no current task)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[object] = loop.create_future()

    def callback() -> None:
        try:
            done.set_result(call())
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon(callback)
    return await done


async def test_first_step_runs_now_as_a_task_of_its_own() -> None:
    """Up to its first suspension the coroutine runs inside ``_start``, with
    ``current_task()`` its own task; one that never suspends leaves no task."""
    order: list[str] = []
    seen: list[asyncio.Task[Any] | None] = []

    async def job() -> None:
        seen.append(asyncio.current_task())
        order.append("job")

    def start() -> object:
        task = binding._start(job())
        order.append("after")
        return task

    assert await _from_loop_callback(start) is None
    assert order == ["job", "after"]
    assert isinstance(seen[0], asyncio.Task)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_what_the_first_step_raises_is_raised_by_start() -> None:
    async def job() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await _from_loop_callback(lambda: binding._start(job()))
    await asyncio.sleep(0)  # and no "exception never retrieved" (the leak check looks)


async def test_a_suspended_coroutine_goes_on_in_its_task_with_its_context() -> None:
    """After its first suspension the same task finishes it: what the first
    step set in its context is still set, and the caller's context is untouched."""
    resumed: list[tuple[asyncio.Task[Any] | None, str]] = []
    first: list[asyncio.Task[Any] | None] = []

    async def job() -> None:
        _VAR.set("set in the first step")
        first.append(asyncio.current_task())
        await asyncio.sleep(0)
        resumed.append((asyncio.current_task(), _VAR.get()))

    task = await _from_loop_callback(lambda: binding._start(job()))
    assert isinstance(task, asyncio.Task)
    await task
    assert resumed[0][0] is first[0] is task
    if sys.version_info >= (3, 11):  # 3.10's create_task copies the context
        assert resumed[0][1] == "set in the first step"
    assert _VAR.get() == "unset"


async def test_cancelling_the_task_before_it_ran_reaches_the_coroutine() -> None:
    outcome: list[str] = []

    async def job() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = await _from_loop_callback(lambda: binding._start(job()))
    assert isinstance(task, asyncio.Task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]


async def test_started_from_a_task_it_still_runs_in_its_own() -> None:
    """From inside a task (the test's): 3.12+ starts it eagerly; before, a task
    cannot become another one, so it is scheduled; either way it runs, as itself."""
    seen: list[asyncio.Task[Any] | None] = []

    async def job() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)

    coro: Coroutine[Any, Any, None] = job()
    task = binding._start(coro)
    assert task is not None
    assert bool(seen) == (sys.version_info >= (3, 12))
    await task
    assert seen == [task]


if sys.version_info >= (3, 11):  # asyncio.timeout and TaskGroup

    async def test_a_timeout_set_in_the_first_step_reaches_the_coroutine() -> None:
        """``asyncio.timeout`` in the first step cancels the coroutine's own task
        (before the task has ever run a step itself, with a deadline of 0)."""
        outcome: list[str] = []

        async def job() -> None:
            try:
                async with asyncio.timeout(0):
                    await asyncio.sleep(10)
            except TimeoutError:
                outcome.append("timed out")

        task = await _from_loop_callback(lambda: binding._start(job()))
        assert isinstance(task, asyncio.Task)
        await asyncio.wait_for(task, 5)
        assert outcome == ["timed out"]

    async def test_a_task_group_opened_in_the_first_step_works() -> None:
        results: list[int] = []

        async def child(n: int) -> None:
            await asyncio.sleep(0)
            results.append(n)

        async def job() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(child(1))
                group.create_task(child(2))

        task = await _from_loop_callback(lambda: binding._start(job()))
        assert isinstance(task, asyncio.Task)
        await task
        assert sorted(results) == [1, 2]
