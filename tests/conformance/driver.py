"""The scenario driver: one small synchronous API over every binding.

A scenario is a plain function of a :class:`Driver`::

    def test_echo(d: Driver) -> None:
        server = d.server(framing="line")
        server.on("RECEIVED", lambda ev: ev.source.send(f"echo {ev.data}"))
        client = d.client(framing="line")
        client.connect(*server.host)
        client.send("hi")
        d.expect({
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", "hi"),
                               ("SENDED", "echo hi")],
            "client1": [("CONNECTED", "client1", "server"), ("SENDED", "hi"),
                        ("RECEIVED", "echo hi")],
        })

Every object the driver makes records all its events (see :mod:`.trace`); the
driver closes everything at the end, checks the delivery invariants of SPEC
section 2 on the whole record, and reports tasks left behind.
"""

from __future__ import annotations

import fcntl
import random
import select
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import pytest
from jfsocket.core import EventTypes, SocketError, Stats

from ..certs import Certs
from .runtimes import CALL_TIMEOUT, Runner, in_action, make_runner
from .trace import WAIT, Copied, Entry, LogLine, Recorder, Trace, format_diff, same

__all__ = [
    "HUGE",
    "Driver",
    "Ev",
    "Handle",
    "Pump",
    "RawListener",
    "RawPeer",
]

LOCALHOST: Final = "127.0.0.1"
#: Bigger than loopback's socket buffers on both ends can hold: a send of it
#: cannot finish while the peer does not read.
HUGE: Final = 32 << 20
_KEYS: Final = {
    "TcpServer": tuple(EventTypes),
    "TcpClient": (
        EventTypes.CONNECTED,
        EventTypes.DISCONNECT,
        EventTypes.RECEIVED,
        EventTypes.SENDED,
        EventTypes.SENDFAIL,
    ),
    "CastReceiver": (EventTypes.STARTED, EventTypes.STOPED, EventTypes.RECEIVED),
    "CastSender": (EventTypes.SENDED, EventTypes.SENDFAIL),
}
#: A key as a scenario writes it: the member, its value (``'onReceived'``) or its name.
Key = EventTypes | str


def _member(key: Key) -> EventTypes:
    if isinstance(key, EventTypes):
        return key
    for member in EventTypes:
        if key in (member.value, member.name):
            return member
    raise ValueError(f"not an event: {key!r}")


class Ev:
    """What an action is handed: the event's source (as a handle), name and arguments."""

    def __init__(self, source: Handle, event: str, args: tuple[object, ...]) -> None:
        #: A :class:`ClientH` for a connection's events, the server's or receiver's
        #: handle for STARTED/STOPED: typed loosely so that actions read plainly.
        self.source: Any = source
        self.event = event
        self.args = args

    @property
    def data(self) -> object:
        """The ``data`` argument (RECEIVED, SENDED, SENDFAIL)."""
        return self.args[1]


Action = Callable[[Ev], object]


class Handle:
    """A binding object as the scenario sees it: blocking calls, recorded events."""

    def __init__(self, driver: Driver, runner: Runner, obj: Any, label: str | None) -> None:
        self.d = driver
        self.runner = runner
        #: The binding's own object (``TcpServer``, ...), for identity checks.
        self.obj = obj
        self._label = label

    @property
    def label(self) -> str:
        """This object's name in traces (a server's side: resolved from its peer's address)."""
        return self._label or self.d.recorder.label_of(self.obj)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"

    # -- the binding's surface -------------------------------------------------------

    def _get(self, name: str) -> Any:
        return self.runner.sync(lambda: getattr(self.obj, name))

    def _set(self, name: str, value: object) -> None:
        self.runner.sync(lambda: setattr(self.obj, name, value))

    def _call(self, name: str, *args: object) -> Any:
        return self.runner.call(getattr(self.obj, name), *args)

    def bind(self, key: object, evt: object) -> None:
        """``obj.bind(key, evt)`` as is (for the binding rules and their errors)."""
        self.runner.sync(lambda: self.obj.bind(key, evt))

    def on(self, key: Key, action: Action | None = None, *, plain: bool = False) -> None:
        """Bind *key* to a callback that records the event, then runs *action* (if any)."""
        # A member's name ("RECEIVED") is the scenario's shorthand; the binding gets the
        # member.  Members and their values go to the binding as written.
        given = _member(key) if isinstance(key, str) and key in EventTypes.__members__ else key
        callback = self.d._callback(self, key, action, plain)
        self.runner.sync(lambda: self.obj.bind(given, callback))

    def unbind(self, key: Key) -> None:
        """``bind(key, None)``."""
        self.bind(key, None)

    def count(self, event: str) -> int:
        """How many *event* callbacks this object has had so far."""
        return self.d.recorder.count(self.obj, event)

    def wait_for(self, event: str, count: int = 1, timeout: float = WAIT) -> None:
        """Wait until this object has had *count* *event* callbacks."""
        self.d.wait_until(
            lambda: self.count(event) >= count, timeout, f"{count} x {event} of {self.label}"
        )

    def received(self) -> list[object]:
        """The ``data`` of every RECEIVED, as delivered (not joined)."""
        return [
            args[0] for event, args in self.d.recorder.raw_args(self.obj) if event == "RECEIVED"
        ]

    def leave(self) -> None:
        """Leave the object's ``with``/``async with`` block: stops or closes it."""
        self.runner.leave(self.obj)

    @property
    def stats(self) -> Stats:
        """``stats``: the object's counters, as the core counted them."""
        stats: Stats = self._get("stats")
        return stats


class ClientH(Handle):
    """A ``TcpClient``: one the scenario made, or a server's side of a connection."""

    def connect(self, ip: str, port: int) -> None:
        """``connect``; afterwards this client's address has its label."""
        self._call("connect", ip, port)

    def send(self, data: object) -> None:
        """``send``; SENDED/SENDFAIL must then hand back this very *data*."""
        self.d.recorder.sending(data)
        self._call("send", data)

    def close(self) -> None:
        """``close``."""
        self._call("close")

    def shutdown(self) -> None:
        """``shutdown`` (our sending side only)."""
        self._call("shutdown")

    @property
    def isAlive(self) -> bool:
        """``isAlive``."""
        return bool(self._get("isAlive"))

    @property
    def host(self) -> tuple[str, int]:
        """``host`` (the test fails if there is none yet)."""
        host = self._get("host")
        assert host is not None, f"{self} has no host"
        return (host[0], host[1])

    @property
    def remote(self) -> tuple[str, int] | None:
        """``remote``."""
        remote = self._get("remote")
        return None if remote is None else (remote[0], remote[1])

    def get(self, name: str) -> Any:
        """Any property (``host`` may be ``None`` this way)."""
        return self._get(name)

    @property
    def recvBuffer(self) -> int:
        """``recvBuffer``."""
        return int(self._get("recvBuffer"))

    @recvBuffer.setter
    def recvBuffer(self, value: object) -> None:
        self._set("recvBuffer", value)


class ServerH(Handle):
    """A ``TcpServer``."""

    def start(self) -> None:
        """``start`` (on async bindings, outside ``async with``: entering it)."""
        _start(self)
        self.d.recorder.address(self.host, self.label)

    def stop(self, grace: float | None = None) -> None:
        """``stop()``, or ``stop(grace)``."""
        if grace is None:
            self._call("stop")
        else:
            self._call("stop", grace)

    def send(self, data: object, remote: object = None) -> None:
        """``send(data)`` or ``send(data, remote)``."""
        self.d.recorder.sending(data)
        if remote is None:
            self._call("send", data)
        else:
            self._call("send", data, remote)

    def close(self, remote: object = None) -> None:
        """``close()`` or ``close(remote)``."""
        if remote is None:
            self._call("close")
        else:
            self._call("close", remote)

    @property
    def isAlive(self) -> bool:
        """``isAlive``."""
        return bool(self._get("isAlive"))

    @property
    def host(self) -> tuple[str, int]:
        """``host``."""
        host = self._get("host")
        return (host[0], host[1])

    @property
    def clients(self) -> dict[tuple[str, int], ClientH]:
        """``clients``, its values as handles."""
        clients = self._get("clients")
        return {k: self.d._handle_for(v) for k, v in clients.items()}

    def raw_clients(self) -> Any:
        """``clients`` as the binding returns it (to check it is a copy)."""
        return self._get("clients")

    def side(self, peer: ClientH | RawPeer | tuple[str, int]) -> ClientH:
        """This server's side of the connection from *peer*, once its CONNECTED has run."""
        address = peer if isinstance(peer, tuple) else peer.host
        found: list[object] = []

        def seen() -> bool:
            found[:] = [o for o, r in self.d.recorder.sides(self.obj) if r == address]
            return bool(found)

        self.d.wait_until(seen, what=f"{self.label}'s CONNECTED from {address}")
        side: ClientH = self.d._handle_for(found[-1])
        return side


def _start(handle: Handle) -> None:
    runner = handle.runner
    if not handle.d._async(runner):
        runner.enter(handle.obj)  # (again) something to stop at the end
    elif not runner.entered(handle.obj):
        runner.enter(handle.obj)  # entering ``async with`` starts it
        return
    runner.call(handle.obj.start)


class ReceiverH(Handle):
    """A ``CastReceiver``."""

    def start(self) -> None:
        """``start`` (on async bindings, outside ``async with``: entering it)."""
        _start(self)

    def stop(self, grace: float | None = None) -> None:
        """``stop()``, or ``stop(grace)``."""
        if grace is None:
            self._call("stop")
        else:
            self._call("stop", grace)

    def joinGroup(self, *ips: object) -> None:
        """``joinGroup``."""
        self.runner.sync(lambda: self.obj.joinGroup(*ips))

    def dropGroup(self, *ips: object) -> None:
        """``dropGroup``."""
        self.runner.sync(lambda: self.obj.dropGroup(*ips))

    @property
    def groups(self) -> list[str]:
        """``groups``."""
        groups: list[str] = self._get("groups")
        return groups

    def raw_groups(self) -> Any:
        """``groups`` as returned (to check it is a copy)."""
        return self._get("groups")

    @property
    def host(self) -> tuple[str, int]:
        """``host``."""
        host = self._get("host")
        return (host[0], host[1])

    @property
    def port(self) -> int:
        """``host[1]``."""
        return self.host[1]

    @property
    def isAlive(self) -> bool:
        """``isAlive``."""
        return bool(self._get("isAlive"))

    @property
    def recvBuffer(self) -> int:
        """``recvBuffer``."""
        return int(self._get("recvBuffer"))

    @recvBuffer.setter
    def recvBuffer(self, value: object) -> None:
        self._set("recvBuffer", value)


class SenderH(Handle):
    """A ``CastSender`` (always TTL 0 on interface 127.0.0.1)."""

    def send(self, remote: object, data: object) -> None:
        """``send(remote, data)``."""
        self.d.recorder.sending(data)
        self._call("send", remote, data)

    def close(self) -> None:
        """``close``."""
        self._call("close")


class RawPeer:
    """A plain blocking TCP socket: the other end of a connection, outside jfsocket."""

    def __init__(self, sock: socket.socket, label: str) -> None:
        self.sock = sock
        self.label = label
        self.host: tuple[str, int] = sock.getsockname()[:2]

    def sendall(self, data: bytes) -> None:
        """Send every byte."""
        self.sock.sendall(data)

    def recv_exactly(self, size: int) -> bytes:
        """Read *size* bytes (bounded by the socket timeout)."""
        got = bytearray()  # not bytes +=: an ssl socket gives at most a record (16 KiB) a time
        while len(got) < size:
            chunk = self.sock.recv(size - len(got))
            assert chunk, f"EOF after {len(got)} of {size} bytes"
            got += chunk
        return bytes(got)

    def recv_some(self, size: int = 65536) -> bytes:
        """One ``recv``."""
        return self.sock.recv(size)

    def read_until_eof(self, timeout: float = CALL_TIMEOUT) -> bytes:
        """Everything until the other end's EOF; fail if it has not come within *timeout* s.

        Waits with ``poll``, not the socket's timeout: another thread may be
        sending on this socket meanwhile.
        """
        chunks: list[bytes] = []
        got = 0
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if not poller.poll(max(remaining, 0.0) * 1000):
                pytest.fail(
                    f"{self.label}: no EOF within {timeout:g} s, after {got} bytes",
                    pytrace=False,
                )
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                pytest.fail(f"{self.label}: reset instead of EOF, after {got} bytes", pytrace=False)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            got += len(chunk)

    def at_eof(self) -> bool:
        """The other end closed: reading gives EOF (or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def queued(self) -> int:
        """Bytes waiting in this socket's receive queue (``FIONREAD``)."""
        buf = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", buf)[0])

    def nodelay(self) -> None:
        """One ``sendall``, one segment."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def shutdown_write(self) -> None:
        """Send EOF, keep the socket: a TCP FIN with no close_notify over TLS
        (plain socket's ``shutdown``: an SSLSocket's own would end its TLS, and
        its later reads would be the ciphertext)."""
        socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def reset(self) -> None:
        """Vanish with an RST (``SO_LINGER`` on, zero timeout)."""
        if self.sock.fileno() != -1:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()

    def close(self) -> None:
        """Close (a FIN)."""
        self.sock.close()


class RawListener:
    """A plain listening socket on 127.0.0.1: a server outside jfsocket.

    Over TLS (a driver made with ``tls``), Python's own ssl server: its one
    connection is accepted, and its handshake run, by a thread started at
    once (our client's ``connect`` waits for the handshake, so it cannot
    wait for the scenario's ``accept``).
    """

    def close(self) -> None:
        """Stop listening (which ends the TLS acceptor thread, if any)."""
        self.sock.close()
        if self._acceptor is not None:
            self._acceptor.join(CALL_TIMEOUT)

    def __init__(
        self,
        driver: Driver,
        sock: socket.socket,
        label: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._d = driver
        self.sock = sock
        self.label = label
        self.host: tuple[str, int] = sock.getsockname()[:2]
        self._accepted: list[socket.socket | BaseException] = []
        self._ready = threading.Event()
        self._acceptor: threading.Thread | None = None
        if tls is not None:
            self._acceptor = threading.Thread(
                target=self._accept_tls, args=(tls,), name="conformance TLS acceptor"
            )
            self._acceptor.start()

    def _accept_tls(self, context: ssl.SSLContext) -> None:
        try:
            sock, _ = self.sock.accept()
            sock.settimeout(CALL_TIMEOUT)
            self._accepted.append(context.wrap_socket(sock, server_side=True))
        except (OSError, ValueError) as exc:
            self._accepted.append(exc)
        finally:
            self._ready.set()

    def accept(self) -> RawPeer:
        """The next connection (bounded by the socket timeout)."""
        if self._acceptor is not None:
            assert self._ready.wait(CALL_TIMEOUT), "no TLS connection accepted"
            got = self._accepted.pop()
            if isinstance(got, BaseException):
                raise got
            sock = got
        else:
            sock, _ = self.sock.accept()
        sock.settimeout(CALL_TIMEOUT)
        peer = RawPeer(sock, self.label)
        self._d._keep(peer)
        return peer


class Pump:
    """Sends items from its own thread, one ``send`` at a time, until one raises.

    ``accepted`` are the items whose ``send`` returned (each must get exactly
    one SENDED or SENDFAIL); ``in_flight`` the item being sent; ``error`` what
    stopped it early.
    """

    def __init__(self, send: Callable[[object], None], items: Iterable[object]) -> None:
        self._send = send
        self._items = items
        self._lock = threading.Lock()
        self.accepted: list[object] = []
        self.in_flight: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="conformance pump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for item in self._items:
            with self._lock:
                self.in_flight = item
            try:
                self._send(item)
            except BaseException as exc:
                with self._lock:
                    self.error = exc
                    self.in_flight = None
                return
            with self._lock:
                self.accepted.append(item)
                self.in_flight = None

    def sending(self, item: object) -> bool:
        """Whether *item*'s ``send`` has been called and has not returned."""
        with self._lock:
            return self.in_flight is item

    def join(self, timeout: float = CALL_TIMEOUT) -> None:
        """Wait for the pump to finish; fail if it does not."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the pump is still sending"


class Driver:
    """Makes objects of one binding (or, for interop, several), records, checks, cleans up."""

    def __init__(self, binding: str, tls: Certs | None = None) -> None:
        self.binding = binding
        #: Over TLS: servers and clients get ``ssl=`` contexts from these
        #: certificates, and plain peers are Python's own ssl sockets.
        self.tls = tls
        self._server_context = tls.server_context() if tls is not None else None
        self._client_context = tls.client_context() if tls is not None else None
        self.recorder = Recorder()
        self._runners: dict[str, Runner] = {}
        self._handles: dict[int, Handle] = {}
        self._counts: dict[str, int] = {}
        self._raw: list[RawPeer | RawListener | socket.socket] = []
        self._pumps: list[Pump] = []
        self._kinds: dict[str, str] = {}
        self._closed = False
        runner = self.runner(binding)
        self.recorder.driving = getattr(runner, "wait", None)

    # -- plumbing --------------------------------------------------------------------

    def runner(self, binding: str | None = None) -> Runner:
        """The runner of *binding* (the driver's own by default), started on first use."""
        name = binding or self.binding
        if name not in self._runners:
            self._runners[name] = make_runner(name)
        return self._runners[name]

    def _async(self, runner: Runner) -> bool:
        return runner.asynchronous

    def _next(self, prefix: str) -> str:
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        n = self._counts[prefix]
        return prefix if prefix == "server" and n == 1 else f"{prefix}{n}"

    def _callback(
        self, owner: Handle, key: Key, action: Action | None, plain: bool
    ) -> Callable[..., object]:
        event = _member(key).name
        recorder = self.recorder

        def body(args: tuple[object, ...]) -> None:
            recorder.record(owner.obj, event, args)
            if action is not None:
                source = self._handle_for(args[0]) if args else owner
                action(Ev(source, event, args))

        return owner.runner.callback(body, recorder.entered, recorder.left, plain=plain)

    def _evts(
        self,
        handle: Handle,
        cls: str,
        keys: Iterable[Key] | None,
        unbound: Iterable[Key],
        plain: bool,
    ) -> dict[Key, Callable[..., object] | None]:
        evts: dict[Key, Callable[..., object] | None] = {}
        for key in keys if keys is not None else _KEYS[cls]:
            evts[key] = self._callback(handle, key, None, plain)
        for key in unbound:
            evts[key] = None
        return evts

    def _make(
        self,
        kind: type[Handle],
        cls: str,
        prefix: str,
        args: tuple[object, ...],
        options: dict[str, Any],
        *,
        binding: str | None,
        keys: Iterable[Key] | None,
        unbound: Iterable[Key],
        plain: bool,
        raw: bool,
    ) -> Any:
        runner = self.runner(binding)
        options = {k: v for k, v in options.items() if v is not _DEFAULT}
        # Made bare, then bound through ``evts``: the constructor's mapping is the
        # binding path every scenario uses (``on``/``bind`` are tested separately).
        # The callbacks find the object through the handle: it exists only once made.
        handle = kind(self, runner, None, None)

        def make() -> Any:
            evts = None if _no_evts(keys) else self._evts(handle, cls, keys, unbound, plain)
            return getattr(runner.module, cls)(*args, evts=evts, **options)

        handle.obj = runner.sync(make)
        handle._label = self._next(prefix)
        self.recorder.name(handle.obj, handle._label, raw=raw)
        self._handles[id(handle.obj)] = handle
        self._kinds[handle._label] = cls
        if not self._async(runner) or cls in ("TcpClient", "CastSender"):
            # Threaded: ``with`` starts nothing, only its exit matters.  Async: a
            # client's or sender's ``async with`` starts nothing either.
            runner.enter(handle.obj)
        return handle

    def _handle_for(self, obj: Any) -> Any:
        handle = self._handles.get(id(obj))
        if handle is None:
            runner = next(
                r for r in self._runners.values() if type(obj).__module__ == r.module.__name__
            )
            handle = self._handles[id(obj)] = ClientH(self, runner, obj, None)
        return handle

    def _keep(self, thing: RawPeer | RawListener | socket.socket) -> None:
        self._raw.append(thing)

    def real_sockets(self, what: str) -> None:
        """Skip a scenario that needs *what* (the OS's sockets, or threads that
        block on them) on a runtime without either: the memory binding's
        virtual network, where plain peers are virtual sockets driven by the
        scenario's own thread."""
        if not self.runner().real_sockets:
            pytest.skip(f"{self.binding}: the scenario needs real sockets or threads ({what})")

    # -- objects -----------------------------------------------------------------------

    def server(
        self,
        ip: object = LOCALHOST,
        port: object = 0,
        *,
        start: bool = True,
        binding: str | None = None,
        keys: Iterable[Key] | None = None,
        unbound: Iterable[Key] = (),
        plain: bool = False,
        encoding: object = None,
        framing: object = None,
        max_message_size: object = None,
        recv_buffer: object = None,
        **extra: object,
    ) -> ServerH:
        """A ``TcpServer`` (``server``, ``server2``...), started unless *start* is false.

        Options left out keep the binding's defaults; ``encoding=NONE`` asks
        for ``encoding=None``.
        """
        options: dict[str, Any] = {
            "encoding": encoding,
            "framing": framing,
            "max_message_size": max_message_size,
            "recv_buffer": recv_buffer,
            **extra,
        }
        options = _defaults(options)
        if self._server_context is not None:
            options.setdefault("ssl", self._server_context)
        handle: ServerH = self._make(
            ServerH,
            "TcpServer",
            "server",
            (ip, port),
            options,
            binding=binding,
            keys=keys,
            unbound=unbound,
            plain=plain,
            raw=options.get("framing", _DEFAULT) in (_DEFAULT, None, "raw"),
        )
        if start:
            handle.start()
        return handle

    def client(
        self,
        *,
        binding: str | None = None,
        keys: Iterable[Key] | None = None,
        unbound: Iterable[Key] = (),
        plain: bool = False,
        encoding: object = None,
        framing: object = None,
        max_message_size: object = None,
        recv_buffer: object = None,
        **extra: object,
    ) -> ClientH:
        """A ``TcpClient`` (``client1``, ``client2``...), not connected, lifetime begun."""
        options = _defaults(
            {
                "encoding": encoding,
                "framing": framing,
                "max_message_size": max_message_size,
                "recv_buffer": recv_buffer,
                **extra,
            }
        )
        if self._client_context is not None:
            options.setdefault("ssl", self._client_context)
        handle: ClientH = self._make(
            ClientH,
            "TcpClient",
            "client",
            (),
            options,
            binding=binding,
            keys=keys,
            unbound=unbound,
            plain=plain,
            raw=options.get("framing", _DEFAULT) in (_DEFAULT, None, "raw"),
        )
        return handle

    def connected(self, server: ServerH, **options: Any) -> tuple[ClientH, ClientH]:
        """A new client connected to *server*, and the server's side of it."""
        client = self.client(**options)
        client.connect(*server.host)
        return client, server.side(client)

    def receiver(
        self,
        host: object = None,
        *,
        start: bool = False,
        binding: str | None = None,
        keys: Iterable[Key] | None = None,
        plain: bool = False,
        encoding: object = None,
        recv_buffer: object = None,
    ) -> ReceiverH:
        """A ``CastReceiver`` on ``('0.0.0.0', 0)`` (or *host*), joining on 127.0.0.1 only."""
        options = _defaults({"encoding": encoding, "recv_buffer": recv_buffer})
        options["interface"] = LOCALHOST
        handle: ReceiverH = self._make(
            ReceiverH,
            "CastReceiver",
            "receiver",
            (("0.0.0.0", 0) if host is None else host,),
            options,
            binding=binding,
            keys=keys,
            unbound=(),
            plain=plain,
            raw=False,
        )
        if start:
            handle.start()
        return handle

    def sender(
        self, *, binding: str | None = None, plain: bool = False, encoding: object = None
    ) -> SenderH:
        """A ``CastSender`` that cannot leave this host: TTL 0, interface 127.0.0.1."""
        options = _defaults({"encoding": encoding})
        options.update(ttl=0, interface=LOCALHOST)
        handle: SenderH = self._make(
            SenderH,
            "CastSender",
            "sender",
            (),
            options,
            binding=binding,
            keys=None,
            unbound=(),
            plain=plain,
            raw=False,
        )
        return handle

    def construct(self, cls: str, *args: object, **kwargs: object) -> Any:
        """A bare binding object (no recording, never started): for constructor errors."""
        runner = self.runner()
        return runner.sync(lambda: getattr(runner.module, cls)(*args, **kwargs))

    @property
    def SocketError(self) -> type[SocketError]:
        """The binding's ``SocketError`` (which must be the core's: a test checks it)."""
        error: type[SocketError] = self.runner().module.SocketError
        return error

    # -- plain sockets -----------------------------------------------------------------

    def raw_connect(
        self,
        address: tuple[str, int],
        *,
        rcvbuf: int | None = None,
        sndbuf: int | None = None,
        tls: bool = True,
    ) -> RawPeer:
        """A plain socket connected to *address* (``raw1``, ``raw2``...); over TLS
        (unless *tls* is false), a Python ssl socket whose handshake is done."""
        virtual = getattr(self.runner(), "raw_connect", None)
        if virtual is not None:  # the memory network's own kind of plain socket
            made: RawPeer = virtual(address, self._next("raw"), rcvbuf)
            self._keep(made)
            self.recorder.address(made.host, made.label)
            return made
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._keep(sock)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.settimeout(CALL_TIMEOUT)
        sock.connect(address)
        if self._client_context is not None and tls:
            sock = self._client_context.wrap_socket(sock, server_hostname=address[0])
            self._keep(sock)
        peer = RawPeer(sock, self._next("raw"))
        self.recorder.address(peer.host, peer.label)
        return peer

    def raw_listener(self, *, rcvbuf: int | None = None) -> RawListener:
        """A plain listening socket on 127.0.0.1 (``rawserver``)."""
        virtual = getattr(self.runner(), "raw_listener", None)
        if virtual is not None:
            made: RawListener = virtual("rawserver", rcvbuf)
            self._keep(made)
            self.recorder.address(made.host, made.label)
            return made
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._keep(sock)
        if rcvbuf is not None:  # inherited by the accepted sockets
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((LOCALHOST, 0))
        sock.listen(8)
        sock.settimeout(CALL_TIMEOUT)
        context = self.tls.server_context() if self.tls is not None else None
        listener = RawListener(self, sock, "rawserver", context)
        self._keep(listener)  # closed (and its acceptor joined) at the end
        self.recorder.address(listener.host, listener.label)
        return listener

    def closed_port(self) -> int:
        """A port of 127.0.0.1 bound but not listening: connecting to it is refused."""
        closed_port = getattr(self.runner(), "closed_port", None)
        if closed_port is not None:
            free: int = closed_port()
            return free
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._keep(sock)
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port

    def pump(self, send: Callable[[object], None], items: Iterable[object]) -> Pump:
        """A :class:`Pump` sending *items* with *send* from its own thread."""
        self.real_sockets("a sending thread")
        pump = Pump(send, items)
        self._pumps.append(pump)
        return pump

    @staticmethod
    def groups(count: int) -> list[str]:
        """*count* distinct random groups in 239.255.0.0/16 (administratively scoped)."""
        picked = random.sample(range(257, 65279), count)
        return [f"239.255.{n >> 8}.{n & 255}" for n in picked]

    # -- recording ---------------------------------------------------------------------

    def note(self, handle: Handle, text: str) -> None:
        """A marker in *handle*'s trace; inside an action it lands after the calls before it."""
        pending = in_action()
        if pending is not None and self._async(handle.runner):
            pending.append(lambda: self.recorder.note(handle.obj, text))
        else:
            self.recorder.note(handle.obj, text)

    def trace(self) -> Trace:
        """Every object's normalised trace so far."""
        return self.recorder.trace()

    def logs(self) -> list[LogLine]:
        """The ``jfsocket`` log lines (WARNING and above) so far."""
        return self.recorder.logs()

    def order(self) -> list[tuple[str, str]]:
        """``(label, event)`` of every event so far, in the one order they were recorded
        (meaningful across objects only where the SPEC orders them)."""
        return self.recorder.order()

    def wait_until(
        self, predicate: Callable[[], object], timeout: float = WAIT, what: str = ""
    ) -> None:
        """Wait until *predicate* holds (re-checked on each event or log line); bounded."""
        self.recorder.wait_until(predicate, timeout, what)

    def expect(
        self,
        expected: Mapping[str, Sequence[Entry]],
        *,
        partial: bool = False,
        only: Iterable[str] | None = None,
        timeout: float = WAIT,
    ) -> None:
        """Wait until the trace equals *expected*, object by object; fail with a diff.

        Every object that had events must be listed, unless *partial*.  *only*
        compares just those events (for an object whose events of different
        kinds may interleave either way).  Events still on their way are waited
        for; a trace that has not become equal at *timeout* fails.
        """
        actual: Trace = {}
        kinds = set(only) if only is not None else None

        def equal() -> bool:
            actual.clear()
            for label, entries in self.trace().items():
                kept = [e for e in entries if kinds is None or e[0] in kinds]
                if kept or kinds is None:
                    actual[label] = kept
            labels = set(expected) if partial else set(expected) | set(actual)
            return all(same(list(expected.get(k, [])), actual.get(k, [])) for k in labels)

        if self.recorder.poll(equal, timeout):
            return
        labels = sorted(set(expected) if partial else set(expected) | set(actual))
        diffs = [
            format_diff(k, list(expected.get(k, [])), actual.get(k, []))
            for k in labels
            if not same(list(expected.get(k, [])), actual.get(k, []))
        ]
        pytest.fail("\n".join(diffs), pytrace=False)

    # -- the end -----------------------------------------------------------------------

    def close(self) -> None:
        """Close everything, then check the invariants of the whole record; fail on a problem."""
        if self._closed:
            return
        self._closed = True
        problems: list[str] = []
        for runner in reversed(list(self._runners.values())):
            problems += runner.close()
        for thing in self._raw:
            thing.close()
        for pump in self._pumps:
            pump._thread.join(CALL_TIMEOUT)
            if pump._thread.is_alive():
                problems.append("a pump is still sending")
        self.recorder.close()
        problems += invariants(self.trace(), self._kinds)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Final = _Default()
#: ``encoding=NONE`` asks for ``encoding=None`` (``None`` means "the default").
NONE: Final = "<no encoding>"


def _defaults(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        out[key] = None if value is NONE else value
    return out


def _no_evts(keys: Iterable[Key] | None) -> bool:
    return keys is not None and not list(keys)


_CONNECTION: Final = ("CONNECTED", "DISCONNECT", "RECEIVED", "SENDED", "SENDFAIL")


def invariants(trace: Trace, kinds: dict[str, str]) -> list[str]:
    """SPEC section 2's delivery rules, checked on every object's whole trace:
    CONNECTED first, exactly one DISCONNECT per CONNECTED and nothing after it
    (until a reconnection), STARTED/STOPED alternating, no callback overlap,
    SENDED/SENDFAIL data handed back as passed.  *kinds*: label -> class name
    (a label not in it is a server's side of a connection)."""
    problems: list[str] = []
    for label, entries in trace.items():
        names = [str(e[0]) for e in entries if e[0] != "note"]
        if "OVERLAP" in names:
            problems.append(f"{label}: two callbacks ran at once")
        if any(isinstance(e[1], Copied) for e in entries if len(e) > 1):
            problems.append(f"{label}: SENDED/SENDFAIL handed back a copy of the data")
        if kinds.get(label, "TcpClient") == "TcpClient":
            problems += _connection_rule(label, names)
        if kinds.get(label) in ("TcpServer", "CastReceiver"):
            problems += _lifetime_rule(label, names)
    return problems


def _connection_rule(label: str, names: list[str]) -> list[str]:
    problems: list[str] = []
    open_ = False
    for name in names:
        if name == "CONNECTED":
            if open_:
                problems.append(f"{label}: CONNECTED twice without DISCONNECT: {names}")
            open_ = True
        elif name in _CONNECTION:
            if not open_:
                problems.append(f"{label}: {name} outside a connection: {names}")
            if name == "DISCONNECT":
                open_ = False
    if open_:
        problems.append(f"{label}: no DISCONNECT after everything was closed: {names}")
    return problems


def _lifetime_rule(label: str, names: list[str]) -> list[str]:
    problems: list[str] = []
    started = False
    for name in names:
        if name == "STARTED":
            if started:
                problems.append(f"{label}: STARTED twice: {names}")
            started = True
        elif name == "STOPED":
            if not started:
                problems.append(f"{label}: STOPED without STARTED: {names}")
            started = False
        elif name not in ("RECEIVED",):
            problems.append(f"{label}: {name} is not an event of this object")
    if started:
        problems.append(f"{label}: no STOPED after everything was stopped: {names}")
    return problems
