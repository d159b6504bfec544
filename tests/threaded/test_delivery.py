"""Delivery under the threaded binding's own stress: calls from many foreign threads.

The delivery rules every binding shares (re-entrant calls, raising
callbacks, exactly-once under faults) are in ``tests/conformance``.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable

from jfsocket.bindings.threaded import SocketError, TcpClient
from jfsocket.core import Callback

from .conftest import CLIENT_KEYS, SERVER_KEYS, EventLog, Objects, wait_until

_pause = threading.Event()


class OverlapGuard:
    """Callbacks that detect two callbacks of one source running at the same time."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._inside: set[int] = set()
        self.overlaps: list[str] = []
        self.calls = 0

    def callback(self, name: str) -> Callback:
        """A callback for *name* that records (to the log) and checks for overlap."""

        def guarded(*args: object) -> None:
            key = id(args[0])
            with self._lock:
                if key in self._inside:
                    self.overlaps.append(f"{name} entered while another callback ran")
                self._inside.add(key)
                self.calls += 1
                calls = self.calls
            if calls % 16 == 0:
                _pause.wait(0.0002)  # widen the window: let other threads try to enter
            self.log.record(name, *args)
            with self._lock:
                self._inside.discard(key)

        return guarded


def _bind_all(obj: TcpClient, guard: OverlapGuard, keys: tuple[str, ...]) -> None:
    for key in keys:
        obj.bind(key, guard.callback(key))


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in *count* threads released together; join them (bounded)."""
    barrier = threading.Barrier(count, timeout=10.0)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(i,), name=f"test worker {i}") for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        raise errors[0]


def test_callbacks_of_one_connection_never_overlap(objects: Objects) -> None:
    """Under load from 4 sending threads per side, one connection's callbacks never overlap."""
    server_log, client_log = EventLog(), EventLog()
    server_guard, client_guard = OverlapGuard(server_log), OverlapGuard(client_log)
    server = objects.server(framing="line", start=False)
    for key in SERVER_KEYS:
        server.bind(key, server_guard.callback(key))
    server.start()
    client = objects.client(framing="line")
    _bind_all(client, client_guard, CLIENT_KEYS)
    client.connect(*server.host)
    side = objects.server_side(server_log, client.host)
    per_thread = 150

    def work(i: int) -> None:
        for n in range(per_thread):
            if i % 2:
                client.send(f"c{i}-{n}")
            else:
                server.send(f"s{i}-{n}", client.host)

    _in_threads(8, work)
    total = 4 * per_thread
    server_log.wait_for("onReceived", total, timeout=15.0)
    client_log.wait_for("onReceived", total, timeout=15.0)
    assert server_guard.overlaps == [] and client_guard.overlaps == []
    assert server_log.count("onSended") == total and client_log.count("onSended") == total
    assert Counter(map(str, server_log.data(source=side))) == Counter(
        f"c{i}-{n}" for i in (1, 3, 5, 7) for n in range(per_thread)
    )


def test_order_and_exactly_once_under_concurrent_close(objects: Objects) -> None:
    """4 threads send while the server closes mid-stream: one SENDED or SENDFAIL per
    accepted send, CONNECTED first, exactly one DISCONNECT last."""
    server_log = EventLog()
    server = objects.server(server_log, framing="line")
    client_log = EventLog()
    client, side = objects.connect(server, server_log, client_log, framing="line")

    def close_after_50(conn: object, data: object) -> None:
        server_log.record("onReceived", conn, data)
        if server_log.count("onReceived") == 50:
            side.close()

    server.bind("onReceived", close_after_50)
    accepted: list[list[str]] = [[] for _ in range(4)]
    refused: list[int] = []

    def work(i: int) -> None:
        for n in range(400):
            data = f"t{i}-{n}"
            try:
                client.send(data)
            except SocketError as exc:
                refused.append(exc.errno)
                return
            accepted[i].append(data)

    _in_threads(4, work)
    assert set(refused) <= {1001}
    client_log.wait_for("onDisconnect")
    server_log.wait_for("onDisconnect")
    settled = Counter(id(a[1]) for a in client_log.args("onSended") + client_log.args("onSendFail"))
    sent_ids = [id(d) for batch in accepted for d in batch]
    assert sorted(settled) == sorted(sent_ids) and set(settled.values()) == {1}
    names = client_log.names()
    assert names[0] == "onConnected" and names[-1] == "onDisconnect"
    assert names.count("onConnected") == 1 and names.count("onDisconnect") == 1
    server_names = [n for n, _ in server_log.of(side)]
    assert server_names[0] == "onConnected" and server_names[-1] == "onDisconnect"
    assert server_names.count("onDisconnect") == 1


def test_send_from_many_threads(objects: Objects) -> None:
    """8 threads x 50 sends: every message arrives whole, exactly once; 400 SENDED."""
    server_log = EventLog()
    server = objects.server(server_log, framing="line")
    client_log = EventLog()
    client, side = objects.connect(server, server_log, client_log, framing="line")

    def work(i: int) -> None:
        for n in range(50):
            client.send(f"thread {i} message {n} " + "p" * (n * 7))

    _in_threads(8, work)
    assert client_log.count("onSended") == 400
    server_log.wait_for("onReceived", 400, timeout=15.0)
    expected = Counter(
        f"thread {i} message {n} " + "p" * (n * 7) for i in range(8) for n in range(50)
    )
    assert Counter(map(str, server_log.data(source=side))) == expected


def test_connected_is_first_even_while_broadcasting(objects: Objects) -> None:
    """While another thread broadcasts, each new connection's first event is CONNECTED.

    The race is statistical: with the bug about one connection in five goes
    wrong, so 150 connections fail it for certain in practice.
    """
    first: dict[TcpClient, str] = {}
    lock = threading.Lock()

    def note(name: str) -> Callback:
        def callback(conn: TcpClient, *args: object) -> None:
            with lock:
                first.setdefault(conn, name)

        return callback

    server_log = EventLog()
    server = objects.server(start=False, encoding=None)
    server.bind("onConnected", note("onConnected"))
    server.bind("onSended", note("onSended"))
    server.bind("onDisconnect", server_log.onDisconnect)
    server.start()
    stop = threading.Event()

    def broadcast() -> None:
        for _ in range(2_000_000):
            if stop.is_set():
                return
            server.send(b".")

    pump = threading.Thread(target=broadcast, name="test broadcaster")
    # Shorter GIL slices: more interleavings per connection, and a faster test.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    pump.start()
    try:
        for n in range(150):
            with TcpClient(encoding=None) as client:
                client.connect(*server.host)

                # Wait until the server has delivered something for this connection.
                def seen(remote: object = client.host) -> bool:
                    with lock:
                        return any(c.remote == remote for c in first)

                wait_until(seen, what="the first event of the new connection")
            with lock:
                if any(name != "onConnected" for name in first.values()):
                    break
            server_log.wait_for("onDisconnect", n + 1)
    finally:
        stop.set()
        pump.join(10.0)
        sys.setswitchinterval(interval)
    with lock:
        wrong = [name for name in first.values() if name != "onConnected"]
    assert wrong == []


def test_close_remote_as_soon_as_it_is_listed(objects: Objects) -> None:
    """close(remote) right when a remote appears in ``clients``: no error, CONNECTED first."""
    events: dict[TcpClient, list[str]] = {}
    lock = threading.Lock()

    def note(name: str) -> Callback:
        def callback(conn: TcpClient, *args: object) -> None:
            with lock:
                events.setdefault(conn, []).append(name)

        return callback

    server = objects.server(start=False)
    server.bind("onConnected", note("onConnected"))
    server.bind("onDisconnect", note("onDisconnect"))
    server.start()
    errors: list[BaseException] = []
    stop = threading.Event()

    def closer() -> None:
        closed: set[object] = set()
        for _ in range(5_000_000):  # spins: the window is a few microseconds wide
            if stop.is_set():
                return
            for remote in server.clients:
                if remote not in closed:
                    closed.add(remote)
                    try:
                        server.close(remote)
                    except SocketError:
                        pass  # it left by itself first: fine
                    except Exception as exc:
                        errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    thread = threading.Thread(target=closer, name="test closer")
    thread.start()
    try:
        for _ in range(150):
            with TcpClient() as client:
                client.connect(*server.host)
            if errors:
                break
    finally:
        stop.set()
        thread.join(10.0)
        sys.setswitchinterval(interval)
    server.stop()
    assert errors == []
    with lock:
        assert all(seq == ["onConnected", "onDisconnect"] for seq in events.values()), events


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jfsocket writer")]


def test_a_broadcast_hands_a_slow_clients_share_to_a_writer_that_ends(
    objects: Objects,
) -> None:
    """A broadcast returns at once although one client's socket is full: a writer thread
    for that connection writes the rest, keeps a later send behind it, and is gone once
    all is written; SENDED comes once for each."""
    log = EventLog()
    # Room for the big send and one behind it: more pending is a slow consumer.
    server = objects.server(log, encoding=None, max_pending=64 << 20)
    peer = socket.create_connection(server.host)
    objects.later(peer.close)
    wait_until(lambda: len(server.clients) == 1, what="the server's side")
    (side,) = server.clients.values()
    big = bytes(32 << 20)  # far more than both ends' socket buffers hold
    server.send(big)  # returns: nothing waits on this peer
    assert _writers(), "no writer thread took the rest"
    got = bytearray()

    def read() -> None:
        peer.settimeout(5)
        while len(got) < len(big) + 5:
            chunk = peer.recv(1 << 20)
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    side.send(b"after")  # a plain send waits behind the writer (while the peer reads)
    reader.join(10)
    assert bytes(got) == big + b"after"
    log.wait(lambda: log.count("onSended") == 2, what="both SENDED")
    wait_until(lambda: not _writers(), what="the writer to end")
    assert log.data("onSended") == [big, b"after"]
