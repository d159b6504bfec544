"""The ``jfsocket`` command: the seed's Server.py, Client.py and Multicast.py.

``jfsocket demo`` runs a server, a client and a multicast pair on loopback and
prints every event; ``server``, ``client``, ``cast listen|send`` and ``cast
probe send|listen`` (numbered datagrams: what was lost, on which interface;
the accounting is :mod:`._probe`'s) are small tools built on the same
objects, on the threaded, the trio or the asyncio binding (asyncio on its own
loop or on uvloop).

Here: demo, server, client, the parser and ``main``; the multicast commands
are :mod:`._cli_cast`'s, and what all commands share (the event printer, the
async runtimes the async commands are written once against, the argument
checkers) is :mod:`._cli_base`'s.  A runtime's modules are imported only when
it is chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from jfsocket.bindings import threaded
from jfsocket.core import (
    ErrorCode,
    EventTypes,
    SocketError,
    validate_host,
    validate_ip,
)

from ._cli_base import (
    _CLIENT_KEYS,
    _DEMO_GROUP,
    _E,
    _LOOPBACK,
    _LOOPS,
    _PORT,
    _RECEIVER_KEYS,
    _REMOTE_PORT,
    _RUNTIMES,
    _SENDER_KEYS,
    _SERVER_KEYS,
    _T,
    Printer,
    _async_runtime,
    _AsyncRuntime,
    _chain,
    _checked,
    _encoding,
    _idle_timeout,
    _interrupts_while_waiting,
    _seconds,
    _show,
    _until_interrupted,
    _wait_forever,
)
from ._cli_cast import add_cast_commands
from ._cli_tls import add_client_options, add_server_options, client_context, server_context

if TYPE_CHECKING:
    from jfsocket.bindings import asyncio as asyncio_binding
    from jfsocket.bindings import trio as trio_binding

    _AsyncClient = trio_binding.TcpClient | asyncio_binding.TcpClient

__all__ = ["main"]


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

    add_cast_commands(commands, common)
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
