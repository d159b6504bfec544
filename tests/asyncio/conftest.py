"""The asyncio binding's suite: two loops, the leak check, the watchdog.

Every module here sets ``pytestmark = pytest.mark.asyncio`` (pytest-asyncio in
strict mode, so it leaves pytest-trio's tests alone).

* Two loops.  :func:`pytest_asyncio_loop_factories` runs every test on
  asyncio's default loop and on uvloop: ``test_x[asyncio]``, ``test_x[uvloop]``
  (without uvloop the second is skipped, so the ids keep showing the loop).
* The leak check.  The autouse :func:`no_leaks` fixture wraps each test
  function: once its body has returned, in the same task, no other task may be
  left in :func:`asyncio.all_tasks`, no file descriptor may be open that was
  not open when the body began, and asyncio itself must not have logged a
  warning or an error (an exception in a protocol callback, a task exception
  never retrieved).  Being autouse in this folder's conftest, no test here can
  forget it.
* A watchdog.  A test still running after :data:`HANG` seconds (loop teardown
  included) ends the run with every thread's stack instead of hanging it.

The helpers the tests use are in :mod:`tests.asyncio.helpers`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

import pytest
from pytest_asyncio import is_async_test

from .helpers import abandon_stuck_tasks, check_clean, new_fds, open_fds, warm_up

#: What pytest-asyncio's loop-factories hook maps names to.
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


# -- loops -----------------------------------------------------------------------------


def _uvloop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        pytest.skip("uvloop is not installed")
    return uvloop.new_event_loop()


#: Every loop the asyncio binding is tested on, by test id.
LOOP_FACTORIES: Mapping[str, LoopFactory] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": _uvloop,
}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """pytest-asyncio's hook (>= 1.4): each test of this folder runs on each loop.

    pytest-asyncio asks the hook through ``item.ihook``, so it applies to the
    tests below this conftest only.
    """
    return LOOP_FACTORIES


# -- leak check and watchdog -----------------------------------------------------


#: Seconds after which a test of this folder, loop teardown included, is deemed hung.
HANG = 30.0
#: The traceback of each test body that failed, for :func:`_hung` to show.
_failures: dict[str, str] = {}


def _hung(nodeid: str, config: pytest.Config) -> None:
    """The watchdog fired: report, dump every thread's stack, and end the run."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:  # write to the real stderr, not pytest's capture
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(
        f"\n{nodeid} still running after {HANG} s (its body or its loop's teardown): "
        "hung, ending the run\n"
    )
    if _failures.get(nodeid):
        sys.stderr.write(f"its body had failed first:\n{_failures[nodeid]}\n")
    sys.stderr.write("every thread's stack:\n")
    faulthandler.dump_traceback(all_threads=True)
    sys.stderr.flush()
    os._exit(1)


class Complaints(logging.Handler):
    """Collects what asyncio logs at WARNING or above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[Complaints]:
    """Fail a test that leaves a task, a file descriptor or an asyncio complaint;
    yields the :class:`Complaints` collected so far.

    The test function is wrapped: the check runs in the test's own task right
    after its body returned (a test that failed is not checked again), inside
    the loop, so the loop's own descriptors do not count.
    """
    item = request.node
    assert isinstance(item, pytest.Function)
    # A binding task that ignores cancellation, or a loop whose descriptors the
    # binding closed, can hang where no timeout runs: asyncio.Runner.close() after
    # a failed test (pytest-timeout stops its timer at the failure), or uvloop
    # waiting in C (its signal method cannot interrupt it).  Rather than hang the
    # whole run, end it with every stack.
    watchdog = threading.Timer(HANG, _hung, args=(item.nodeid, request.config))
    watchdog.daemon = True
    watchdog.start()
    complaints = Complaints()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(complaints)
    test: Callable[..., Coroutine[Any, Any, None]] = item.obj
    if is_async_test(item):

        @functools.wraps(test)
        async def checked(*args: object, **kwargs: object) -> None:
            await warm_up()
            before = open_fds()
            try:
                await test(*args, **kwargs)
                check_clean(before)
            except BaseException:
                _failures[item.nodeid] = traceback.format_exc()
                await abandon_stuck_tasks()
                raise

        item.obj = checked
    before = open_fds()
    try:
        yield complaints
    finally:
        item.obj = test
        asyncio_logger.removeHandler(complaints)
        watchdog.cancel()
        _failures.pop(item.nodeid, None)
    if not is_async_test(item):
        assert not new_fds(before), f"file descriptors leaked: {new_fds(before)}"
    assert not complaints.messages, f"asyncio logged: {complaints.messages}"
