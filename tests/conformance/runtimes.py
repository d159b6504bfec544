"""How a synchronous scenario drives each binding: one runner per runtime.

A scenario is plain blocking code.  A runner turns its calls into the
binding's kind of call and its actions into the binding's kind of callback:

* :class:`ThreadedRunner` calls the binding directly; callbacks are plain
  functions run by the binding's threads;
* :class:`TrioRunner` and :class:`AsyncioRunner` run their event loop in one
  background thread per test.  Each call is a task of that loop, awaited by
  the scenario's thread with a timeout; each object lives in a task of its
  own that holds its ``async with`` (so objects can be left in any order);
  callbacks are ``async def`` (or plain, if asked).

Inside a callback the scenario's action runs synchronously; the async
operations it asks for (``close``, ``send``, ``stop``, notes...) are queued
and awaited in order by the ``async def`` callback right after the action
returns, so ``side.close(); d.note(side, "closed")`` means the same on every
binding.  Reads (properties) inside an action happen at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import importlib
import inspect
import threading
import types
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, Final

import pytest
import trio

from ..ownership import is_jfsocket_code, is_jfsocket_task

__all__ = [
    "AVAILABLE",
    "BINDINGS",
    "CALL_TIMEOUT",
    "AsyncioRunner",
    "MemoryRunner",
    "Runner",
    "Step",
    "ThreadedRunner",
    "TrioRunner",
    "in_action",
    "make_runner",
]

#: The most seconds one call into a binding may take before the test fails.
CALL_TIMEOUT: Final = 10.0
#: A step an action asked for inside an async callback: run after the action, in order.
Step = Callable[[], object]
#: The steps queued by the action now running in this task (``None``: not in an action).
_PENDING: contextvars.ContextVar[list[Step] | None] = contextvars.ContextVar(
    "conformance_pending", default=None
)


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"jfsocket.bindings.{name}")
    except ImportError:
        return None


def _has_uvloop() -> bool:
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return False
    return True


#: Every runtime the suite knows, in the order tests are parametrised.
BINDINGS: Final = ("threaded", "trio", "asyncio", "uvloop", "memory")
#: Which of them can run here (the asyncio binding may not exist yet; uvloop is optional).
AVAILABLE: Final = {
    "threaded": True,
    "trio": True,
    "asyncio": _module("asyncio") is not None,
    "uvloop": _module("asyncio") is not None and _has_uvloop(),
    "memory": _module("memory") is not None,
}


def in_action() -> list[Step] | None:
    """The step queue of the action running in this task, if any."""
    return _PENDING.get()


class Runner:
    """The interface the scenario driver uses; see the module docstring."""

    #: The binding's module: ``TcpServer``, ``TcpClient``, ... come from it.
    module: Any
    name: str
    #: Plain sockets can talk to its objects (raw peers, listeners, ports).
    real_sockets = True
    #: Its calls are awaited and its lifetimes are ``async with`` blocks.
    asynchronous = True

    def call(self, method: Callable[..., Any], *args: object) -> Any:
        """Call a method that waits (async in async bindings) and return its result."""
        raise NotImplementedError

    def sync(self, fn: Callable[[], Any]) -> Any:
        """Run a synchronous piece of code (a constructor, a property, ``bind``) in the
        binding's own context."""
        raise NotImplementedError

    def enter(self, obj: object) -> None:
        """Begin *obj*'s lifetime (``async with``: for servers and receivers, that starts them)."""
        raise NotImplementedError

    def leave(self, obj: object) -> None:
        """End *obj*'s lifetime (``with``/``async with`` exit); returns when it is done."""
        raise NotImplementedError

    def entered(self, obj: object) -> bool:
        """Whether *obj*'s lifetime has begun and not ended."""
        raise NotImplementedError

    def callback(
        self,
        body: Callable[[tuple[object, ...]], None],
        enter: Callable[[object], None],
        leave: Callable[[object], None],
        *,
        plain: bool = False,
    ) -> Callable[..., object]:
        """A callback for the binding that runs *body* with the arguments it got.

        *enter*/*leave* bracket the whole callback (overlap detection); async
        runners make an ``async def`` unless *plain*.
        """
        raise NotImplementedError

    def close(self) -> list[str]:
        """End every lifetime still open and the runtime itself; returns the problems seen
        (tasks left behind)."""
        raise NotImplementedError


class ThreadedRunner(Runner):
    """The threaded binding: direct calls; ``with`` exit at the end of a lifetime."""

    name = "threaded"
    asynchronous = False

    def __init__(self) -> None:
        self.module = importlib.import_module("jfsocket.bindings.threaded")
        self._open: dict[int, object] = {}

    def call(self, method: Callable[..., Any], *args: object) -> Any:
        return method(*args)

    def sync(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def enter(self, obj: object) -> None:
        self._open[id(obj)] = obj  # ``with`` starts nothing: only the exit matters

    def leave(self, obj: object) -> None:
        if self._open.pop(id(obj), None) is not None:
            obj.__exit__(None, None, None)  # type: ignore[attr-defined]

    def entered(self, obj: object) -> bool:
        return id(obj) in self._open

    def callback(
        self,
        body: Callable[[tuple[object, ...]], None],
        enter: Callable[[object], None],
        leave: Callable[[object], None],
        *,
        plain: bool = False,
    ) -> Callable[..., object]:
        def callback(*args: object) -> None:
            source = args[0] if args else None
            enter(source)
            try:
                body(args)
            finally:
                leave(source)

        return callback

    def close(self) -> list[str]:
        problems: list[str] = []
        for obj in reversed(list(self._open.values())):
            try:
                self.leave(obj)
            except Exception as exc:  # keep closing the others
                problems.append(f"leaving {obj!r} raised {exc!r}")
        return problems


class _LoopRunner(Runner):
    """What the trio and asyncio runners share: a loop thread, calls as tasks, owner tasks."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"conformance {self.name} loop", daemon=True
        )
        self._loop_ident: int | None = None
        self._owners: dict[int, tuple[object, Any, concurrent.futures.Future[None]]] = {}
        self._problems: list[str] = []
        self._crash: BaseException | None = None
        self._thread.start()
        if not self._ready.wait(CALL_TIMEOUT):
            pytest.fail(f"the {self.name} loop did not start", pytrace=False)
        if self._crash is not None:
            raise self._crash

    # -- to be provided ------------------------------------------------------------

    def _run_loop(self) -> None:
        raise NotImplementedError

    def _post(self, fn: Callable[[], object]) -> None:
        """Run *fn* soon in the loop thread (thread-safe, does not wait)."""
        raise NotImplementedError

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """In the loop thread: start a task running *fn*."""
        raise NotImplementedError

    def _new_event(self) -> Any:
        raise NotImplementedError

    async def _checkpoint(self) -> None:
        raise NotImplementedError

    def _leftover_tasks(self) -> list[str]:
        raise NotImplementedError

    def _request_stop(self) -> None:
        raise NotImplementedError

    # -- the loop thread -------------------------------------------------------------

    def _thread_main(self) -> None:
        self._loop_ident = threading.get_ident()
        try:
            self._run_loop()
        except BaseException as exc:
            self._crash = exc
            self._ready.set()

    def _in_loop(self) -> bool:
        return threading.get_ident() == self._loop_ident

    def _wait(self, future: concurrent.futures.Future[Any], what: str) -> Any:
        try:
            return future.result(CALL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            pytest.fail(
                f"{self.name}: {what} did not return within {CALL_TIMEOUT:g} s", pytrace=False
            )

    # -- Runner ----------------------------------------------------------------------

    def call(self, method: Callable[..., Any], *args: object) -> Any:
        pending = _PENDING.get()
        if pending is not None:
            pending.append(lambda: method(*args))
            return None
        if self._in_loop():
            raise RuntimeError("a blocking call from the loop thread outside an action")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def task() -> None:
            try:
                result = await method(*args)
            except Exception as exc:
                future.set_exception(exc)
            except BaseException as exc:  # cancelled at shutdown: say so, and obey
                future.set_exception(exc)
                raise
            else:
                future.set_result(result)

        self._post(lambda: self._spawn(task))
        return self._wait(future, getattr(method, "__qualname__", repr(method)))

    def sync(self, fn: Callable[[], Any]) -> Any:
        if self._in_loop():
            return fn()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

        self._post(run)
        return self._wait(future, "a synchronous call")

    def enter(self, obj: object) -> None:
        entered: concurrent.futures.Future[None] = concurrent.futures.Future()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def own() -> None:
            leave = self._new_event()
            inside = False
            try:
                async with obj:  # type: ignore[attr-defined]
                    inside = True
                    self._owners[id(obj)] = (obj, leave, done)
                    entered.set_result(None)
                    await leave.wait()
            except Exception as exc:
                (done if inside else entered).set_exception(exc)
            except BaseException as exc:
                (done if inside else entered).set_exception(exc)
                raise
            else:
                done.set_result(None)

        self._post(lambda: self._spawn(own))
        self._wait(entered, f"entering {type(obj).__name__}")

    def leave(self, obj: object) -> None:
        owner = self._owners.pop(id(obj), None)
        if owner is None:
            return
        _, leave, done = owner
        self._post(leave.set)
        self._wait(done, f"leaving {type(obj).__name__}")

    def entered(self, obj: object) -> bool:
        return id(obj) in self._owners

    def callback(
        self,
        body: Callable[[tuple[object, ...]], None],
        enter: Callable[[object], None],
        leave: Callable[[object], None],
        *,
        plain: bool = False,
    ) -> Callable[..., object]:
        if plain:

            def plain_callback(*args: object) -> None:
                source = args[0] if args else None
                enter(source)
                pending: list[Step] = []
                token = _PENDING.set(pending)
                try:
                    body(args)
                finally:
                    _PENDING.reset(token)
                    leave(source)
                # A plain callback cannot await: its action may only record and read.
                assert not pending, "an action needing awaits was bound as a plain callback"

            return plain_callback

        async def async_callback(*args: object) -> None:
            source = args[0] if args else None
            enter(source)
            try:
                # Yield first: a binding that ran another callback of this object
                # meanwhile would be caught by ``enter``.
                await self._checkpoint()
                pending: list[Step] = []
                token = _PENDING.set(pending)
                try:
                    body(args)
                finally:
                    _PENDING.reset(token)
                for step in pending:
                    result = step()
                    if inspect.isawaitable(result):
                        await result
            finally:
                leave(source)

        return async_callback

    def close(self) -> list[str]:
        problems: list[str] = []
        for obj, _, _ in reversed(list(self._owners.values())):
            try:
                self.leave(obj)
            except BaseException as exc:  # keep closing the others
                problems.append(f"leaving {obj!r} raised {exc!r}")
        done: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        self._post(lambda: done.set_result(self._leftover_tasks()))
        try:
            problems += [f"task left behind: {t}" for t in done.result(CALL_TIMEOUT)]
        except concurrent.futures.TimeoutError:
            problems.append("the loop did not answer at shutdown")
        self._post(self._request_stop)
        self._thread.join(CALL_TIMEOUT)
        if self._thread.is_alive():
            problems.append(f"the {self.name} loop thread did not end")
        if self._crash is not None:
            problems.append(f"the {self.name} loop crashed: {self._crash!r}")
        return problems + self._problems


class TrioRunner(_LoopRunner):
    """The trio binding, its ``trio.run`` in a background thread."""

    name = "trio"

    def __init__(self) -> None:
        self.module = importlib.import_module("jfsocket.bindings.trio")
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        super().__init__()

    def _run_loop(self) -> None:
        trio.run(self._main)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()  # calls still waiting (a test that failed)

    def _post(self, fn: Callable[[], object]) -> None:
        assert self._token is not None
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn)

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn)

    def _new_event(self) -> trio.Event:
        return trio.Event()

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def _request_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _leftover_tasks(self) -> list[str]:
        root = trio.lowlevel.current_root_task()
        assert root is not None
        found: list[str] = []
        todo = [root]
        while todo:
            task = todo.pop()
            for nursery in task.child_nurseries:
                for child in nursery.child_tasks:
                    todo.append(child)
                    if is_jfsocket_task(child):
                        found.append(child.name)
        return found


class AsyncioRunner(_LoopRunner):
    """The asyncio binding, its loop (asyncio's own, or uvloop's) in a background thread."""

    def __init__(self, *, uvloop: bool = False) -> None:
        self.name = "uvloop" if uvloop else "asyncio"
        self.module = importlib.import_module("jfsocket.bindings.asyncio")
        self._uvloop = uvloop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        super().__init__()

    def _run_loop(self) -> None:
        # Not asyncio.run(loop_factory=...): that is 3.12+, and we support 3.10.
        if self._uvloop:
            loop: asyncio.AbstractEventLoop = importlib.import_module("uvloop").new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                leftovers = asyncio.all_tasks(loop)
                for task in leftovers:
                    task.cancel()
                if leftovers:
                    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()

    def _post(self, fn: Callable[[], object]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(fn)

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        assert self._loop is not None

        async def run() -> None:
            await fn()

        self._loop.create_task(run())

    def _new_event(self) -> asyncio.Event:
        return asyncio.Event()

    async def _checkpoint(self) -> None:
        await asyncio.sleep(0)

    def _request_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _leftover_tasks(self) -> list[str]:
        current = asyncio.current_task()
        found = []
        for task in asyncio.all_tasks():
            if task is current:
                continue
            code = getattr(task.get_coro(), "cr_code", None)
            # Every task still alive at this point is a leak, ours or the binding's,
            # except the main task waiting for the stop signal.
            if code is not None and code.co_name == "_main" and not is_jfsocket_code(code):
                continue
            found.append(repr(task))
        return found


class MemoryRunner(ThreadedRunner):
    """The memory binding: the threaded runner's direct calls, on one virtual
    :class:`~jfsocket.bindings.memory.Network` per test.  The network runs
    after every call made from the scenario (as a real one would meanwhile),
    and a wait runs it, moving its clock to each next deadline, until the
    condition holds or the wait's timeout has passed on the virtual clock.
    Plain peers and listeners are bare virtual sockets (:mod:`.memory_raw`);
    what needs the OS's sockets, or threads blocking on them, is skipped
    (``Driver.real_sockets``)."""

    name = "memory"
    real_sockets = False

    def __init__(self) -> None:
        memory = importlib.import_module("jfsocket.bindings.memory")
        self.net = memory.Network()
        self.module = types.SimpleNamespace(
            __name__=memory.__name__,
            **{name: getattr(memory, name) for name in memory.__all__},
        )
        for cls in ("TcpServer", "TcpClient", "CastReceiver", "CastSender"):
            setattr(self.module, cls, functools.partial(getattr(memory, cls), network=self.net))
        self._open = {}

    def call(self, method: Callable[..., Any], *args: object) -> Any:
        result = method(*args)
        self.net.settle()
        server: Any = getattr(method, "__self__", None)
        if getattr(method, "__name__", "") == "stop" and hasattr(server, "clients"):
            # A threaded stop(grace) returns once its grace period is over: the
            # time it blocks passes here on the virtual clock.
            self.wait(lambda: not server.clients, CALL_TIMEOUT)
            self.net.settle()
        return result

    def wait(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Run the network until *predicate* holds; ``False`` once *timeout*
        virtual seconds passed, or nothing is left to happen, without it."""
        net = self.net
        end = net.now + timeout
        while not predicate():
            if net.running:  # a wait from inside a callback cannot run the network
                return False
            if net.due():
                net.run()
                continue
            due = net.next_time()
            if due is None or due > end:
                return bool(predicate())
            net.advance(due - net.now)
        return True

    def closed_port(self) -> int:
        """A port nobody listens on (the virtual hosts use none below 49152)."""
        return 9

    def raw_connect(self, address: tuple[str, int], label: str, rcvbuf: int | None) -> Any:
        """A plain peer connected to *address*: a bare virtual socket (see memory_raw)."""
        from .memory_raw import VirtualPeer

        sock = self.net.connect(self.net.localhost, address[0], address[1])
        self.net.settle()
        return VirtualPeer(self.net, sock, label, rcvbuf)

    def raw_listener(self, label: str, rcvbuf: int | None) -> Any:
        """A plain listener on the network's localhost (see memory_raw)."""
        from .memory_raw import VirtualListener

        return VirtualListener(self.net, label, rcvbuf)

    def close(self) -> list[str]:
        problems = super().close()
        self.net.settle()
        return problems


def make_runner(name: str) -> Runner:
    """A runner for the binding called *name* (one of :data:`BINDINGS`)."""
    if name == "threaded":
        return ThreadedRunner()
    if name == "trio":
        return TrioRunner()
    if name in ("asyncio", "uvloop"):
        return AsyncioRunner(uvloop=name == "uvloop")
    if name == "memory":
        return MemoryRunner()
    raise ValueError(f"unknown binding {name!r}")
