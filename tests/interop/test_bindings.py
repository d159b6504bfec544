"""Bindings as each other's peers: a server of one binding, clients of another.

Both run in one process through the conformance driver (each binding in its own
runtime: threads, a trio loop thread, an asyncio loop thread), record into one
trace, and must produce the same trace as two objects of one binding would.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conformance.driver import Driver
from tests.conformance.runtimes import AVAILABLE

#: uvloop is the asyncio binding again: as a peer of asyncio it adds nothing.
_RUNTIMES = ("threaded", "trio", "asyncio")
PAIRS = [(s, c) for s, c in itertools.permutations(_RUNTIMES, 2)]


@pytest.fixture(params=PAIRS, ids=[f"{s}-server-{c}-clients" for s, c in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(server binding, client binding)."""
    server, client = request.param
    for name in (server, client):
        if not AVAILABLE[name]:
            pytest.skip(f"{name} cannot be imported here")
    return server, client


def test_server_and_clients_of_different_bindings(pair: tuple[str, str]) -> None:
    """Two clients of one binding and a server of another: line-framed data both ways
    (an echo sent from inside the server's callback), a broadcast, a close from each
    end, and the server stopping: the same trace as within one binding."""
    server_binding, client_binding = pair
    d = Driver(server_binding)
    try:
        server = d.server(framing="line")
        server.on("RECEIVED", lambda ev: ev.source.send(f"echo {ev.data}"))
        one = d.client(binding=client_binding, framing="line")
        two = d.client(binding=client_binding, framing="line")
        one.connect(*server.host)
        two.connect(*server.host)
        one.send("from one")
        one.wait_for("RECEIVED")
        two.send(b"from two")
        two.wait_for("RECEIVED")
        server.send("to all")
        one.wait_for("RECEIVED", 2)
        two.wait_for("RECEIVED", 2)
        one.close()
        server.close(two.host)
        server.stop()
        # A request's SENDED and its echo's RECEIVED may run in either order (the
        # echo can be read before the sender has settled its write): one kind at a time.
        conn = ("STARTED", "STOPED", "CONNECTED", "DISCONNECT")
        d.expect(
            {
                "server": [("STARTED",), ("STOPED",)],
                "server:client1": [
                    ("CONNECTED", "server", "client1"),
                    ("RECEIVED", "from one"),
                    ("DISCONNECT", "server", "client1"),
                ],
                "server:client2": [
                    ("CONNECTED", "server", "client2"),
                    ("RECEIVED", "from two"),
                    ("DISCONNECT", "server", "client2"),
                ],
                "client1": [
                    ("CONNECTED", "client1", "server"),
                    ("RECEIVED", "echo from one"),
                    ("RECEIVED", "to all"),
                    ("DISCONNECT", "client1", "server"),
                ],
                "client2": [
                    ("CONNECTED", "client2", "server"),
                    ("RECEIVED", "echo from two"),
                    ("RECEIVED", "to all"),
                    ("DISCONNECT", "client2", "server"),
                ],
            },
            only=(*conn, "RECEIVED"),
        )
        d.expect(
            {
                "server": [("STARTED",), ("STOPED",)],
                "server:client1": [
                    ("CONNECTED", "server", "client1"),
                    ("SENDED", "echo from one"),
                    ("SENDED", "to all"),
                    ("DISCONNECT", "server", "client1"),
                ],
                "server:client2": [
                    ("CONNECTED", "server", "client2"),
                    ("SENDED", "echo from two"),
                    ("SENDED", "to all"),
                    ("DISCONNECT", "server", "client2"),
                ],
                "client1": [
                    ("CONNECTED", "client1", "server"),
                    ("SENDED", "from one"),
                    ("DISCONNECT", "client1", "server"),
                ],
                "client2": [
                    ("CONNECTED", "client2", "server"),
                    ("SENDED", b"from two"),
                    ("DISCONNECT", "client2", "server"),
                ],
            },
            only=(*conn, "SENDED"),
        )
    finally:
        d.close()


def test_multicast_between_bindings(pair: tuple[str, str]) -> None:
    """A receiver of one binding hears a sender of another (loopback, TTL 0)."""
    receiver_binding, sender_binding = pair
    d = Driver(receiver_binding)
    try:
        (group,) = d.groups(1)
        receiver = d.receiver()
        receiver.joinGroup(group)
        receiver.start()
        sender = d.sender(binding=sender_binding)
        sender.send((group, receiver.port), "across")
        receiver.wait_for("RECEIVED")
        receiver.stop()
        d.expect(
            {
                "receiver1": [("STARTED",), ("RECEIVED", "across"), ("STOPED",)],
                "sender1": [("SENDED", "across")],
            }
        )
    finally:
        d.close()
