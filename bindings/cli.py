"""The ``jfsocket`` command: the seed's Server.py, Client.py and Multicast.py.

``jfsocket demo`` runs a server, a client and a multicast pair on loopback and
prints every event; ``server``, ``client`` and ``cast listen|send`` are small
tools built on the same objects, on the threaded, the trio or the asyncio
binding (asyncio on its own loop or on uvloop).

The async commands are written once, against :class:`_AsyncRuntime`: the
binding's four classes and the few tools trio and asyncio spell differently.
A runtime's modules are imported only when it is chosen.
"""

from __future__ import annotations

import abc
import argparse
import concurrent.futures
import contextlib
import io
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from jfsocket.bindings import threaded
from jfsocket.core import (
    MAX_DATAGRAM,
    Address,
    ErrorCode,
    EventTypes,
    SenderModel,
    SocketError,
    parse_group,
    validate_encoding,
    validate_host,
    validate_ip,
    validate_port,
    validate_recv_buffer,
    validate_timeout,
)

from ._cli_tls import add_client_options, add_server_options, client_context, server_context

if TYPE_CHECKING:
    from jfsocket.bindings import asyncio as asyncio_binding
    from jfsocket.bindings import trio as trio_binding

__all__ = ["main"]

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


if TYPE_CHECKING:
    _AsyncClient = trio_binding.TcpClient | asyncio_binding.TcpClient
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


def _gone(exc: SocketError) -> bool:
    """*exc* says the connection has gone (1001): a reply to it has nowhere to go."""
    return exc.errno == ErrorCode.NOT_CONNECTED


def _echo(
    print_received: Callable[..., object], answer: Callable[[Any], Any]
) -> Callable[..., None]:
    """A threaded RECEIVED callback: print, then send ``answer(data)`` back.

    Data can still be delivered after its connection has gone (the remote
    vanished, the server is stopping); the reply is then dropped, its
    DISCONNECT line already says why.
    """

    def echo(client: threaded.TcpClient, data: str | bytes) -> None:
        print_received(client, data)
        try:
            client.send(answer(data))
        except SocketError as exc:
            if not _gone(exc):
                raise

    return echo


def _async_echo(
    print_received: Callable[..., object], answer: Callable[[Any], Any]
) -> Callable[..., Awaitable[None]]:
    """An async RECEIVED callback: print, then send ``answer(data)`` back (as :func:`_echo`)."""

    async def echo(client: _AsyncClient, data: str | bytes) -> None:
        print_received(client, data)
        try:
            await client.send(answer(data))
        except SocketError as exc:
            if not _gone(exc):
                raise

    return echo


# -- demo ------------------------------------------------------------------------


def _demo_threaded(printer: Printer, timeout: float) -> None:
    replies: queue.Queue[object] = queue.Queue()
    server_evts = printer.callbacks("server", _SERVER_KEYS)
    server_evts[_E.RECEIVED] = _echo(server_evts[_E.RECEIVED], "echo: {}".format)
    client_evts = printer.callbacks("client", _CLIENT_KEYS)
    print_reply = client_evts[_E.RECEIVED]
    client_evts[_E.RECEIVED] = _chain(print_reply, lambda c, d: replies.put(d))
    with threaded.TcpServer(_LOOPBACK, 0, evts=server_evts, framing="line") as server:
        server.start()
        with threaded.TcpClient(evts=client_evts, framing="line") as client:
            client.connect(*server.host)
            for text in ("hello, server", "你好"):
                client.send(text)
                replies.get(timeout=timeout)
            server.send("a word from the server to everyone")
            replies.get(timeout=timeout)
    heard: queue.Queue[object] = queue.Queue()
    receiver_evts = printer.callbacks("receiver", _RECEIVER_KEYS)
    print_heard = receiver_evts[_E.RECEIVED]
    receiver_evts[_E.RECEIVED] = _chain(print_heard, lambda r, d: heard.put(d))
    with threaded.CastReceiver(("0.0.0.0", 0), evts=receiver_evts, interface=_LOOPBACK) as receiver:
        receiver.joinGroup(_DEMO_GROUP)
        receiver.start()
        with threaded.CastSender(
            evts=printer.callbacks("sender", _SENDER_KEYS), ttl=0, interface=_LOOPBACK
        ) as sender:
            for text in ("datagram one", "datagram two"):
                sender.send((_DEMO_GROUP, receiver.host[1]), text)
                heard.get(timeout=timeout)


async def _demo_async(runtime: _AsyncRuntime, printer: Printer) -> None:
    replies = runtime.semaphore()
    server_evts = printer.callbacks("server", _SERVER_KEYS)
    server_evts[_E.RECEIVED] = _async_echo(server_evts[_E.RECEIVED], "echo: {}".format)
    client_evts = printer.callbacks("client", _CLIENT_KEYS)
    print_reply = client_evts[_E.RECEIVED]
    client_evts[_E.RECEIVED] = _chain(print_reply, lambda c, d: replies.release())
    async with (
        runtime.TcpServer(_LOOPBACK, 0, evts=server_evts, framing="line") as server,
        runtime.TcpClient(evts=client_evts, framing="line") as client,
    ):
        await client.connect(*server.host)
        for text in ("hello, server", "你好"):
            await client.send(text)
            await replies.acquire()
        await server.send("a word from the server to everyone")
        await replies.acquire()
    heard = runtime.semaphore()
    receiver_evts = printer.callbacks("receiver", _RECEIVER_KEYS)
    print_heard = receiver_evts[_E.RECEIVED]
    receiver_evts[_E.RECEIVED] = _chain(print_heard, lambda r, d: heard.release())
    async with (
        runtime.CastReceiver(("0.0.0.0", 0), evts=receiver_evts, interface=_LOOPBACK) as receiver,
        runtime.CastSender(
            evts=printer.callbacks("sender", _SENDER_KEYS), ttl=0, interface=_LOOPBACK
        ) as sender,
    ):
        receiver.joinGroup(_DEMO_GROUP)
        for text in ("datagram one", "datagram two"):
            await sender.send((_DEMO_GROUP, receiver.host[1]), text)
            await heard.acquire()


def _runtime_name(args: argparse.Namespace) -> str:
    return "asyncio on uvloop" if args.loop == "uvloop" else str(args.runtime)


def _cmd_demo(args: argparse.Namespace, printer: Printer) -> int:
    printer.line("demo", "", f"jfsocket on {_runtime_name(args)}, loopback only (multicast TTL 0)")
    if args.runtime == "threaded":
        _demo_threaded(printer, args.timeout)
    else:
        runtime = _async_runtime(args)
        runtime.run(lambda: runtime.within(args.timeout, _demo_async(runtime, printer)))
    printer.line("demo", "", "done")
    return 0


# -- server, client --------------------------------------------------------------


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


def _cmd_server(args: argparse.Namespace, printer: Printer) -> int:
    options = {**_connection_options(args), "ssl": server_context(args)}
    evts = printer.callbacks("server", _SERVER_KEYS)
    if args.runtime != "threaded":
        runtime = _async_runtime(args)
        if args.echo:
            evts[_E.RECEIVED] = _async_echo(evts[_E.RECEIVED], lambda data: data)

        async def serve() -> None:
            async with (
                runtime.stop_signals() as signalled,
                runtime.TcpServer(args.ip, args.port, evts=evts, **options) as server,
            ):
                printer.line("server", "LISTENING", _show(server.host))
                await signalled()

        runtime.run(serve)
        return 0
    if args.echo:
        evts[_E.RECEIVED] = _echo(evts[_E.RECEIVED], lambda data: data)
    with (
        _until_interrupted(),
        threaded.TcpServer(args.ip, args.port, evts=evts, **options) as server,
    ):
        server.start()
        printer.line("server", "LISTENING", _show(server.host))
        _wait_forever()
    return 0


#: The most bytes one read of a binary stdin takes (a read returns what there is).
_CHUNK = 65536
#: What the client's inbox holds once the connection has gone.
_GONE = object()
#: ... once it is up again (``--reconnect``), and once it is down but redialing.
_UP = object()
_DOWN = object()
_LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n"}


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TcpClient keywords the command line sets."""
    return {
        **_connection_options(args),
        "reconnect": True if args.reconnect else None,
        "ssl": client_context(args),
    }


def _connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TcpServer/TcpClient keywords the command line sets."""
    options: dict[str, Any] = {
        "encoding": args.encoding,
        "framing": args.framing,
        "idle_timeout": args.idle_timeout,
        "keepalive": args.keepalive,
    }
    if args.line_ending is not None:
        options["line_ending"] = _LINE_ENDINGS[args.line_ending]
    return options


class _ClientStreams:
    """The client's stdin and, with ``--quiet``, its stdout.

    Bytes pass exactly: ``--encoding none`` reads ``sys.stdin.buffer`` and
    writes ``sys.stdout.buffer``; with an encoding, stdin is read as text
    whose undecodable bytes go on as themselves (surrogateescape, the
    library's rule for received text), and received text is written with
    the connection's encoding and the same handler, so bytes round-trip.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._encoding: str | None = args.encoding
        self._framing: str = args.framing or "raw"
        self.broken = False
        #: Called when stdout's reader has left (the command then ends).
        self.on_broken: Callable[[], object] = lambda: None
        if self._encoding is not None and isinstance(sys.stdin, io.TextIOWrapper):
            sys.stdin.reconfigure(errors="surrogateescape")

    def read(self) -> str | bytes:
        """The next piece of stdin, empty at its end: a line, or raw what one read gives."""
        piece: str | bytes
        if self._encoding is None:
            stdin = sys.stdin.buffer
            if self._framing != "raw":
                piece = stdin.readline()
            elif isinstance(stdin, io.BufferedReader):
                piece = stdin.read1(_CHUNK)  # what there is: no wait for a whole chunk
            else:  # pragma: no cover - a replaced stdin
                piece = os.read(stdin.fileno(), _CHUNK)
        else:
            # Under raw framing a line is only a convenient piece: bound it.
            piece = sys.stdin.readline(_CHUNK if self._framing == "raw" else -1)
        return piece

    def message(self, piece: str | bytes) -> str | bytes:
        """What to send for *piece*: itself, or under framing the line without its end."""
        if self._framing == "raw":
            return piece
        if isinstance(piece, str):
            return piece.removesuffix("\n").removesuffix("\r")
        return piece.removesuffix(b"\n").removesuffix(b"\r")

    def write(self, client: object, data: str | bytes) -> None:
        """A RECEIVED callback for ``--quiet``: *data* to stdout, as it arrived."""
        if self.broken:
            return
        if isinstance(data, str):  # only with an encoding
            data = data.encode(self._encoding or "", "surrogateescape")
        if self._framing == "line":
            data += b"\n"  # the framer took the line end off
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # `jfsocket client -q ... | head`: the reader left
            self.broken = True
            self.on_broken()


class _ClientOutcome:
    """What decides the client's exit status: input that did not reach the server."""

    def __init__(self) -> None:
        self.failed = 0
        self.refused: SocketError | None = None

    def send_failed(self, *args: object) -> None:
        """A SENDFAIL callback."""
        self.failed += 1

    def status(self) -> int:
        """0, or 1 after one line on stderr saying what was lost."""
        if self.refused is not None:
            print(f"jfsocket: error {self.refused}; input from there on not sent", file=sys.stderr)
            return 1
        if self.failed:
            lost = f"{self.failed} send{'s' if self.failed > 1 else ''}"
            print(f"jfsocket: {lost} of the input failed (SENDFAIL)", file=sys.stderr)
            return 1
        return 0


def _client_evts(
    args: argparse.Namespace, printer: Printer, streams: _ClientStreams, outcome: _ClientOutcome
) -> dict[EventTypes | str, Any]:
    """The client's callbacks: the event log, or with ``--quiet`` data to stdout, events to
    stderr."""
    if args.quiet:
        printer = Printer(sys.stderr, colour=_colour())
        evts = printer.callbacks("client", (_E.CONNECTED, _E.DISCONNECT, _E.SENDFAIL))
        evts[_E.RECEIVED] = streams.write
    else:
        evts = printer.callbacks("client", _CLIENT_KEYS)
    evts[_E.SENDFAIL] = _chain(evts[_E.SENDFAIL], outcome.send_failed)
    return evts


def _take(inbox: queue.Queue[_T], timeout: float | None = None) -> _T | None:
    """The next item of *inbox*, or ``None`` after *timeout* seconds (short waits: no
    signal is missed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if wait <= 0:
            return None
        with contextlib.suppress(queue.Empty):
            return inbox.get(timeout=wait)


class _StdinReader:
    """Reads stdin in a daemon thread, one piece per :meth:`more`, into *inbox*.

    The main thread waits on the inbox, where DISCONNECT puts :data:`_GONE`
    too, so a server that leaves ends the client at once; the read still
    blocked on a silent stdin is abandoned with its thread at exit.
    """

    def __init__(self, read: Callable[[], str | bytes], inbox: queue.Queue[object]) -> None:
        self._wanted = threading.Semaphore(0)
        self._read, self._inbox = read, inbox
        threading.Thread(target=self._run, name="jfsocket stdin", daemon=True).start()

    def more(self) -> None:
        """Read one more piece."""
        self._wanted.release()

    def _run(self) -> None:
        while True:
            self._wanted.acquire()
            try:
                piece = self._read()
            except Exception as exc:  # raised by the main thread
                self._inbox.put(exc)
                return
            self._inbox.put(piece)
            if not piece:
                return


def _client_threaded(
    args: argparse.Namespace,
    evts: dict[EventTypes | str, Any],
    streams: _ClientStreams,
    outcome: _ClientOutcome,
) -> None:
    inbox: queue.Queue[object] = queue.Queue()

    def disconnected(client: threaded.TcpClient, *args: object) -> None:
        inbox.put(_DOWN if client.reconnecting else _GONE)  # redialing: not the end

    evts[_E.DISCONNECT] = _chain(evts[_E.DISCONNECT], disconnected)
    evts[_E.CONNECTED] = _chain(evts[_E.CONNECTED], lambda *a: inbox.put(_UP))
    streams.on_broken = lambda: inbox.put(_GONE)
    with (
        contextlib.suppress(KeyboardInterrupt),
        _interrupts_while_waiting() as waiting,
        threaded.TcpClient(evts=evts, **_client_options(args)) as client,
    ):
        client.connect(args.ip, args.port)
        reader = _StdinReader(streams.read, inbox)
        with waiting:
            while True:
                reader.more()
                piece = _next(inbox, _UP, _DOWN)
                if piece is _GONE:
                    return
                if isinstance(piece, BaseException):
                    raise piece
                assert isinstance(piece, (str, bytes))
                if not piece:
                    break
                while True:
                    with waiting.paused():
                        try:
                            client.send(streams.message(piece))
                            break
                        except SocketError as exc:
                            if not _gone(exc):
                                raise
                            if not client.reconnecting:
                                outcome.refused = exc
                                return
                    # Down, and redialing: this piece goes once the connection is back.
                    if _next(inbox, _DOWN) is _GONE:
                        return
            # shutdown() waits for our queued data to be written, as long as the
            # server takes: in a thread, so that Ctrl-C can end the wait.
            shut: queue.Queue[BaseException | None] = queue.Queue()
            threading.Thread(
                target=_report, args=(client.shutdown, shut), name="jfsocket shutdown", daemon=True
            ).start()
            error = _take(shut)
            # Refused as gone: the server closed first (or we are down, redialing).
            if isinstance(error, BaseException) and not (
                isinstance(error, SocketError) and _gone(error)
            ):
                raise error
            if client.isAlive:
                _next(inbox, _UP, _DOWN, timeout=args.linger)  # until the server closes


def _next(inbox: queue.Queue[object], *skip: object, timeout: float | None = None) -> object:
    """The next item of *inbox* that is none of *skip* (``None`` after *timeout*)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        item = _take(inbox, left)
        if item is None or not any(item is s for s in skip):
            return item


def _report(function: Callable[[], object], outcome: queue.Queue[BaseException | None]) -> None:
    """Call *function*; put what it raised, or None, in *outcome*."""
    try:
        function()
    except BaseException as exc:  # handed to the waiting thread
        outcome.put(exc)
    else:
        outcome.put(None)


def _client_async(
    args: argparse.Namespace,
    evts: dict[EventTypes | str, Any],
    streams: _ClientStreams,
    outcome: _ClientOutcome,
) -> None:
    runtime = _async_runtime(args)

    async def run() -> None:
        gone = runtime.event()
        up = runtime.semaphore()  # released by each CONNECTED (--reconnect waits on it)

        def disconnected(client: Any, *args: object) -> None:
            if not client.reconnecting:  # redialing: not the end
                gone.set()

        evts[_E.DISCONNECT] = _chain(evts[_E.DISCONNECT], disconnected)
        evts[_E.CONNECTED] = _chain(evts[_E.CONNECTED], lambda *a: up.release())
        streams.on_broken = gone.set

        async def back() -> bool:
            await up.acquire()
            return True

        async with runtime.TcpClient(evts=evts, **_client_options(args)) as client:
            await client.connect(args.ip, args.port)
            while True:
                piece = await runtime.unless(gone, lambda: runtime.in_thread(streams.read))
                if piece is None:  # the server has gone
                    return
                if not piece:
                    break
                while True:
                    try:
                        await client.send(streams.message(piece))
                        break
                    except SocketError as exc:
                        if not _gone(exc):
                            raise
                        if not client.reconnecting:
                            outcome.refused = exc
                            return
                    # Down, and redialing: this piece goes once the connection is back.
                    if await runtime.unless(gone, back) is None:
                        return
            try:
                await client.shutdown()  # the server sees the end of our input
            except SocketError as exc:
                if not _gone(exc):  # gone already: DISCONNECT has set the event
                    raise
                if not client.isAlive:  # (or down, redialing: nothing to wait for)
                    return
            with contextlib.suppress(TimeoutError):
                if args.linger is None:
                    await gone.wait()
                else:
                    await runtime.within(args.linger, gone.wait())

    runtime.run(run)


def _cmd_client(args: argparse.Namespace, printer: Printer) -> int:
    """Send stdin; at its end half-close, and wait until the server closes."""
    streams, outcome = _ClientStreams(args), _ClientOutcome()
    evts = _client_evts(args, printer, streams, outcome)
    client = _client_threaded if args.runtime == "threaded" else _client_async
    client(args, evts, streams, outcome)
    if streams.broken:
        _silence_stdout()
    return outcome.status()


# -- multicast -------------------------------------------------------------------


def _cmd_cast_listen(args: argparse.Namespace, printer: Printer) -> int:
    evts = printer.callbacks("receiver", _RECEIVER_KEYS)
    options = {
        "evts": evts,
        "interface": args.interface,
        "encoding": args.encoding,
        "recv_buffer": args.recv_buffer,
    }
    if args.runtime != "threaded":
        runtime = _async_runtime(args)

        async def listen() -> None:
            async with (
                runtime.stop_signals() as signalled,
                runtime.CastReceiver(args.port, **options) as receiver,
            ):
                receiver.joinGroup(*args.groups)
                printer.line("receiver", "LISTENING", f"{_show(receiver.host)} {args.groups}")
                await signalled()

        runtime.run(listen)
        return 0
    with _until_interrupted(), threaded.CastReceiver(args.port, **options) as receiver:
        receiver.joinGroup(*args.groups)
        receiver.start()
        printer.line("receiver", "LISTENING", f"{_show(receiver.host)} {receiver.groups}")
        _wait_forever()
    return 0


def _cmd_cast_send(args: argparse.Namespace, printer: Printer) -> int:
    evts = printer.callbacks("sender", _SENDER_KEYS)
    failed: list[object] = []
    evts[_E.SENDFAIL] = _chain(evts[_E.SENDFAIL], lambda *a: failed.append(a[1]))
    target: Address = (args.group, args.port)
    options = {"ttl": args.ttl, "interface": args.interface, "encoding": args.encoding}
    # Bytes as given on the command line (os.fsencode undoes argv's decoding).
    messages = [m if args.encoding else os.fsencode(m) for m in args.messages]
    if args.runtime != "threaded":
        runtime = _async_runtime(args)

        async def send() -> None:
            async with runtime.CastSender(evts=evts, **options) as sender:
                for message in messages:
                    await sender.send(target, message)

        runtime.run(send)
    else:
        with threaded.CastSender(evts=evts, **options) as sender:
            for message in messages:
                sender.send(target, message)
    if failed:
        print(
            f"jfsocket: {len(failed)} of {len(messages)} datagrams failed (SENDFAIL)",
            file=sys.stderr,
        )
        return 1
    return 0


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


def _interface(ip: object) -> str:
    return validate_ip(ip, name="interface")


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


def _parser() -> argparse.ArgumentParser:
    try:
        version = metadata.version("jfsocket")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        version = "unknown"
    parser = argparse.ArgumentParser(
        prog="jfsocket",
        description="Callback-and-events TCP and UDP multicast sockets: demo and small tools.",
    )
    parser.add_argument("--version", action="version", version=f"jfsocket {version}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, *, data: bool = True, framing: bool = False) -> None:
        p.add_argument(
            "--runtime",
            choices=_RUNTIMES,
            default="threaded",
            help="which binding runs it (default: threaded)",
        )
        p.add_argument(
            "--loop",
            choices=_LOOPS,
            default=None,
            help="the event loop of --runtime asyncio: asyncio's own or uvloop (default: asyncio)",
        )
        p.set_defaults(usage_error=p.error)
        if data:
            p.add_argument(
                "--encoding",
                type=_checked(_encoding),
                default="utf-8",
                help="text encoding, or 'none' for bytes (default: utf-8)",
            )
        if framing:
            p.add_argument(
                "--framing",
                choices=("raw", "line", "length"),
                default=None,
                help="how the stream is cut into messages (default: raw reads)",
            )
            p.add_argument(
                "--line-ending",
                choices=tuple(_LINE_ENDINGS),
                default=None,
                help="what --framing line appends to each message sent (default: lf); "
                "either ends a line received",
            )
            p.add_argument(
                "--idle-timeout",
                type=_checked(_idle_timeout, float),
                default=None,
                metavar="SECONDS",
                help="close a connection on which nothing arrived for this long",
            )
            p.add_argument(
                "--keepalive",
                action="store_true",
                help="the OS's TCP keepalive (probes after 60 s idle), so a vanished peer "
                "is reported",
            )

    demo = commands.add_parser("demo", help="server, client and multicast on loopback")
    common(demo, data=False)
    demo.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_cmd_demo)

    server = commands.add_parser("server", help="listen and print what happens")
    server.add_argument(
        "ip", nargs="?", type=_checked(validate_ip), default=_LOOPBACK,
        help="IP address to listen on (default 127.0.0.1)",
    )  # fmt: skip
    server.add_argument("port", type=_PORT, help="port (0: any free port)")
    server.add_argument("--echo", action="store_true", help="send received data back")
    common(server, framing=True)
    add_server_options(server)
    server.set_defaults(handler=_cmd_server)

    client = commands.add_parser(
        "client",
        help="send stdin, print what arrives",
        description="Send stdin to the server and print what arrives. At the end of stdin "
        "the client half-closes (the server sees EOF) and exits once the server has closed.",
    )
    client.add_argument("ip", type=_checked(validate_host), help="server address or host name")
    client.add_argument("port", type=_REMOTE_PORT, help="server port")
    client.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="write only the received data to stdout, as it arrived (connect, disconnect and "
        "send failures go to stderr), so that `jfsocket client -q HOST PORT < in > out` "
        "pipes like `nc -N`",
    )
    client.add_argument(
        "--reconnect",
        action="store_true",
        help="when the server goes away (not at the end of input), dial it again with "
        "backoff until it is back; input read meanwhile is sent then",
    )
    client.add_argument(
        "--linger",
        type=_checked(_seconds),
        default=None,
        metavar="SECONDS",
        help="after the end of input, close if the server has not closed within this "
        "many seconds (default: wait for it)",
    )
    common(client, framing=True)
    add_client_options(client)
    client.set_defaults(handler=_cmd_client)

    cast = commands.add_parser("cast", help="UDP multicast")
    cast_commands = cast.add_subparsers(dest="cast_command", required=True, metavar="COMMAND")
    listen = cast_commands.add_parser("listen", help="join groups and print datagrams")
    listen.add_argument("port", type=_PORT, help="port to listen on")
    listen.add_argument(
        "groups", nargs="+", type=_checked(parse_group), metavar="GROUP",
        help="multicast groups to join",
    )  # fmt: skip
    listen.add_argument(
        "--interface",
        type=_checked(_interface),
        default="0.0.0.0",
        help="local interface address to join on (default: any)",
    )
    listen.add_argument(
        "--recv-buffer",
        type=_checked(validate_recv_buffer, _integer),
        default=MAX_DATAGRAM,
        metavar="N",
        help=f"the most bytes of a datagram taken (default {MAX_DATAGRAM}: any whole datagram)",
    )
    common(listen)
    listen.set_defaults(handler=_cmd_cast_listen)
    send = cast_commands.add_parser("send", help="send datagrams to a group")
    send.add_argument("group", type=_checked(parse_group), help="multicast group")
    send.add_argument("port", type=_REMOTE_PORT, help="port")
    send.add_argument("messages", nargs="+", metavar="MESSAGE", help="one datagram each")
    send.add_argument(
        "--interface",
        type=_checked(_interface),
        default=None,
        help="local interface address to send from (default: the system's)",
    )
    send.add_argument(
        "--ttl",
        type=_checked(_ttl, _integer),
        default=1,
        help="hops the datagram may cross (0: this host only; default 1)",
    )
    common(send)
    send.set_defaults(handler=_cmd_cast_send)
    return parser


def _check_loop(args: argparse.Namespace) -> None:
    """``--loop`` goes with ``--runtime asyncio``, and ``uvloop`` with uvloop installed."""
    if args.loop is not None and args.runtime != "asyncio":
        args.usage_error(f"--loop {args.loop} goes with --runtime asyncio")
    if args.loop == "uvloop":
        try:
            import uvloop  # noqa: F401  # imported to see that it can be
        except ImportError as exc:
            args.usage_error(
                f"--loop uvloop: uvloop cannot be imported ({exc}); pip install uvloop"
            )


def _colour() -> bool | None:
    """Colour on a terminal (None: ask it), unless NO_COLOR is set."""
    return False if os.environ.get("NO_COLOR") else None


def _silence_stdout() -> None:
    """stdout's reader has left: keep the interpreter's final flush from complaining."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    _check_loop(args)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Show what the terminal's encoding cannot (a demo line in Chinese on an
        # ASCII console) as escapes instead of failing inside a callback.
        sys.stdout.reconfigure(errors="backslashreplace")
    printer = Printer(sys.stdout, colour=_colour())
    handler: Callable[[argparse.Namespace, Printer], int] = args.handler
    try:
        status = handler(args, printer)
        if printer.broken:
            _silence_stdout()
        return status
    except (
        SocketError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        queue.Empty,
    ) as exc:
        if args.debug:
            raise
        what = str(exc) or type(exc).__name__
        if isinstance(exc, SocketError):
            what = f"error {exc}"
        print(f"jfsocket: {what}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
