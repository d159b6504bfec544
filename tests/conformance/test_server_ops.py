"""TcpServer's own operations: send and close to one remote or to all, ``clients``."""

from __future__ import annotations

import pytest

from .driver import Driver


def test_send_to_all_and_to_one(d: Driver) -> None:
    """send(data) reaches every client once; send(data, remote) that client only
    (shown by the order: a broadcast after it arrives after it everywhere)."""
    server = d.server(framing="line")
    clients = [d.connected(server, framing="line")[0] for _ in range(3)]
    server.send("everyone")
    server.send(b"only you", clients[1].host)
    server.send("fence")
    for n, client in enumerate(clients):
        client.wait_for("RECEIVED", 3 if n == 1 else 2)
    d.expect(
        {
            "client1": [("RECEIVED", "everyone"), ("RECEIVED", "fence")],
            "client2": [("RECEIVED", "everyone"), ("RECEIVED", "only you"), ("RECEIVED", "fence")],
            "client3": [("RECEIVED", "everyone"), ("RECEIVED", "fence")],
            "server:client1": [("SENDED", "everyone"), ("SENDED", "fence")],
            "server:client2": [
                ("SENDED", "everyone"),
                ("SENDED", b"only you"),
                ("SENDED", "fence"),
            ],
            "server:client3": [("SENDED", "everyone"), ("SENDED", "fence")],
        },
        only=("RECEIVED", "SENDED"),
    )


def test_send_with_no_clients(d: Driver) -> None:
    """A broadcast with nobody connected does nothing; bad data is still TypeError."""
    server = d.server()
    server.send("nobody")
    with pytest.raises(TypeError):
        server.send(12)
    d.expect({"server": [("STARTED",)]})


def test_close_one_then_all(d: Driver) -> None:
    """close(remote) closes that connection only (its DISCONNECT has run on return);
    close() closes the rest; the server keeps listening and accepting."""
    server = d.server()
    clients = [d.connected(server)[0] for _ in range(3)]
    server.close(clients[0].host)
    d.expect(
        {
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ]
        },
        partial=True,
        timeout=0,
    )
    clients[0].wait_for("DISCONNECT")
    assert set(server.clients) == {clients[1].host, clients[2].host}
    assert clients[1].isAlive and clients[2].isAlive
    server.close()
    assert server.clients == {} and server.isAlive
    late, _ = d.connected(server)
    assert late.isAlive
    d.expect(
        {
            "server": [("STARTED",)],
            **{
                f"server:client{n}": [
                    ("CONNECTED", "server", f"client{n}"),
                    ("DISCONNECT", "server", f"client{n}"),
                ]
                for n in (1, 2, 3)
            },
            **{
                f"client{n}": [
                    ("CONNECTED", f"client{n}", "server"),
                    ("DISCONNECT", f"client{n}", "server"),
                ]
                for n in (1, 2, 3)
            },
            "server:client4": [("CONNECTED", "server", "client4")],
            "client4": [("CONNECTED", "client4", "server")],
        }
    )


def test_clients_is_a_copy_keyed_by_remote(d: Driver) -> None:
    """``clients`` maps each remote to its server-side client; mutating the dict it
    returned changes nothing; each call returns a new dict."""
    server = d.server()
    pairs = [d.connected(server) for _ in range(2)]
    registry = server.clients
    assert set(registry) == {client.host for client, _ in pairs}
    for client, side in pairs:
        assert registry[client.host].obj is side.obj
        assert side.remote == client.host and side.host == server.host and side.isAlive
    d.runner().sync(lambda: server.obj.clients.clear())
    assert len(server.clients) == 2
    assert server.raw_clients() is not server.raw_clients()


def test_server_side_client_methods(d: Driver) -> None:
    """A server's side of a connection sends and closes like any client; after that,
    send on it is 1001."""
    server = d.server()
    client, side = d.connected(server)
    side.send("direct")
    client.wait_for("RECEIVED")
    side.close()
    client.wait_for("DISCONNECT")
    assert not side.isAlive and server.clients == {}
    with pytest.raises(d.SocketError) as info:
        side.send("gone")
    assert getattr(info.value, "errno", None) == 1001
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("SENDED", "direct"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("RECEIVED", "direct"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )


def test_plain_client_and_server_both_ways(d: Driver) -> None:
    """A plain socket client, and a plain socket server: the wire carries just the bytes."""
    server = d.server()
    peer = d.raw_connect(server.host)
    side = server.side(peer)
    peer.sendall("héllo wörld".encode())
    side.wait_for("RECEIVED")
    server.send("réponse", peer.host)
    assert peer.recv_exactly(len("réponse".encode())) == "réponse".encode()
    peer.close()
    listener = d.raw_listener()
    client = d.client()
    client.connect(*listener.host)
    theirs = listener.accept()
    client.send(b"\x00binary\xff")
    client.send("and text")
    assert theirs.recv_exactly(16) == b"\x00binary\xffand text"
    theirs.sendall(b"from a plain server")
    client.wait_for("RECEIVED")
    theirs.close()
    d.expect(
        {
            "server": [("STARTED",)],
            "server:raw1": [
                ("CONNECTED", "server", "raw1"),
                ("RECEIVED", "héllo wörld"),
                ("SENDED", "réponse"),
                ("DISCONNECT", "server", "raw1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "rawserver"),
                ("SENDED", b"\x00binary\xff"),
                ("SENDED", "and text"),
                ("RECEIVED", "from a plain server"),
                ("DISCONNECT", "client1", "rawserver"),
            ],
        }
    )
