"""The memory binding's TCP objects (see :mod:`jfsocket.bindings.memory`).

A ``TcpClient`` drives one core :class:`Connection` over a
:class:`VirtualSocket`; the steps are the threaded binding's (read → feed →
act; send → write what the window takes → settle), run by the network's
tasks instead of threads.
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Any, TypeVar

from jfsocket.core import (
    OVERFLOW,
    Address,
    CallbackRegistry,
    Connection,
    Dispatcher,
    ServerModel,
    ServerState,
    SocketError,
    StreamEvent,
    encode_payload,
    innermost,
)

from ._facade import ClientFacade, Evts, ServerFacade, SyncLifetime
from ._memnet import Host, Network
from ._memsock import Alarm, VirtualSocket

__all__ = ["TcpClient", "TcpServer", "where"]

_T = TypeVar("_T")


def where(network: Network | Host | None) -> Host:
    """The host an object made with ``network=`` lives on (a network's: its localhost)."""
    if isinstance(network, Network):
        return network.localhost
    if isinstance(network, Host):
        return network
    raise TypeError(
        "a memory binding object needs network=Network() (or one of its hosts), "
        f"not {type(network).__name__}"
    )


def _no_tls(context: object) -> None:
    """``ssl=`` is refused, not ignored: the virtual network carries plaintext only."""
    if context is not None:
        raise ValueError("ssl: the memory binding has no TLS; test TLS code on a real binding")


class _Tracer:
    """Puts every event of one object into ``net.trace`` (a sink of its dispatcher)."""

    def __init__(self, net: Network, name: str, dispatcher: Dispatcher) -> None:
        self._net = net
        self._name = name
        self._dispatcher = dispatcher
        dispatcher.subscribe(self)

    def send_nowait(self, event: StreamEvent) -> None:
        self._net.record(self._name, (event,))

    def close(self) -> None:
        # The object's last event ends its streams; its trace goes on (a restart).
        self._dispatcher.subscribe(self)


class _Object(SyncLifetime):
    """What every memory object has: its host, network, dispatcher and trace name."""

    _vhost: Host
    _net: Network
    _dispatcher: Dispatcher
    _registry: CallbackRegistry

    def _attach(self, last: tuple[type, ...] = ()) -> None:
        self._net = self._vhost.network
        self._dispatcher = Dispatcher(self._registry, last=last)
        _Tracer(self._net, self._net.register(self), self._dispatcher)

    def _go(self, run: bool) -> None:
        """Dispatch what a push queued (*run*: this caller must drain): at once
        inside the network, as the threaded binding's caller would; else on
        the next run."""
        if run:
            if self._net.running:
                self._dispatcher.run_all(self._net)
            else:
                self._net.soon(lambda: self._dispatcher.run_all(self._net))

    def _push(self, events: list[Any]) -> None:
        self._go(self._dispatcher.push(events))


class TcpClient(ClientFacade[VirtualSocket], _Object):
    """A TCP connection on the virtual network: to a server (``connect``), or a server's side."""

    _socket_type = VirtualSocket
    _server: TcpServer | None

    def __init__(
        self,
        socket: VirtualSocket | None = None,
        evts: Evts | None = None,
        *,
        network: Network | Host | None = None,
        **options: Any,
    ) -> None:
        """The threaded ``TcpClient``'s arguments, and where it lives (*network*)."""
        server = options.get("_server")
        self._vhost = server._vhost if server is not None else where(network)
        super().__init__(socket, evts, **options)
        _no_tls(self._tls_context)

    def _init(self, options: Any, server: TcpServer | None) -> None:
        self._server = server
        self._attach()
        self._conn = Connection(self, options, self._dispatcher)
        #: The connection's socket (the last one once it ended, for inspection).
        self._sock: VirtualSocket | None = None
        self._live: VirtualSocket | None = None  # the socket until its end is handled
        self._outbox: deque[tuple[int, memoryview]] = deque()
        self._alarm = Alarm(self._net, self._on_timer)
        self._redial_alarm = Alarm(self._net, self._redial_due)
        self._reset = False
        self._hello = False  # a server's client: its CONNECTED waits to be drained

    def _given(self, socket: VirtualSocket) -> None:
        run = self._adopt(socket)
        if self._server is None:
            self._step(run)
        else:  # a server's: its CONNECTED runs once it is registered (see _registered)
            self._hello = run

    def _registered(self) -> None:
        self._step(self._hello)

    def _adopt(self, sock: VirtualSocket) -> bool:
        """The connection is made: CONNECTED is queued (``True``: drain it)."""
        conn = self._conn
        sock.owner = self
        self._sock = self._live = sock
        self._reset = False
        events = conn.connection_made(sock.address, sock.peer_address, now=self._net.now)
        if self._redial is not None:
            self._redial.connected(self._net.now)
        return self._dispatcher.push(list(events))

    def connect(
        self,
        ip: str,
        port: int,
        *,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Connect to ``(ip, port)`` (an address, or a host's name, of the network).

        CONNECTED has fired when this returns (from outside the network; see
        the module docstring).  Already connected: 1000; refused, no such
        host, or partitioned away: 1006 (at once: the clock does not move).
        """
        host, port, _, _ = self._dial_args(ip, port, timeout, server_hostname)  # no TLS here
        self._conn.start_connect()
        try:
            sock = self._net.connect(self._vhost, host, port)
        except OSError as exc:
            raise self._conn.connect_failed(exc) from exc
        self._step(self._adopt(sock))
        self._net.settle()

    # -- what the socket reports -------------------------------------------------------

    def _data(self, sock: VirtualSocket, data: bytes) -> None:
        if sock is self._live:
            conn = self._conn
            self._step(conn.feed(data, self._net.now if conn.clocked else None))

    def _eof(self, sock: VirtualSocket) -> None:
        if sock is self._live:
            self._step(self._dispatcher.push(self._conn.receive_eof()))
            self._eof_dispatched(sock)

    def _eof_dispatched(self, sock: VirtualSocket) -> None:
        """Once every event up to the EOF has run, the core may close."""
        if sock is not self._live:
            return
        if self._dispatcher.busy:  # the EOF came while one of our callbacks runs
            self._dispatcher.on_idle = lambda: self._net.soon(lambda: self._eof_dispatched(sock))
            return
        run = self._dispatcher.push(self._conn.eof_dispatched())
        self._step(self._flush() or run)

    def _lost(self, sock: VirtualSocket, exc: OSError) -> None:
        if sock is self._live:
            self._step(self._dispatcher.push(self._conn.connection_lost(exc)))

    def _room(self, sock: VirtualSocket) -> None:
        if sock is self._live:
            self._step(self._flush())

    def _on_timer(self) -> None:
        self._step(self._dispatcher.push(self._conn.handle_timer(self._net.now)))

    def _step(self, run: bool) -> None:
        """After every input: the socket's end or the next deadline, then the
        events (a server's client leaves the registry before its DISCONNECT runs)."""
        self._after()
        self._go(run)
        if self._server is not None:  # STOPED once the last client's DISCONNECT is queued
            self._server._check_stopped()

    def _after(self) -> None:
        """The socket ends once the core closed; else the deadline is the core's next one."""
        conn = self._conn
        if conn.closed:
            self._end()
        elif self._live is not None:
            self._alarm.arm(conn.timer())

    def _end(self) -> None:
        sock, self._live = self._live, None
        if sock is None:
            return
        self._alarm.arm(None)
        self._outbox.clear()  # the core failed what was not written
        sock.close(reset=self._reset)
        if self._server is not None:
            self._server._client_gone(self)
        redial = self._redial
        if redial is not None:
            conn, net = self._conn, self._net
            self._dispatcher.publish(
                redial.lost(net.now, net.random.random(), conn.ended_by, conn.asked)
            )
            self._redial_alarm.arm(redial.timer())

    def _redial_due(self) -> None:
        redial, net = self._redial, self._net
        assert redial is not None
        if not redial.handle_timer(net.now):
            self._redial_alarm.arm(redial.timer())
            return
        remote = self._conn.remote
        assert remote is not None
        try:
            self.connect(*remote)
        except SocketError as exc:
            self._dispatcher.publish(redial.failed(net.now, net.random.random(), exc))
            self._redial_alarm.arm(redial.timer())

    # -- data ------------------------------------------------------------------------

    def send(self, data: Any) -> None:
        """Send *data* (str, bytes, bytearray, memoryview); SENDED or SENDFAIL follows
        once the peer's window has taken all of it.  Not connected: 1001."""
        conn = self._conn
        ticket, payload = conn.send(data, self._net.now if conn.clocked else None)
        if ticket == OVERFLOW:
            self._step(self._dispatcher.push(conn.overflowed(data)))
        else:
            self._outbox.append((ticket, memoryview(payload)))
            self._step(self._flush())

    def _flush(self) -> bool:
        """Write what the window takes, in order; settle each send written in
        full.  ``True``: the caller must drain (see :meth:`_step`)."""
        sock, conn, outbox, dispatcher = self._live, self._conn, self._outbox, self._dispatcher
        run = False
        if sock is None:
            return run
        while outbox:
            ticket, view = outbox[0]
            try:
                written = sock.write(view)
            except OSError as exc:
                outbox.clear()
                return (
                    dispatcher.push(conn.send_failed(ticket, exc) + conn.connection_lost(exc))
                    or run
                )
            if written < len(view):
                outbox[0] = (ticket, view[written:])
                return run
            outbox.popleft()
            run = conn.settle(ticket) or run
        if conn.write_closed:
            sock.shutdown_write()
        return run

    def _close(self, abort: bool = False) -> None:
        """``close`` without running the network."""
        conn = self._conn
        if self._redial is not None:
            self._redial.stop()
            self._redial_alarm.arm(None)
        live = conn.live
        run = self._dispatcher.push(conn.close(abort=abort))
        self._reset = abort and live
        run = self._flush() or run
        # What the window does not take now fails (a close never waits on the peer).
        while self._outbox and not conn.closed:
            ticket, _ = self._outbox.popleft()
            failed = conn.send_failed(ticket, BrokenPipeError(errno.EPIPE, "closed"))
            run = self._dispatcher.push(failed) or run
        self._step(run)

    def close(self, abort: bool = False) -> None:
        """Close the connection; DISCONNECT fires once.  Idempotent, callable from
        callbacks.  ``abort=True`` resets it (the peer gets an RST)."""
        self._close(abort)
        self._net.settle()

    def shutdown(self) -> None:
        """Close our sending side once the sends accepted so far are written: the
        peer sees EOF; we receive until it closes, then DISCONNECT.  Not connected: 1001."""
        run = self._dispatcher.push(self._conn.shutdown())
        self._step(self._flush() or run)
        self._net.settle()

    def _finish(self) -> None:
        self.close()


class TcpServer(ServerFacade, _Object):
    """A TCP server on a virtual host; its clients are :class:`TcpClient` objects."""

    _model: ServerModel[TcpClient]

    def __init__(
        self,
        ip: str,
        port: int,
        evts: Evts | None = None,
        *,
        network: Network | Host | None = None,
        **options: Any,
    ) -> None:
        """The threaded ``TcpServer``'s arguments, and where it lives (*network*)."""
        self._vhost = where(network)
        super().__init__(ip, port, evts, **options)
        _no_tls(self._tls_context)

    def _init(self) -> None:
        self._attach()
        self._grace = Alarm(self._net, self._grace_over)

    @property
    def clients(self) -> dict[Address, TcpClient]:
        """A copy of ``{remote: TcpClient}``."""
        return self._model.clients

    def start(self) -> None:
        """Listen; STARTED has fired when this returns.  Started: 1000; port taken: 1005;
        an address not of this host: 1007."""
        ip, port = self._model.start()
        vhost = self._vhost
        if not vhost.owns(ip):
            raise self._model.start_failed(OSError(errno.EADDRNOTAVAIL, f"{ip} is not ours"))
        port = port or vhost.port()
        if any(s._overlaps(ip, port) for s in vhost.listeners):
            raise self._model.start_failed(OSError(errno.EADDRINUSE, "address already in use"))
        vhost.listeners.append(self)
        self._push(self._model.listening((ip, port)))
        self._net.settle()

    def _takes(self, ip: str, port: int) -> bool:
        """A connection to ``(ip, port)`` is for us."""
        bound, ours = self.host
        if ours != port:
            return False
        if bound == ip:
            return True
        if bound == "0.0.0.0":
            return ":" not in ip
        return bound == "::" and (":" in ip or not self._model.v6only)

    def _overlaps(self, ip: str, port: int) -> bool:
        bound, ours = self.host
        return ours == port and (bound == ip or "0.0.0.0" in (bound, ip) or "::" in (bound, ip))

    def _accept(self, sock: VirtualSocket) -> bool:
        if not self._model.is_listening:
            return False
        client = TcpClient(sock, _server=self)
        assert client.remote is not None
        self._model.accept(client.remote, client)  # listening: it is taken
        client._registered()
        return True

    def _client_gone(self, client: TcpClient) -> None:
        model = self._model
        if client.remote is not None:
            model.remove(client.remote, client)

    def _check_stopped(self) -> None:
        """Stopping, and the last client has gone: STOPED."""
        model = self._model
        if model.state is not ServerState.STOPPING or model.connected:
            return
        self._grace.arm(None)
        events = self._model.stopped()
        # Inside a callback, STOPED goes after the events already queued there.
        self._go(self._dispatcher.push_behind(innermost(self._net), events))

    def _grace_over(self) -> None:
        for client in self._model.handle_timer(self._net.now):
            client._close()
        if self._model.state is ServerState.STOPPING:
            self._grace.arm(self._model.timer())

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, close every client (DISCONNECT each), then STOPED.

        With *grace* (seconds) the clients keep working until they close or the
        period ends (on the virtual clock: see the module docstring).  Idempotent.
        """
        model = self._model
        clients = model.stop(grace, self._net.now)
        if clients is None:
            return
        self._vhost.listeners.remove(self)
        for client in clients:
            client._close()
        self._check_stopped()
        self._grace.arm(model.timer())
        self._net.settle()

    def send(self, data: Any, remote: Address | None = None) -> None:
        """Send to one remote, or to every connected client (unknown: 1003; gone: 1001)."""
        encode_payload(data, self._options.encoding)  # bad data fails even with no clients
        for client in self._model.targets(remote):
            try:
                client.send(data)
            except SocketError as exc:
                if not self._model.broadcast_skips(remote, exc):
                    raise

    def close(self, remote: Address | None = None) -> None:
        """Close one remote's connection, or all of them."""
        for client in self._model.targets(remote):
            client._close()
        self._net.settle()

    def _finish(self) -> None:
        self.stop()
