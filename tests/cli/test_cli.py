"""The installed ``jfsocket`` console script, run as a real subprocess (SPEC section 7).

Network rules: TCP only on 127.0.0.1; multicast only in 239.255.0.0/16 with
``--interface 127.0.0.1`` on both ends and ``--ttl 0`` on every sender.
Nothing sleeps: a process's output is read by a thread into a queue, and every
wait for a line, a process or a thread has a deadline.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import io
import os
import queue
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tokenize
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final, TextIO

import pytest

JFSOCKET: Final = Path(sys.executable).parent / "jfsocket"
RUNTIMES: Final = ("threaded", "trio", "asyncio")
#: ``--runtime asyncio`` on uvloop: the demo runs there too, where uvloop installs.
UVLOOP: Final = pytest.param(
    "uvloop",
    marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="no uvloop"),
)
LOOPBACK: Final = "127.0.0.1"
#: Bound for one short-lived command, for one awaited output line, for one socket call.
RUN_TIMEOUT: Final = 20.0
WAIT: Final = 10.0
#: No process is expected to print more lines than this.
MAX_LINES: Final = 1000
#: The safe multicast options, passed to every ``cast`` command.
CAST_SAFE: Final = ("--interface", LOOPBACK)
SEND_SAFE: Final = ("--interface", LOOPBACK, "--ttl", "0")

_EVENT = re.compile(
    r"\s*\d+\.\d{3}  (?P<who>\S+)\s+"
    r"(?P<what>STARTED|STOPED|CONNECTED|DISCONNECT|RECEIVED|SENDED|SENDFAIL|LISTENING)"
    r"\s*(?P<detail>.*)"
)


@dataclasses.dataclass(frozen=True)
class Event:
    """One printed event line: who, what, and the rest of the line."""

    who: str
    what: str
    detail: str

    @property
    def data(self) -> str:
        """The str whose repr starts the detail (RECEIVED / SENDED lines; a ``cast
        listen`` RECEIVED goes on to say where the datagram came from)."""
        token = next(tokenize.generate_tokens(io.StringIO(self.detail).readline))
        assert token.type == tokenize.STRING and token.start == (1, 0), self.detail
        value = ast.literal_eval(token.string)
        assert isinstance(value, str), self.detail
        return value


def parse(lines: Sequence[str]) -> list[Event]:
    """The event lines among *lines*, in order (the demo's own lines are skipped)."""
    events = []
    for line in lines:
        match = _EVENT.fullmatch(line.rstrip("\n"))
        if match:
            events.append(Event(match["who"], match["what"], match["detail"] or ""))
    return events


def _env() -> dict[str, str]:
    """The child's environment: UTF-8 on its standard streams, no colour."""
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}


def runtime_options(runtime: str) -> tuple[str, ...]:
    """The options that choose *runtime*: one of :data:`RUNTIMES`, or ``uvloop``."""
    if runtime == "uvloop":
        return ("--runtime", "asyncio", "--loop", "uvloop")
    return ("--runtime", runtime)


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``jfsocket *args`` to completion (bounded), feeding *stdin* if given."""
    return subprocess.run(
        [str(JFSOCKET), *args],
        input="" if stdin is None else stdin,
        capture_output=True,
        encoding="utf-8",
        env=env or _env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _pump(stream: TextIO, sink: queue.Queue[str | None]) -> None:
    """Copy *stream*'s lines (at most MAX_LINES) to *sink*, then ``None``."""
    try:
        for count, line in enumerate(stream):
            if count < MAX_LINES:
                sink.put(line)
    finally:
        sink.put(None)


class Running:
    """A running ``jfsocket``: reader threads copy its stdout and stderr to queues."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.lines: list[str] = []
        self._stdout: queue.Queue[str | None] = queue.Queue()
        self._stderr: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        self._readers = [
            threading.Thread(target=_pump, args=(proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def expect(self, who: str, what: str, timeout: float = WAIT) -> Event:
        """Read lines until *who* prints *what*; fail at the deadline or at end of output."""
        deadline = time.monotonic() + timeout
        for _ in range(MAX_LINES):
            remaining = deadline - time.monotonic()
            line = None if self._ended else self._get(remaining)
            if line is None:
                pytest.fail(f"no '{who} {what}' line; the output was:\n{''.join(self.lines)}")
            self.lines.append(line)
            for event in parse([line]):
                if (event.who, event.what) == (who, what):
                    return event
        pytest.fail(f"more than {MAX_LINES} lines without '{who} {what}'")

    def _get(self, remaining: float) -> str | None:
        if remaining <= 0:
            return None
        try:
            line = self._stdout.get(timeout=remaining)
        except queue.Empty:
            return None
        self._ended = line is None
        return line

    def finish(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for the exit (bounded); collect the rest of stdout; return (code, stderr)."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout)
            assert not reader.is_alive(), "the output pipes stayed open after the exit"
        while not self._ended and (line := self._stdout.get_nowait()) is not None:
            self.lines.append(line)
        self._ended = True
        errors = []
        while (line := self._stderr.get_nowait()) is not None:
            errors.append(line)
        return code, "".join(errors)

    def close(self) -> None:
        """Kill the process if it still runs, reap it, and close its pipes (all bounded)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT)
        for reader in self._readers:
            reader.join(WAIT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    @property
    def events(self) -> list[Event]:
        """The events printed so far (those read by :meth:`expect` or :meth:`finish`)."""
        return parse(self.lines)


@contextlib.contextmanager
def started(*args: str, stdin: int = subprocess.DEVNULL) -> Iterator[Running]:
    """Start ``jfsocket *args``; on the way out kill it (by pid) if it still runs."""
    proc = subprocess.Popen(
        [str(JFSOCKET), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        bufsize=1,
        env=_env(),
    )
    running = Running(proc)
    try:
        yield running
    finally:
        running.close()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


def recv_until(sock: socket.socket, expected: bytes) -> bytes:
    """Receive until *expected* bytes have arrived or the peer closes (bounded)."""
    got = b""
    for _ in range(MAX_LINES):
        if len(got) >= len(expected):
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


class _OneConnection:
    """A plain-socket TCP server on 127.0.0.1 serving one connection in a thread;
    subclasses say what it does with the connection (:meth:`_talk`)."""

    def __init__(self) -> None:
        self.received = b""
        self.error: BaseException | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.settimeout(WAIT)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(1)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
            with conn:
                conn.settimeout(WAIT)
                self._talk(conn)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def _talk(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def join(self) -> bytes:
        """Wait (bounded) for the connection to be served; return what arrived."""
        self._thread.join(2 * WAIT)
        self._listener.close()
        assert not self._thread.is_alive(), "the raw server is still serving"
        if self.error is not None:
            raise self.error
        return self.received


class RawServer(_OneConnection):
    """Reads until *lines* newlines have arrived, sends *answer*, shuts down its
    sending side, and reads what else comes until the client closes."""

    def __init__(self, lines: int, answer: bytes) -> None:
        self._lines, self._answer = lines, answer
        super().__init__()

    def _talk(self, conn: socket.socket) -> None:
        for _ in range(MAX_LINES):
            if self.received.count(b"\n") >= self._lines:
                break
            chunk = conn.recv(4096)
            if not chunk:
                break
            self.received += chunk
        conn.sendall(self._answer)
        conn.shutdown(socket.SHUT_WR)
        for _ in range(MAX_LINES):
            chunk = conn.recv(4096)
            if not chunk:
                break
            self.received += chunk


# -- help and version --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ((), ("demo", "server", "client", "cast", "--version", "--debug")),
        (("demo",), ("--runtime", "threaded", "trio", "asyncio", "--loop", "uvloop")),
        (("server",), ("ip", "port", "--echo", "--framing", "--line-ending", "--encoding")),
        (("client",), ("ip", "port", "--quiet", "-q", "--linger", "--framing", "--runtime")),
        (("cast",), ("listen", "send")),
        (("cast", "listen"), ("port", "GROUP", "--interface", "--recv-buffer", "--runtime")),
        (("cast", "send"), ("group", "port", "MESSAGE", "--interface", "--ttl", "--runtime")),
    ],
)
def test_help(command: tuple[str, ...], mentions: tuple[str, ...]) -> None:
    """``--help`` exits 0 with a usage line naming the command and its arguments."""
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(" ".join(("usage: jfsocket", *command)))
    for word in mentions:
        assert word in result.stdout, f"--help of {command} does not mention {word}"


def test_version() -> None:
    """``--version`` prints the installed distribution's version."""
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"jfsocket {metadata.version('jfsocket')}\n"


# -- demo ----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", [*RUNTIMES, UVLOOP])
def test_demo(runtime: str) -> None:
    """``demo`` exits 0 after printing the TCP and the multicast events in order."""
    started_at = time.monotonic()
    result = run("demo", *runtime_options(runtime))
    assert time.monotonic() - started_at < 10
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    events = parse(result.stdout.splitlines())
    tcp = [e for e in events if e.who in ("server", "client")]
    cast = [e for e in events if e.who in ("receiver", "sender")]
    assert events == tcp + cast, "the multicast part starts once the TCP part is over"

    def where(who: str, what: str, data: str | None = None) -> int:
        for index, event in enumerate(tcp):
            if (event.who, event.what) == (who, what) and (data is None or event.data == data):
                return index
        pytest.fail(f"no {who} {what} {data!r} in:\n{result.stdout}")

    def side(who: str) -> list[tuple[str, str]]:
        return [
            (e.what, e.data if e.what in ("RECEIVED", "SENDED") else "")
            for e in tcp
            if e.who == who
        ]

    # Each side's own events come in order (the server does not report SENDED).
    assert side("server") == [
        ("STARTED", ""),
        ("CONNECTED", ""),
        ("RECEIVED", "hello, server"),
        ("RECEIVED", "你好"),
        ("DISCONNECT", ""),
        ("STOPED", ""),
    ]
    assert [event for event in side("client") if event[0] != "SENDED"] == [
        ("CONNECTED", ""),
        ("RECEIVED", "echo: hello, server"),
        ("RECEIVED", "echo: 你好"),
        ("RECEIVED", "a word from the server to everyone"),
        ("DISCONNECT", ""),
    ]
    assert [data for what, data in side("client") if what == "SENDED"] == ["hello, server", "你好"]
    assert tcp[-1] == Event("server", "STOPED", "")
    # Across the sides: each line is received before its echo, which comes before the next line.
    assert (
        where("server", "RECEIVED", "hello, server")
        < where("client", "RECEIVED", "echo: hello, server")
        < where("server", "RECEIVED", "你好")
        < where("client", "RECEIVED", "echo: 你好")
    )
    # The multicast pair: the receiver starts, hears both datagrams in order, stops.
    receiver = [
        (e.what, e.data if e.what == "RECEIVED" else "") for e in cast if e.who == "receiver"
    ]
    assert receiver == [
        ("STARTED", ""),
        ("RECEIVED", "datagram one"),
        ("RECEIVED", "datagram two"),
        ("STOPED", ""),
    ]
    sender = [(e.what, e.data) for e in cast if e.who == "sender"]
    assert sender == [("SENDED", "datagram one"), ("SENDED", "datagram two")]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_demo_survives_an_ascii_stdout(runtime: str) -> None:
    """``demo`` still completes (exit 0, no traceback) on a stdout that cannot show '你好'."""
    env = {**_env(), "PYTHONIOENCODING": "ascii"}
    # The hidden --timeout bounds the wait for each reply, so the failure is quick.
    result = run("demo", "--runtime", runtime, "--timeout", "1", env=env)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("runtime", ["trio", "asyncio"])
def test_demo_timeout_is_one_line(runtime: str) -> None:
    """An async demo that runs out of time: exit 1 with one line saying so, no traceback."""
    result = run("demo", "--runtime", runtime, "--timeout", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == "jfsocket: timed out after 0 s\n"


# -- server ----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_echoes_and_stops_on_sigint(runtime: str) -> None:
    """``server --echo``: a raw client gets its line back; SIGINT stops it (STOPED, exit 0)."""
    with started("server", LOOPBACK, "0", "--echo", "--runtime", runtime) as server:
        listening = server.expect("server", "LISTENING")
        assert [e.what for e in server.events] == ["STARTED", "LISTENING"]
        host, _, port = listening.detail.rpartition(":")
        assert host == LOOPBACK
        line = "ping 你好\n".encode()
        with socket.create_connection((LOOPBACK, int(port)), timeout=WAIT) as raw:
            me = "{}:{}".format(*raw.getsockname())
            raw.sendall(line)
            assert recv_until(raw, line) == line
            assert me in server.expect("server", "CONNECTED").detail
            assert server.expect("server", "RECEIVED").data == "ping 你好\n"
        assert me in server.expect("server", "DISCONNECT").detail
        server.proc.send_signal(signal.SIGINT)
        code, errors = server.finish()
    assert code == 0, errors
    assert errors == ""
    assert [e.what for e in server.events][-1] == "STOPED"


def settle_server(server: Running) -> None:
    """Wait for LISTENING, then connect and leave once (see :func:`settle_listener`)."""
    port = int(server.expect("server", "LISTENING").detail.rpartition(":")[2])
    with socket.create_connection((LOOPBACK, port), timeout=WAIT):
        server.expect("server", "CONNECTED")
    server.expect("server", "DISCONNECT")


def settle_listener(listener: Running, group: str, port: str, runtime: str) -> None:
    """Wait for LISTENING, then have one datagram heard.

    The LISTENING line comes out before the command is ready for a signal (a
    signal right after it can end the process with a traceback), so the signal
    tests first have the process do some work.
    """
    listener.expect("receiver", "LISTENING")
    sent = run("cast", "send", group, port, "ping", *SEND_SAFE, "--runtime", runtime)
    assert sent.returncode == 0, sent.stderr
    assert listener.expect("receiver", "RECEIVED").data == "ping"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_stops_on_sigterm(runtime: str) -> None:
    """SIGTERM stops ``server`` as Ctrl-C does: STOPED, exit 0."""
    with started("server", LOOPBACK, "0", "--runtime", runtime) as server:
        settle_server(server)
        server.proc.send_signal(signal.SIGTERM)
        code, errors = server.finish()
    assert (code, errors) == (0, "")
    assert [e.what for e in server.events][-1] == "STOPED"


@pytest.mark.parametrize(
    ("runtime", "group"),
    [("threaded", "239.255.91.3"), ("trio", "239.255.91.4"), ("asyncio", "239.255.91.5")],
)
def test_cast_listen_stops_on_sigterm(runtime: str, group: str) -> None:
    """SIGTERM stops ``cast listen`` as Ctrl-C does: STOPED, exit 0."""
    port = str(free_udp_port())
    with started("cast", "listen", port, group, *CAST_SAFE, "--runtime", runtime) as listener:
        settle_listener(listener, group, port, runtime)
        listener.proc.send_signal(signal.SIGTERM)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    assert [e.what for e in listener.events][-1] == "STOPED"


# -- client ----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_sends_stdin_and_prints_answers(runtime: str) -> None:
    """``client``: stdin lines reach the server as typed; its answer is printed; exit 0."""
    answer = "welcome, 你好\n"
    server = RawServer(lines=2, answer=answer.encode())
    started_at = time.monotonic()
    result = run(
        "client", LOOPBACK, str(server.port), "--runtime", runtime, "--linger", "5",
        stdin="hello\n你好\n",
    )  # fmt: skip
    elapsed = time.monotonic() - started_at
    assert server.join() == "hello\n你好\n".encode()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    events = parse(result.stdout.splitlines())
    assert events[0].what == "CONNECTED" and events[-1].what == "DISCONNECT"
    assert "".join(e.data for e in events if e.what == "RECEIVED") == answer
    assert elapsed < 5, "the client waited out --linger although the server had closed"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_line_framing(runtime: str) -> None:
    """``client --framing line``: the line 'hello' is exactly b'hello\\n' on the wire."""
    server = RawServer(lines=1, answer=b"one\ntwo\n")
    result = run(
        "client", LOOPBACK, str(server.port), "--runtime", runtime, "--linger", "5",
        "--framing", "line", stdin="hello\n",
    )  # fmt: skip
    assert server.join() == b"hello\n"
    assert result.returncode == 0, result.stderr
    events = parse(result.stdout.splitlines())
    assert [e.data for e in events if e.what == "RECEIVED"] == ["one", "two"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_stops_on_sigint(taken_port: int, runtime: str) -> None:
    """Ctrl-C while ``client`` waits for stdin ends it cleanly: DISCONNECT, exit 0."""
    args = ("client", LOOPBACK, str(taken_port), "--runtime", runtime)
    with started(*args, stdin=subprocess.PIPE) as client:
        client.expect("client", "CONNECTED")
        client.proc.send_signal(signal.SIGINT)
        code, errors = client.finish()
    assert (code, errors) == (0, "")
    assert [e.what for e in client.events] == ["CONNECTED", "DISCONNECT"]


# -- client as nc -N: half-close, --quiet, --encoding none -----------------------------------

#: At most this many reads of one raw connection (each waits WAIT at most).
MAX_READS: Final = 100_000


class EofServer(_OneConnection):
    """Like ``socat TCP-LISTEN:P EXEC:'wc -c'``: it reads until EOF, only then
    sends ``answer(received)``, and closes.  A client that never half-closes
    never gets the answer."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self._answer = answer
        super().__init__()

    def _talk(self, conn: socket.socket) -> None:
        for _ in range(MAX_READS):
            chunk = conn.recv(65536)
            if not chunk:
                break
            self.received += chunk
        else:
            raise AssertionError(f"no EOF after {MAX_READS} reads")
        conn.sendall(self._answer(self.received))


def run_bytes(
    *args: str, stdin: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``jfsocket *args`` to completion (bounded) with the file *stdin*; bytes out."""
    with stdin.open("rb") as source:
        return subprocess.run(
            [str(JFSOCKET), *args],
            stdin=source,
            capture_output=True,
            env=env or _env(),
            timeout=RUN_TIMEOUT,
            check=False,
        )


def _wc(received: bytes) -> bytes:
    """The byte count, then bytes that are not UTF-8 (they must come out unchanged)."""
    return b"%d\n\xe4\xff end\n" % len(received)


#: Text lines, invalid UTF-8, CRLF, random bytes, and no final newline.
PAYLOAD: Final = (
    "hello\n你好\n".encode()
    + b"\xe4\xff\r\n"
    + random.Random(11).randbytes(200_000)
    + b"\nlast line, no newline"
)


@pytest.mark.parametrize("encoding", ["utf-8", "none"])
@pytest.mark.parametrize("runtime", [*RUNTIMES, UVLOOP])
def test_client_quiet_pipes_like_nc_n(tmp_path: Path, runtime: str, encoding: str) -> None:
    """``client -q < in > out``: the server gets stdin exactly and then EOF (half-close);
    its answer, sent only then, is all of stdout, byte for byte; the client exits 0 once the
    server has closed, its events on stderr."""
    source = tmp_path / "in"
    source.write_bytes(PAYLOAD)
    server = EofServer(_wc)
    result = run_bytes(
        "client", "-q", LOOPBACK, str(server.port), *runtime_options(runtime),
        "--encoding", encoding, stdin=source,
    )  # fmt: skip
    assert server.join() == PAYLOAD
    errors = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, errors
    assert result.stdout == _wc(PAYLOAD)
    assert "Traceback" not in errors
    assert [e.what for e in parse(errors.splitlines())] == ["CONNECTED", "DISCONNECT"]


@pytest.mark.parametrize("encoding", ["none", "utf-8"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_sends_invalid_utf8_exactly_under_a_strict_locale(
    tmp_path: Path, runtime: str, encoding: str
) -> None:
    """Invalid UTF-8 on stdin under ``PYTHONIOENCODING=utf-8:strict`` and ``LC_ALL=C``: the
    server gets the exact bytes (``--encoding none`` reads ``sys.stdin.buffer``; text is read
    losslessly), no traceback, exit 0, the answer in the event log."""
    data = b"abc\xe4\n\xff\xfe\x00 \xc3\n\xed\xa0\x80 tail \xe4"
    source = tmp_path / "in"
    source.write_bytes(data)
    env = {**_env(), "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C"}
    server = EofServer(lambda received: b"ok\n")
    result = run_bytes(
        "client", LOOPBACK, str(server.port), "--runtime", runtime, "--encoding", encoding,
        stdin=source, env=env,
    )  # fmt: skip
    assert server.join() == data
    output, errors = result.stdout.decode(), result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, errors
    assert errors == ""
    received = [e.detail for e in parse(output.splitlines()) if e.what == "RECEIVED"]
    assert received == (["b'ok\\n'"] if encoding == "none" else ["'ok\\n'"])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_quiet_line_framing(tmp_path: Path, runtime: str) -> None:
    """``-q --framing line``: CRLF or LF input lines go out as lines (the framer's LF), and
    each received line is written as a line."""
    source = tmp_path / "in"
    source.write_bytes(b"one\r\ntwo\nthree")
    server = EofServer(lambda received: b"first\r\nsecond\n")
    result = run_bytes(
        "client", "-q", "--framing", "line", LOOPBACK, str(server.port), "--runtime", runtime,
        stdin=source,
    )  # fmt: skip
    assert server.join() == b"one\ntwo\nthree\n"
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"first\nsecond\n"


@contextlib.contextmanager
def leaving_server(answer: bytes) -> Iterator[int]:
    """A raw server on 127.0.0.1 whose one connection gets *answer* and is closed at once."""
    error: list[BaseException] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.settimeout(WAIT)
        listener.bind((LOOPBACK, 0))
        listener.listen(1)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(answer)
            except BaseException as exc:  # reported below
                error.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield listener.getsockname()[1]
        thread.join(WAIT)
        assert not thread.is_alive(), "the raw server is still serving"
    if error:
        raise error[0]


@pytest.mark.parametrize("runtime", [*RUNTIMES, UVLOOP])
def test_client_exits_when_the_server_leaves(runtime: str) -> None:
    """A server that closes while stdin is still open ends the client at once: exit 0, the
    answer printed; a stdin read that is still blocked does not hold the process."""
    with (
        leaving_server(b"bye\n") as port,
        started("client", LOOPBACK, str(port), *runtime_options(runtime), stdin=subprocess.PIPE)
        as client,
    ):  # fmt: skip
        client.expect("client", "DISCONNECT")
        code, errors = client.finish()
    assert (code, errors) == (0, "")
    events = [(e.what, e.detail) for e in client.events]
    assert [what for what, _ in events] == ["CONNECTED", "RECEIVED", "DISCONNECT"]
    assert events[1][1] == "'bye\\n'"


# -- server: line endings, a client that vanishes -----------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_line_ending_crlf(runtime: str) -> None:
    """``server --framing line --line-ending crlf --echo``: LF or CRLF lines in, CRLF out."""
    args = ("server", LOOPBACK, "0", "--echo", "--framing", "line", "--line-ending", "crlf")
    with started(*args, "--runtime", runtime) as server:
        port = int(server.expect("server", "LISTENING").detail.rpartition(":")[2])
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as raw:
            raw.sendall(b"one\r\ntwo\n")
            assert recv_until(raw, b"one\r\ntwo\r\n") == b"one\r\ntwo\r\n"
        assert [server.expect("server", "RECEIVED").data for _ in range(2)] == ["one", "two"]
        server.proc.send_signal(signal.SIGINT)
        code, errors = server.finish()
    assert (code, errors) == (0, "")


#: The most a vanishing client writes (it stops earlier, when the socket has no room).
BURST: Final = 64 << 20


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_echo_server_ignores_a_client_that_vanished(runtime: str) -> None:
    """A client writes until the echo server's replies back up, then resets the connection,
    and the server is stopped with data of it still to echo: the replies that have nowhere
    to go are dropped without a traceback; exit 0."""
    with started("server", LOOPBACK, "0", "--echo", "--runtime", runtime) as server:
        port = int(server.expect("server", "LISTENING").detail.rpartition(":")[2])
        raw = socket.create_connection((LOOPBACK, port), timeout=WAIT)
        with raw:
            server.expect("server", "CONNECTED")
            raw.setblocking(False)
            chunk, sent = b"x" * 65536, 0
            # Write, never read, until the socket has no room (bounded by BURST).
            with contextlib.suppress(BlockingIOError):
                while sent < BURST:
                    sent += raw.send(chunk)
            server.expect("server", "RECEIVED")
            # Vanish: a reset, not a clean close.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.proc.send_signal(signal.SIGINT)
        code, errors = server.finish(timeout=2 * WAIT)
    assert "Traceback" not in errors, errors[:3000]
    assert code == 0, errors[:3000]


# -- multicast -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "group"),
    [("threaded", "239.255.91.1"), ("trio", "239.255.91.2"), ("asyncio", "239.255.91.6")],
)
def test_cast_listen_and_send(runtime: str, group: str) -> None:
    """``cast send`` (TTL 0, loopback) reaches ``cast listen``; SIGINT stops the listener."""
    port = str(free_udp_port())
    options = ("--runtime", runtime)
    with started("cast", "listen", port, group, *CAST_SAFE, *options) as listener:
        listening = listener.expect("receiver", "LISTENING")
        assert f":{port} " in listening.detail and group in listening.detail
        sent = run("cast", "send", group, port, "msg1", "msg2 你好", *SEND_SAFE, *options)
        assert sent.returncode == 0, sent.stderr
        assert [(e.what, e.data) for e in parse(sent.stdout.splitlines())] == [
            ("SENDED", "msg1"),
            ("SENDED", "msg2 你好"),
        ]
        assert listener.expect("receiver", "RECEIVED").data == "msg1"
        assert listener.expect("receiver", "RECEIVED").data == "msg2 你好"
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    assert [e.what for e in listener.events] == [
        "STARTED",
        "LISTENING",
        "RECEIVED",
        "RECEIVED",
        "STOPED",
    ]


def send_raw_datagram(group: str, port: int, payload: bytes) -> None:
    """One datagram from a plain socket: interface 127.0.0.1, TTL 0 (this host only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        sender.sendto(payload, (group, port))


@pytest.mark.parametrize(
    ("runtime", "group"),
    [("threaded", "239.255.92.1"), ("trio", "239.255.92.2"), ("asyncio", "239.255.92.3")],
)
def test_cast_listen_takes_a_1000_byte_datagram_whole(runtime: str, group: str) -> None:
    """By default ``cast listen`` takes a whole datagram (65507 bytes), not the library's 256;
    with ``--recv-buffer 100`` the datagram is cut: not passed off as whole, a warning on
    stderr (the next short one is the first RECEIVED)."""
    port = free_udp_port()
    payload = "".join(chr(ord("a") + i % 26) for i in range(1000))
    args = ("cast", "listen", str(port), group, *CAST_SAFE, "--runtime", runtime)
    with started(*args) as listener:
        listener.expect("receiver", "LISTENING")
        send_raw_datagram(group, port, payload.encode())
        assert listener.expect("receiver", "RECEIVED").data == payload
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    with started(*args, "--recv-buffer", "100") as listener:
        listener.expect("receiver", "LISTENING")
        send_raw_datagram(group, port, payload.encode())
        send_raw_datagram(group, port, b"short")
        assert listener.expect("receiver", "RECEIVED").data == "short"
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert code == 0, errors
    assert "longer than recvBuffer=100 and was cut" in errors


#: Loaded by the child through PYTHONPATH: a datagram that starts with b'fail' cannot be sent.
FAILING_SENDTO: Final = """\
import errno, socket

_sendto = socket.socket.sendto


def sendto(self, data, *args):
    if bytes(data).startswith(b"fail"):
        raise OSError(errno.EMSGSIZE, "Message too long (made to fail by the test)")
    return _sendto(self, data, *args)


socket.socket.sendto = sendto
"""


@pytest.mark.parametrize(
    ("runtime", "group"),
    [("threaded", "239.255.92.4"), ("trio", "239.255.92.5"), ("asyncio", "239.255.92.6")],
)
def test_cast_send_exits_1_after_a_sendfail(tmp_path: Path, runtime: str, group: str) -> None:
    """A datagram the OS refuses: SENDFAIL, the others still sent, exit 1 with one line."""
    (tmp_path / "sitecustomize.py").write_text(FAILING_SENDTO)
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    port = str(free_udp_port())
    result = run(
        "cast", "send", group, port, "ok", "fail", "ok too", *SEND_SAFE, "--runtime", runtime,
        env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert [(e.what, e.detail.partition("  ")[0]) for e in parse(result.stdout.splitlines())] == [
        ("SENDED", "'ok'"),
        ("SENDFAIL", "'fail'"),
        ("SENDED", "'ok too'"),
    ]
    assert "Message too long" in result.stdout
    assert result.stderr == "jfsocket: 1 of 3 datagrams failed (SENDFAIL)\n"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bogus",), "invalid choice: 'bogus'"),
        ((), "the following arguments are required: COMMAND"),
        (("server", LOOPBACK, "70000"), "port must be in 0-65535, got 70000"),
        (("client",), "the following arguments are required: ip, port"),
        (("cast", "listen", "5000"), "the following arguments are required: GROUP"),
        (("cast", "send", "239.255.91.9", "9"), "required: MESSAGE"),
        (("cast", "send", "239.255.91.9", "9", "m", *CAST_SAFE, "--ttl", "300"), "0-255, got 300"),
        (("demo", "--runtime", "asyncio", "--loop", "tokio"), "invalid choice: 'tokio'"),
        (("demo", "--loop", "uvloop"), "--loop uvloop goes with --runtime asyncio"),
        (("server", "0", "--runtime", "trio", "--loop", "asyncio"), "goes with --runtime asyncio"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    """Bad arguments: exit 2, argparse's usage and a message naming the problem on stderr."""
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: jfsocket")
    last = result.stderr.splitlines()[-1]
    assert last.startswith("jfsocket") and "error:" in last and message in last, last


@pytest.mark.parametrize(
    ("args", "argument", "message"),
    [
        (("server", "localhost", "5000"), "ip", "'localhost'"),
        (("server", "127.0.0.300", "5000"), "ip", "'127.0.0.300'"),
        (("server", LOOPBACK, "http"), "port", "'http'"),
        (("server", LOOPBACK, "-1"), "port", "got -1"),
        (("server", "0", "--encoding", "utf-9"), "--encoding", "'utf-9'"),
        (("server", "0", "--encoding", "hex"), "--encoding", "'hex'"),
        (("client", "no such host", "80"), "ip", "'no such host'"),
        (("client", LOOPBACK, "65536"), "port", "got 65536"),
        (("client", LOOPBACK, "80", "--encoding", "utf-9"), "--encoding", "'utf-9'"),
        (("client", LOOPBACK, "80", "--linger", "-1"), "--linger", "'-1'"),
        (("client", LOOPBACK, "80", "--linger", "nan"), "--linger", "'nan'"),
        (("cast", "listen", "5000", "10.0.0.1"), "GROUP", "'10.0.0.1': not a multicast address"),
        (("cast", "listen", "5000", "239.255.91.9", "bogus"), "GROUP", "'bogus': not a multicast"),
        (
            ("cast", "listen", "5000", "239.255.91.9", "--recv-buffer", "0"),
            "--recv-buffer",
            "got 0",
        ),
        (("cast", "listen", "5000", "239.255.91.9", "--recv-buffer", "x"), "--recv-buffer", "'x'"),
        (
            ("cast", "listen", "5000", "239.255.91.9", "--interface", "no-such"),
            "--interface",
            "'no-such'",
        ),
        (("cast", "send", LOOPBACK, "9", "m", *SEND_SAFE), "group", "not a multicast address"),
        (("cast", "send", "239.255.91.9", "9", "m", "--interface", "any"), "--interface", "'any'"),
        (("cast", "send", "239.255.91.9", "9", "m", *SEND_SAFE, "--ttl", "-1"), "--ttl", "got -1"),
        (("cast", "send", "239.255.91.9", "x", "m", *SEND_SAFE), "port", "'x'"),
    ],
)
def test_bad_values_exit_2_naming_the_argument(
    args: tuple[str, ...], argument: str, message: str
) -> None:
    """A bad value (checked by the core's validators): exit 2, one error line naming it."""
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0] == result.stderr.splitlines()[-1], result.stderr
    assert f"error: argument {argument}: " in errors[0] and message in errors[0], errors[0]


def test_loop_uvloop_without_uvloop_is_a_usage_error(tmp_path: Path) -> None:
    """``--loop uvloop`` where uvloop cannot be imported: exit 2, and the message says so."""
    hidden = tmp_path / "uvloop"
    hidden.mkdir()
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    result = run("demo", "--runtime", "asyncio", "--loop", "uvloop", env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("jfsocket demo: error: --loop uvloop: uvloop cannot be imported"), last
    assert "hidden by the test" in last


@pytest.mark.parametrize("command", ["client", "cast send"])
def test_port_zero_where_meaningless_is_a_usage_error(command: str) -> None:
    """Port 0 means 'any free port' only where jfsocket listens; elsewhere it is usage."""
    if command == "client":
        result = run("client", LOOPBACK, "0")
    else:
        result = run("cast", "send", "239.255.91.9", "0", "m", *SEND_SAFE)
    assert result.returncode == 2, result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 with a listening socket on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen(1)
        yield holder.getsockname()[1]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that refuses connections (bound, not listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        yield holder.getsockname()[1]


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Check a runtime error's shape (exit 1, one stderr line, no traceback); return it."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jfsocket: "), result.stderr
    assert str(code) in lines[0]
    return lines[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_port_in_use_is_1005(taken_port: int, runtime: str) -> None:
    """A server on a taken port: exit 1 with a one-line 1005 message, no traceback."""
    result = run("server", LOOPBACK, str(taken_port), "--runtime", runtime)
    assert "address already in use" in one_line_error(result, 1005)
    assert "LISTENING" not in result.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_debug_shows_the_traceback(taken_port: int, runtime: str) -> None:
    """With ``--debug`` the same failure shows its traceback."""
    result = run("--debug", "server", LOOPBACK, str(taken_port), "--runtime", runtime)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "SocketError: [1005]" in result.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_connection_refused_is_1006(refusing_port: int, runtime: str) -> None:
    """A client to a port nobody listens on: exit 1 with a one-line 1006 message."""
    result = run("client", LOOPBACK, str(refusing_port), "--runtime", runtime)
    assert "could not connect" in one_line_error(result, 1006)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cast_send_to_a_group_of_the_other_family_is_1004(runtime: str) -> None:
    """An IPv6 group from the IPv4 interface: refused before sending, exit 1, one 1004 line."""
    result = run("cast", "send", "ff15::1", "9", "m", *SEND_SAFE, "--runtime", runtime)
    assert "not a multicast address" in one_line_error(result, 1004)
    assert result.stdout == ""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_idle_timeout_closes_a_silent_client(runtime: str) -> None:
    """``server --idle-timeout 0.3 --keepalive``: a raw client that says nothing is
    disconnected by the server, and sees the end of the stream."""
    with started(
        "server", LOOPBACK, "0", "--idle-timeout", "0.3", "--keepalive", "--runtime", runtime
    ) as server:
        port = int(server.expect("server", "LISTENING").detail.rpartition(":")[2])
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as raw:
            server.expect("server", "CONNECTED")
            server.expect("server", "DISCONNECT")
            assert raw.recv(1) == b""
        server.proc.send_signal(signal.SIGINT)
        code, errors = server.finish()
    assert code == 0, errors


def test_idle_timeout_must_be_positive() -> None:
    result = run("server", "0", "--idle-timeout", "0")
    assert result.returncode == 2
    assert "idle timeout" in result.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_reconnect_survives_the_server_leaving(runtime: str) -> None:
    """``client --reconnect``: the server closes the first connection; the client
    dials again, and the next stdin line arrives on the second connection."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0)))
        listener.settimeout(WAIT)
        port = str(listener.getsockname()[1])
        client = stack.enter_context(
            started("client", LOOPBACK, port, "--reconnect", "--runtime", runtime,
                    stdin=subprocess.PIPE)
        )  # fmt: skip
        assert client.proc.stdin is not None
        first, _ = listener.accept()
        with first:
            client.proc.stdin.write("one\n")
            client.proc.stdin.flush()
            first.settimeout(WAIT)
            assert recv_until(first, b"one\n") == b"one\n"
        client.expect("client", "DISCONNECT")  # the server left; the client stays
        second, _ = listener.accept()  # it dialed again
        with second:
            client.expect("client", "CONNECTED")
            client.proc.stdin.write("two\n")
            client.proc.stdin.close()  # the end of input: now it half-closes
            second.settimeout(WAIT)
            assert recv_until(second, b"two\n") == b"two\n"
            assert second.recv(1) == b""  # its EOF
        code, errors = client.finish()
    assert code == 0, errors
