"""An async callback's first step, as a task of its own, on every Python the suite runs on.

The asyncio binding runs an ``async def`` callback met in a loop callback (a
protocol's ``data_received``) at once, as a task: Python 3.12+ starts it
eagerly; before, it runs as the object's stand-in task, made current with
asyncio's private ``_enter_task``/``_leave_task``, the binding's only private
API.  These tests pin down what both must do, on the dispatcher alone (no
sockets), so a Python release that changes those internals fails here, not in
a user's callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest
from jfsocket.bindings import _asyncio_host as host_module
from jfsocket.core import CallbackRegistry, Received, Role, inside

pytestmark = pytest.mark.asyncio

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_eager_var", default="unset")
SRC = "conn"


def _host(on_received: Callable[..., object]) -> host_module.Host:
    return host_module.Host(CallbackRegistry(Role.CLIENT, {"onReceived": on_received}))


async def _deliver(host: host_module.Host, *data: str) -> None:
    """Push RECEIVED events and drain them from a loop callback, as a protocol does."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def callback() -> None:
        try:
            if host.push([Received(source=SRC, data=d) for d in data]):
                host.kick()
            done.set_result(None)
        except BaseException as exc:  # pragma: no cover - reported by the test
            done.set_exception(exc)

    loop.call_soon(callback)
    await done


async def _idle(host: host_module.Host) -> None:
    """Wait (boundedly) until every event was dispatched and the object's tasks ended."""
    for _ in range(10_000):
        if not host.core.busy:
            break
        await asyncio.sleep(0)
    assert not host.core.busy
    await asyncio.wait_for(host.reap(), 5)


async def test_a_callback_that_never_suspends_runs_inline_as_a_task() -> None:
    """Its first step (and all of it) runs inside kick(), with ``current_task()``
    a task that is not the test's; nothing is left behind."""
    order: list[object] = []

    async def on_received(client: object, data: str) -> None:
        order.append((data, asyncio.current_task() is not None))

    host = _host(on_received)
    await _deliver(host, "a", "b")
    assert order == [("a", True), ("b", True)]
    assert not host.core.busy and host.core.done == 2
    await _idle(host)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_suspended_callback_holds_the_queue_and_keeps_its_task() -> None:
    """After its first suspension the same task finishes it; the next event waits
    for it, then runs; what the first step set in its context is still set there."""
    seen: list[object] = []
    release = asyncio.Event()

    async def on_received(client: object, data: str) -> None:
        task = asyncio.current_task()
        if data == "slow":
            _VAR.set("set in the first step")
            seen.append("slow begins")
            await release.wait()
            seen.append(("slow ends", asyncio.current_task() is task, _VAR.get()))
        else:
            seen.append(data)

    host = _host(on_received)
    await _deliver(host, "slow", "next")
    assert seen == ["slow begins"]
    assert host.core.busy
    assert inside(next(iter(host.tasks or ()))) or not host_module.EAGER
    release.set()
    await _idle(host)
    first_step_context = "set in the first step" if sys.version_info >= (3, 11) else "unset"
    assert seen == ["slow begins", ("slow ends", True, first_step_context), "next"]
    assert _VAR.get() == "unset"


async def test_what_a_callback_raises_is_logged_and_the_drain_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def on_received(client: object, data: str) -> None:
        if data == "sync boom":
            raise ValueError(data)
        if data == "async boom":
            await asyncio.sleep(0)
            raise ValueError(data)
        seen.append(data)

    host = _host(on_received)
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        await _deliver(host, "sync boom", "one", "async boom", "two")
        await _idle(host)
    assert seen == ["one", "two"]
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [str(e) for e in errors] == ["sync boom", "async boom"]


if sys.version_info >= (3, 11):  # asyncio.timeout and TaskGroup

    async def test_a_timeout_set_in_the_first_step_reaches_the_callback() -> None:
        """``asyncio.timeout`` in the first step cancels the callback's own task,
        even with a deadline of 0 (before that task has run a step of its own)."""
        outcome: list[str] = []

        async def on_received(client: object, data: str) -> None:
            try:
                async with asyncio.timeout(0):
                    await asyncio.Event().wait()  # never set: only the timeout ends it
            except TimeoutError:
                outcome.append("timed out")

        host = _host(on_received)
        await _deliver(host, "x")
        await _idle(host)
        assert outcome == ["timed out"]

    async def test_a_task_group_opened_in_the_first_step_works() -> None:
        results: list[int] = []

        async def child(n: int) -> None:
            await asyncio.sleep(0)
            results.append(n)

        async def on_received(client: object, data: str) -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(child(1))
                group.create_task(child(2))
            results.append(0)

        host = _host(on_received)
        await _deliver(host, "x")
        await _idle(host)
        assert results[-1] == 0 and sorted(results) == [0, 1, 2]


async def test_cancelling_a_suspended_callback_lets_the_rest_run() -> None:
    """The object cancels its callbacks' tasks (leaving ``async with`` cancelled):
    the callback sees it, and the events queued behind it are still delivered."""
    seen: list[Any] = []

    async def on_received(client: object, data: str) -> None:
        if data == "stuck":
            try:
                await asyncio.Event().wait()  # never set: only the cancellation ends it
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
        seen.append(data)

    host = _host(on_received)
    await _deliver(host, "stuck", "after")  # its first step ran: it is waiting now
    assert seen == [] and host.core.busy
    host_module.cancel_callbacks(host)
    await _idle(host)
    assert seen == ["cancelled", "after"]
