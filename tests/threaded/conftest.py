"""Shared helpers for the threaded binding's tests: waiting, recording, leak checks.

Rules these helpers enforce for every test below this folder:

* nothing waits by sleeping: :func:`wait_until` polls with short timed waits on
  a :class:`threading.Event`, and :class:`EventLog` waits on a condition;
* every wait is bounded and fails with a message saying what it waited for;
* a test that leaves a thread or a file descriptor behind fails
  (:func:`no_leaks`, autouse).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest
from jfsocket.bindings.threaded import (
    CastReceiver,
    CastSender,
    EventTypes,
    TcpClient,
    TcpServer,
)
from jfsocket.core import Callback

__all__ = [
    "CLIENT_KEYS",
    "RECEIVER_KEYS",
    "SENDER_KEYS",
    "SERVER_KEYS",
    "EventLog",
    "Objects",
    "no_leaks",
    "objects",
    "open_fds",
    "poll",
    "wait_until",
]

#: The events each class emits (SPEC section 2), as the string keys.
SERVER_KEYS: Final = (
    "onStarted",
    "onStoped",
    "onConnected",
    "onDisconnect",
    "onReceived",
    "onSended",
    "onSendFail",
)
CLIENT_KEYS: Final = ("onConnected", "onDisconnect", "onReceived", "onSended", "onSendFail")
RECEIVER_KEYS: Final = ("onStarted", "onStoped", "onReceived")
SENDER_KEYS: Final = ("onSended", "onSendFail")

_POLL: Final = 0.005

Record = tuple[str, tuple[object, ...]]
Evts = dict[EventTypes | str, Callback | None]


def poll(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll *predicate* with short timed waits; ``True`` once it holds, ``False`` at timeout."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(_POLL)


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Wait until *predicate* holds; fail the test with a clear message at *timeout*."""
    if not poll(predicate, timeout):
        name = what or getattr(predicate, "__qualname__", repr(predicate))
        pytest.fail(f"timed out after {timeout:g} s waiting for {name}", pytrace=False)


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def _fd_targets() -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            targets.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
    return targets


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves a thread or an open file descriptor behind."""
    threads = set(threading.enumerate())
    fds = open_fds()
    yield
    if not poll(lambda: set(threading.enumerate()) == threads, timeout=5.0):
        extra = sorted(t.name for t in set(threading.enumerate()) - threads)
        gone = sorted(t.name for t in threads - set(threading.enumerate()))
        pytest.fail(f"threads left behind: {extra}; threads gone: {gone}", pytrace=False)
    if not poll(lambda: open_fds() == fds, timeout=5.0):
        pytest.fail(
            f"{open_fds()} fds open after the test, {fds} before: {_fd_targets()}",
            pytrace=False,
        )


class EventLog:
    """Records callbacks, thread-safely; bind its ``on...`` methods (or :meth:`evts`).

    Each record is ``(event name, args)``, the name being the event's string key.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[Record] = []

    def record(self, name: str, *args: object) -> None:
        """Append one record and wake the waiters."""
        with self._cond:
            self._records.append((name, args))
            self._cond.notify_all()

    def onStarted(self, *args: object) -> None:
        """Callback for STARTED."""
        self.record("onStarted", *args)

    def onStoped(self, *args: object) -> None:
        """Callback for STOPED."""
        self.record("onStoped", *args)

    def onConnected(self, *args: object) -> None:
        """Callback for CONNECTED."""
        self.record("onConnected", *args)

    def onDisconnect(self, *args: object) -> None:
        """Callback for DISCONNECT."""
        self.record("onDisconnect", *args)

    def onReceived(self, *args: object) -> None:
        """Callback for RECEIVED."""
        self.record("onReceived", *args)

    def onSended(self, *args: object) -> None:
        """Callback for SENDED."""
        self.record("onSended", *args)

    def onSendFail(self, *args: object) -> None:
        """Callback for SENDFAIL."""
        self.record("onSendFail", *args)

    def evts(self, keys: tuple[str, ...] = CLIENT_KEYS) -> Evts:
        """An ``evts`` mapping binding this log to *keys*."""
        methods: dict[str, Callback] = {
            "onStarted": self.onStarted,
            "onStoped": self.onStoped,
            "onConnected": self.onConnected,
            "onDisconnect": self.onDisconnect,
            "onReceived": self.onReceived,
            "onSended": self.onSended,
            "onSendFail": self.onSendFail,
        }
        return {key: methods[key] for key in keys}

    @property
    def records(self) -> list[Record]:
        """A copy of every record so far, in order."""
        with self._cond:
            return list(self._records)

    def names(self) -> list[str]:
        """The event names so far, in order."""
        return [name for name, _ in self.records]

    def args(self, name: str) -> list[tuple[object, ...]]:
        """The argument tuples of every *name* event so far."""
        return [args for n, args in self.records if n == name]

    def count(self, name: str) -> int:
        """How many *name* events so far."""
        return len(self.args(name))

    def of(self, source: object) -> list[Record]:
        """The records whose first argument is *source* (one connection's events)."""
        return [(n, a) for n, a in self.records if a and a[0] is source]

    def data(self, name: str = "onReceived", source: object = None) -> list[object]:
        """The ``data`` argument of every *name* event (of *source*, if given)."""
        return [a[1] for n, a in self.records if n == name and (source is None or a[0] is source)]

    def text(self, source: object = None) -> str:
        """Everything RECEIVED (as ``str``), concatenated."""
        return "".join(str(d) for d in self.data("onReceived", source))

    def wait(self, predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
        """Wait until *predicate* holds (re-checked on each record); fail at *timeout*."""
        with self._cond:
            if self._cond.wait_for(predicate, timeout):
                return
            seen = [n for n, _ in self._records]
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}; saw {seen}", pytrace=False)

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[tuple[object, ...]]:
        """Wait until at least *count* *name* events were recorded; return their args."""

        def enough() -> bool:
            return sum(1 for n, _ in self._records if n == name) >= count

        self.wait(enough, timeout, f"{count} x {name}")
        return self.args(name)


class Objects:
    """Creates jfsocket objects, and closes them all at teardown."""

    def __init__(self) -> None:
        self._finalizers: list[Callable[[], None]] = []

    def later(self, finalizer: Callable[[], None]) -> None:
        """Run *finalizer* at teardown (last registered, first run)."""
        self._finalizers.append(finalizer)

    def server(
        self,
        log: EventLog | None = None,
        ip: str = "127.0.0.1",
        *,
        start: bool = True,
        encoding: str | None = "utf-8",
        framing: str | None = None,
        max_message_size: int = 1 << 20,
        recv_buffer: int = 256,
        **options: Any,
    ) -> TcpServer:
        """A TcpServer on *ip* port 0, bound to *log*, started unless told otherwise
        (*options*: more of TcpServer's keywords)."""
        server = TcpServer(
            ip,
            0,
            log.evts(SERVER_KEYS) if log is not None else None,
            encoding=encoding,
            framing=framing,
            max_message_size=max_message_size,
            recv_buffer=recv_buffer,
            **options,
        )
        self.later(server.stop)
        if start:
            server.start()
        return server

    def client(
        self,
        log: EventLog | None = None,
        *,
        encoding: str | None = "utf-8",
        framing: str | None = None,
        max_message_size: int = 1 << 20,
        recv_buffer: int = 256,
    ) -> TcpClient:
        """A TcpClient bound to *log*, not connected."""
        client = TcpClient(
            evts=log.evts(CLIENT_KEYS) if log is not None else None,
            encoding=encoding,
            framing=framing,
            max_message_size=max_message_size,
            recv_buffer=recv_buffer,
        )
        self.later(client.close)
        return client

    def connect(
        self,
        server: TcpServer,
        server_log: EventLog,
        log: EventLog | None = None,
        *,
        encoding: str | None = "utf-8",
        framing: str | None = None,
    ) -> tuple[TcpClient, TcpClient]:
        """A client connected to *server*, and the server's side of that connection.

        Waits until the server has fired CONNECTED for it (*server_log*).
        """
        client = self.client(log, encoding=encoding, framing=framing)
        client.connect(*server.host)
        return client, self.server_side(server_log, client.host)

    def server_side(self, server_log: EventLog, remote: object) -> TcpClient:
        """The server-side TcpClient whose remote is *remote*, once CONNECTED fired."""

        def mine() -> bool:
            return any(a[2] == remote for a in server_log.args("onConnected"))

        server_log.wait(mine, what=f"the server's CONNECTED from {remote}")
        side = next(a[0] for a in server_log.args("onConnected") if a[2] == remote)
        assert isinstance(side, TcpClient)
        return side

    def receiver(
        self,
        log: EventLog | None = None,
        port: int = 0,
        *,
        encoding: str | None = "utf-8",
        recv_buffer: int = 256,
    ) -> CastReceiver:
        """A CastReceiver on ``('0.0.0.0', port)`` joining on 127.0.0.1 (not started)."""
        receiver = CastReceiver(
            ("0.0.0.0", port),
            log.evts(RECEIVER_KEYS) if log is not None else None,
            interface="127.0.0.1",
            encoding=encoding,
            recv_buffer=recv_buffer,
        )
        self.later(receiver.stop)
        return receiver

    def sender(self, log: EventLog | None = None, *, encoding: str | None = "utf-8") -> CastSender:
        """A CastSender that cannot leave this host: ttl=0 on 127.0.0.1."""
        sender = CastSender(
            log.evts(SENDER_KEYS) if log is not None else None,
            ttl=0,
            interface="127.0.0.1",
            encoding=encoding,
        )
        self.later(sender.close)
        return sender

    def close_all(self) -> None:
        """Run every finalizer, newest first; report the first failure at the end."""
        errors: list[BaseException] = []
        while self._finalizers:
            try:
                self._finalizers.pop()()
            except Exception as exc:  # keep closing the rest
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def objects() -> Iterator[Objects]:
    """An :class:`Objects` factory; everything it made is stopped/closed at teardown."""
    made = Objects()
    yield made
    made.close_all()
