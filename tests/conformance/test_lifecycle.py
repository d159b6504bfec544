"""Lifecycles: start/stop with STARTED/STOPED, connect/close, isAlive, host/remote, clients."""

from __future__ import annotations

from .driver import Driver


def test_server_start_and_stop(d: Driver) -> None:
    """STARTED (server,) has run when start returns; port 0 resolves; the port listens;
    STOPED (server,) has run when stop returns; stop again is a no-op."""
    server = d.server(start=False)
    assert not server.isAlive
    d.expect({})
    server.start()
    d.expect({"server": [("STARTED",)]}, timeout=0)
    ip, port = server.host
    assert ip == "127.0.0.1" and 0 < port <= 65535
    assert server.isAlive
    d.raw_connect(server.host).close()  # it really listens
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [("CONNECTED", "server", "raw1"), ("DISCONNECT", "server", "raw1")],
        }
    )
    server.stop()
    assert not server.isAlive and server.clients == {}
    server.stop()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:raw1": [("CONNECTED", "server", "raw1"), ("DISCONNECT", "server", "raw1")],
        },
        timeout=0,
    )


def test_client_connect_and_close(d: Driver) -> None:
    """CONNECTED (client, host, remote) has run when connect returns; host/remote/isAlive
    follow; DISCONNECT has run when close returns; the server's side sees both."""
    server = d.server()
    client = d.client()
    assert not client.isAlive
    assert client.get("host") is None and client.remote is None
    client.connect(*server.host)
    d.expect({"client1": [("CONNECTED", "client1", "server")]}, partial=True, timeout=0)
    assert client.isAlive and client.remote == server.host
    assert client.host[0] == "127.0.0.1" and client.host[1] > 0
    side = server.side(client)
    assert side.host == server.host and side.remote == client.host
    assert server.clients == {client.host: side}
    client.close()
    d.expect(
        {"client1": [("CONNECTED", "client1", "server"), ("DISCONNECT", "client1", "server")]},
        partial=True,
        timeout=0,
    )
    assert not client.isAlive
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )


def _connection(server: str, peer: str, *middle: tuple[object, ...]) -> list[tuple[object, ...]]:
    """A connection's whole trace: CONNECTED, *middle*, DISCONNECT."""
    return [("CONNECTED", server, peer), *middle, ("DISCONNECT", server, peer)]


def test_stop_closes_every_client_then_stoped(d: Driver) -> None:
    """stop: each side's DISCONNECT, then STOPED, all run when it returns; the clients
    see DISCONNECT; stopping again does nothing."""
    server = d.server()
    clients = [d.connected(server)[0] for _ in range(3)]
    server.stop()
    sides = {f"server:client{n}": _connection("server", f"client{n}") for n in (1, 2, 3)}
    d.expect({"server": [("STARTED",), ("STOPED",)], **sides}, partial=True, timeout=0)
    order = d.order()
    stoped = order.index(("server", "STOPED"))
    assert all(order.index((side, "DISCONNECT")) < stoped for side in sides)
    assert not server.isAlive and server.clients == {}
    server.stop()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            **sides,
            **{f"client{n}": _connection(f"client{n}", "server") for n in (1, 2, 3)},
        }
    )
    assert not any(client.isAlive for client in clients)


def test_restart_after_stop(d: Driver) -> None:
    """A stopped server starts again (STARTED again) and accepts connections."""
    server = d.server()
    server.stop()
    server.start()
    assert server.isAlive
    client, _ = d.connected(server)
    client.close()
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",), ("STARTED",)],
            "server:client1": _connection("server", "client1"),
            "client1": _connection("client1", "server"),
        }
    )


def test_leaving_stops_the_server_and_its_clients(d: Driver) -> None:
    """Leaving the server's ``with``/``async with``: every DISCONNECT, then STOPED."""
    server = d.server()
    d.connected(server)
    d.connected(server)
    server.leave()
    assert not server.isAlive and server.clients == {}
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": _connection("server", "client1"),
            "server:client2": _connection("server", "client2"),
        },
        partial=True,
        timeout=0,
    )
    d.expect(
        {
            "server": [("STARTED",), ("STOPED",)],
            "server:client1": _connection("server", "client1"),
            "server:client2": _connection("server", "client2"),
            "client1": _connection("client1", "server"),
            "client2": _connection("client2", "server"),
        }
    )


def test_leaving_closes_the_client(d: Driver) -> None:
    """Leaving the client's block closes it: its DISCONNECT has run."""
    server = d.server()
    client, _ = d.connected(server)
    client.leave()
    assert not client.isAlive
    d.expect({"client1": _connection("client1", "server")}, partial=True, timeout=0)
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": _connection("server", "client1"),
            "client1": _connection("client1", "server"),
        }
    )


def test_client_that_never_connected(d: Driver) -> None:
    """No host, no remote, not alive; close is a no-op; leaving fires nothing."""
    client = d.client()
    assert not client.isAlive and client.get("host") is None and client.remote is None
    client.close()
    client.leave()
    d.expect({})


def test_ipv6_loopback(d: Driver) -> None:
    """A server on ::1 and a client to it: IPv6 addresses, data both ways."""
    server = d.server("::1")
    ip, port = server.host
    assert ip == "::1" and port > 0
    client, side = d.connected(server)
    assert client.remote == server.host and client.host[0] == "::1"
    assert side.remote == client.host
    client.send("over six")
    side.wait_for("RECEIVED")
    side.send("back")
    client.wait_for("RECEIVED")
    peer = d.raw_connect(server.host)  # a plain IPv6 peer too
    peer.sendall(b"six")
    ipv6_side = server.side(peer)
    ipv6_side.wait_for("RECEIVED")
    ipv6_side.send(b"ack")
    assert peer.recv_exactly(3) == b"ack"
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "over six"),
                ("SENDED", "back"),
            ],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", "six"),
                ("SENDED", b"ack"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", "over six"),
                ("RECEIVED", "back"),
            ],
        }
    )
