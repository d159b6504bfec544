"""What the ``jfsocket`` commands share: the printer of events, the async
runtimes (the binding's classes and the few tools trio and asyncio spell
differently), waiting for a signal, and the argument checkers (each a thin
wrapper of the core's validator, so the rules stay the core's).
"""

from __future__ import annotations

import abc
import argparse
import concurrent.futures
import contextlib
import ipaddress
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from jfsocket.bindings._interfaces import host_interfaces
from jfsocket.core import (
    EventTypes,
    InterfaceSpec,
    SenderModel,
    SocketError,
    validate_encoding,
    validate_port,
    validate_timeout,
)
from jfsocket.core.interfaces import resolve_interfaces, validate_interface_spec

if TYPE_CHECKING:
    from jfsocket.bindings import asyncio as asyncio_binding
    from jfsocket.bindings import trio as trio_binding


class Common(Protocol):
    """Adds the options every command takes (``--runtime``, ``--encoding``, ...)."""

    def __call__(
        self, p: argparse.ArgumentParser, *, data: bool = True, framing: bool = False
    ) -> None: ...


_LOOPBACK = "127.0.0.1"
_DEMO_GROUP = "239.255.77.1"
_RUNTIMES = ("threaded", "trio", "asyncio")
_LOOPS = ("asyncio", "uvloop")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_COLOURS = {
    "STARTED": "32",
    "STOPED": "32",
    "CONNECTED": "36",
    "DISCONNECT": "36",
    "RECEIVED": "33",
    "SENDED": "34",
    "SENDFAIL": "31",
}
_T = TypeVar("_T")


def _show(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]}:{value[1]}"
    if isinstance(value, (str, bytes)):
        return repr(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return type(value).__name__


class Printer:
    """Prints events as aligned lines (coloured on a terminal), one at a time."""

    def __init__(self, out: TextIO, *, colour: bool | None = None) -> None:
        self._out = out
        self._colour = out.isatty() if colour is None else colour
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self.broken = False

    def line(self, who: str, what: str, detail: str = "") -> None:
        """One line: elapsed time, who, what, detail."""
        stamp = f"{time.monotonic() - self._start:7.3f}"
        label = f"{what:<10}"
        if self._colour and what in _COLOURS:
            label = f"\x1b[{_COLOURS[what]}m{label}\x1b[0m"
        with self._lock:
            if self.broken:
                return
            try:
                print(f"{stamp}  {who:<9} {label} {detail}".rstrip(), file=self._out, flush=True)
            except BrokenPipeError:  # `jfsocket demo | head`: the reader left; go on quietly
                self.broken = True

    def callbacks(self, who: str, keys: Sequence[EventTypes]) -> dict[EventTypes | str, Any]:
        """An ``evts`` mapping that prints each of *keys* for *who*."""

        def make(key: EventTypes) -> Callable[..., None]:
            def callback(*args: object) -> None:
                # The first argument is the object itself; the rest say what happened.
                self.line(who, key.name, "  ".join(_show(a) for a in args[1:]))

            return callback

        return {key: make(key) for key in keys}


def _chain(*callbacks: Callable[..., object]) -> Callable[..., None]:
    """One callback that calls each of *callbacks* with the same arguments."""

    def run(*args: object) -> None:
        for callback in callbacks:
            callback(*args)

    return run


_E = EventTypes
_SERVER_KEYS = (_E.STARTED, _E.STOPED, _E.CONNECTED, _E.DISCONNECT, _E.RECEIVED, _E.SENDFAIL)
_CLIENT_KEYS = (_E.CONNECTED, _E.DISCONNECT, _E.RECEIVED, _E.SENDED, _E.SENDFAIL)
_RECEIVER_KEYS = (_E.STARTED, _E.STOPED, _E.RECEIVED)
_SENDER_KEYS = (_E.SENDED, _E.SENDFAIL)


# -- the async runtimes ----------------------------------------------------------


_Main = Callable[[], Coroutine[Any, Any, None]]


class _Semaphore(Protocol):
    def release(self) -> None: ...
    def acquire(self) -> Awaitable[object]: ...


class _Event(Protocol):
    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self) -> Awaitable[object]: ...


def _only_interrupts(exc: BaseException) -> bool:
    """*exc* is a KeyboardInterrupt, or a group of nothing else (as trio raises them)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner: Sequence[BaseException] = getattr(exc, "exceptions", ())
    return bool(inner) and all(_only_interrupts(e) for e in inner)


class _AsyncRuntime(abc.ABC):
    """A binding's four classes, and the tools its runtime spells its own way."""

    TcpServer: type[trio_binding.TcpServer | asyncio_binding.TcpServer]
    TcpClient: type[trio_binding.TcpClient | asyncio_binding.TcpClient]
    CastReceiver: type[trio_binding.CastReceiver | asyncio_binding.CastReceiver]
    CastSender: type[trio_binding.CastSender | asyncio_binding.CastSender]
    #: What the runtime raises when a deadline passes.
    _too_slow: type[BaseException]

    def run(self, main: _Main) -> None:
        """Run ``main()`` to its end; Ctrl-C at any moment is a clean end, not a traceback."""
        try:
            self._run(main)
        except BaseException as exc:
            if not _only_interrupts(exc):
                raise

    async def within(self, seconds: float, work: Awaitable[_T]) -> _T:
        """Await *work*, cancelled with a TimeoutError once *seconds* have passed."""
        try:
            return await self._within(seconds, work)
        except self._too_slow:
            raise TimeoutError(f"timed out after {seconds:g} s") from None

    @abc.abstractmethod
    def _run(self, main: _Main) -> None: ...

    @abc.abstractmethod
    async def _within(self, seconds: float, work: Awaitable[_T]) -> _T: ...

    async def unless(self, event: _Event, work: Callable[[], Awaitable[_T]]) -> _T | None:
        """``await work()``, or None if *event* is set first (then *work* is cancelled)."""
        if event.is_set():
            return None
        return await self._unless(event, work)

    @abc.abstractmethod
    async def _unless(self, event: _Event, work: Callable[[], Awaitable[_T]]) -> _T | None: ...

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* (none if 0 or less)."""

    @abc.abstractmethod
    def semaphore(self) -> _Semaphore:
        """A semaphore at 0: callbacks release it, the command acquires it."""

    @abc.abstractmethod
    def event(self) -> _Event:
        """An event, set by callbacks, awaited by the command."""

    @abc.abstractmethod
    async def in_thread(self, function: Callable[..., _T], *args: object) -> _T:
        """``function(*args)`` in a daemon thread; cancelled, this returns and abandons it."""

    @abc.abstractmethod
    def stop_signals(
        self,
    ) -> contextlib.AbstractAsyncContextManager[Callable[[], Awaitable[object]]]:
        """SIGINT and SIGTERM are caught in the block, which gets a function awaiting one."""


class _TrioRuntime(_AsyncRuntime):
    def __init__(self) -> None:
        import trio
        from jfsocket.bindings import trio as binding

        self._trio = trio
        self._too_slow = trio.TooSlowError
        self.TcpServer, self.TcpClient = binding.TcpServer, binding.TcpClient
        self.CastReceiver, self.CastSender = binding.CastReceiver, binding.CastSender

    def _run(self, main: _Main) -> None:
        self._trio.run(main)

    async def _within(self, seconds: float, work: Awaitable[_T]) -> _T:
        with self._trio.fail_after(seconds):
            return await work

    async def _unless(self, event: _Event, work: Callable[[], Awaitable[_T]]) -> _T | None:
        done: list[_T] = []
        failed: list[Exception] = []
        async with self._trio.open_nursery() as nursery:

            async def run() -> None:
                try:
                    done.append(await work())
                except Exception as exc:  # raised below as itself, not in an ExceptionGroup
                    failed.append(exc)
                nursery.cancel_scope.cancel()

            async def watch() -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            nursery.start_soon(watch)
        if failed:
            raise failed[0]
        return done[0] if done else None

    async def sleep(self, seconds: float) -> None:
        await self._trio.sleep(max(0.0, seconds))

    def semaphore(self) -> _Semaphore:
        return self._trio.Semaphore(0)

    def event(self) -> _Event:
        return self._trio.Event()

    async def in_thread(self, function: Callable[..., _T], *args: object) -> _T:
        return await self._trio.to_thread.run_sync(function, *args, abandon_on_cancel=True)

    @contextlib.asynccontextmanager
    async def stop_signals(self) -> AsyncIterator[Callable[[], Awaitable[object]]]:
        with self._trio.open_signal_receiver(*_STOP_SIGNALS) as signals:

            async def signalled() -> None:
                async for _ in signals:
                    return

            yield signalled


class _AsyncioRuntime(_AsyncRuntime):
    def __init__(self, loop: str) -> None:
        import asyncio

        from jfsocket.bindings import asyncio as binding

        self._asyncio = asyncio
        self._loop = loop
        self._too_slow = asyncio.TimeoutError  # before 3.11 not the built-in TimeoutError
        self.TcpServer, self.TcpClient = binding.TcpServer, binding.TcpClient
        self.CastReceiver, self.CastSender = binding.CastReceiver, binding.CastSender

    def _run(self, main: _Main) -> None:
        if self._loop == "uvloop":
            import uvloop

            uvloop.run(main())
        else:
            self._asyncio.run(main())

    async def _within(self, seconds: float, work: Awaitable[_T]) -> _T:
        return await self._asyncio.wait_for(work, seconds)

    async def _unless(self, event: _Event, work: Callable[[], Awaitable[_T]]) -> _T | None:
        asyncio = self._asyncio

        async def run() -> _T:
            return await work()

        async def watch() -> None:
            await event.wait()

        task, watcher = asyncio.ensure_future(run()), asyncio.ensure_future(watch())
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, watcher):
                pending.cancel()  # a no-op on the one that finished
        await asyncio.gather(task, watcher, return_exceptions=True)  # reap the cancelled one
        if task.cancelled():
            return None
        result: _T = task.result()
        return result

    async def sleep(self, seconds: float) -> None:
        await self._asyncio.sleep(max(0.0, seconds))

    def semaphore(self) -> _Semaphore:
        return self._asyncio.Semaphore(0)

    def event(self) -> _Event:
        return self._asyncio.Event()

    async def in_thread(self, function: Callable[..., _T], *args: object) -> _T:
        # Not run_in_executor or to_thread: the interpreter joins their threads
        # at exit, so a readline nobody answers would hold the process after Ctrl-C.
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def work() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except Exception as exc:  # handed to the awaiting task
                    future.set_exception(exc)

        threading.Thread(target=work, name="jfsocket-cli", daemon=True).start()
        return await self._asyncio.wrap_future(future)

    @contextlib.asynccontextmanager
    async def stop_signals(self) -> AsyncIterator[Callable[[], Awaitable[object]]]:
        loop = self._asyncio.get_running_loop()
        stop = self._asyncio.Event()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, stop.set)
        try:
            yield stop.wait
        finally:
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)


def _async_runtime(args: argparse.Namespace) -> _AsyncRuntime:
    if args.runtime == "trio":
        return _TrioRuntime()
    return _AsyncioRuntime(args.loop or "asyncio")


@contextlib.contextmanager
def _until_interrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the block (cleanly: its ``with`` objects stop)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Waiting:
    """Where Ctrl-C and SIGTERM may interrupt the threaded client: only while it waits."""

    def __init__(self) -> None:
        self.active = False
        self.interrupted = False

    def __enter__(self) -> None:
        if self.interrupted:  # it came while we were busy: stop now
            raise KeyboardInterrupt
        self.active = True

    def __exit__(self, *exc: object) -> bool:
        self.active = False
        return exc[0] is KeyboardInterrupt  # an interrupted wait ends the block

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Library calls run with interrupts deferred to the next wait."""
        self.active = False
        try:
            yield
        finally:
            self.active = True
        if self.interrupted:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_while_waiting() -> Iterator[_Waiting]:
    """Signals raise KeyboardInterrupt only inside ``with waiting:`` (stdin, linger),
    never in the middle of a library call, which a thread-blind exception could
    leave half done; one arriving elsewhere is kept for the next wait."""
    waiting = _Waiting()

    def interrupt(signum: int, frame: object) -> None:
        waiting.interrupted = True
        if waiting.active:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield waiting
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_forever() -> None:
    """Block until a signal handler raises (short waits: none is missed)."""
    idle = threading.Event()
    while not idle.wait(0.2):
        pass


def _ip_version(text: object) -> int | None:
    """4 or 6 for an IP address, else None (a name, an index)."""
    try:
        return ipaddress.ip_address(str(text)).version
    except ValueError:
        return None


# -- arguments -------------------------------------------------------------------


def _checked(check: Callable[[Any], _T], parse: Callable[[str], Any] = str) -> Callable[[str], _T]:
    """An argparse ``type=``: the core's validator *check* of ``parse(text)``.

    What it raises (TypeError, ValueError, SocketError) becomes argparse's
    error: exit 2, one line naming the argument; the rules stay the core's.
    """

    def convert(text: str) -> _T:
        try:
            return check(parse(text))
        except SocketError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _remote_port(port: object) -> int:
    value = validate_port(port)
    if value == 0:
        raise ValueError("port 0 can be listened on, not sent or connected to")
    return value


def _ttl(ttl: object) -> int:
    """The sender's TTL, checked by the core's sender model (the rule lives there)."""
    return SenderModel(None, ttl=ttl).ttl


def _interface(text: str) -> InterfaceSpec:
    """An ``--interface``: an index (digits), or an address or a name; one this host has."""
    spec = validate_interface_spec(int(text) if text.isdigit() else text)
    if spec not in (0, "0.0.0.0", "::"):
        try:
            resolve_interfaces(spec, _ip_version(spec) or 4, host_interfaces)
        except SocketError as exc:
            raise ValueError(str(exc.err)) from None
    return spec


def _at_least(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number in *low*-*high*."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be in {low}-{high}, got {value}")
        return value

    return _checked(check, _integer)


def _encoding(text: str) -> str | None:
    return None if text.lower() in ("none", "bytes") else validate_encoding(text)


def _idle_timeout(value: object) -> float | None:
    return validate_timeout(value, "idle timeout")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"seconds must be 0 or more, got {text!r}")
    return value


_PORT = _checked(validate_port, _integer)
_REMOTE_PORT = _checked(_remote_port, _integer)
