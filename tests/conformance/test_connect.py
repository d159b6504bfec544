"""TcpClient.connect: its errors, and connecting again after a close."""

from __future__ import annotations

from .driver import Driver


def test_reconnect_after_close(d: Driver) -> None:
    """A closed client connects again (a new local port): a second CONNECTED/DISCONNECT
    pair, data on the new connection, a new server-side object."""
    server = d.server()
    client, _ = d.connected(server)
    first = client.host
    client.close()
    client.connect(*server.host)
    assert client.isAlive and client.host != first
    client.send("again")
    server.side(client).wait_for("RECEIVED")
    client.close()
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ],
            "server:client1#2": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "again"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("DISCONNECT", "client1", "server"),
                ("CONNECTED", "client1", "server"),
                ("SENDED", "again"),
                ("DISCONNECT", "client1", "server"),
            ],
        }
    )


def test_reconnect_after_the_peer_closed(d: Driver) -> None:
    """After the server closed the connection (the client's DISCONNECT has run), the
    client connects again."""
    server = d.server()
    client, side = d.connected(server)
    side.close()
    client.wait_for("DISCONNECT")
    assert not client.isAlive
    client.connect(*server.host)
    assert client.isAlive
    server.side(client)
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ],
            "server:client1#2": [("CONNECTED", "server", "client1")],
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("DISCONNECT", "client1", "server"),
                ("CONNECTED", "client1", "server"),
            ],
        }
    )


def test_close_is_idempotent(d: Driver) -> None:
    """close three times: one DISCONNECT (run when the first close returned)."""
    server = d.server()
    client, _ = d.connected(server)
    client.close()
    client.close()
    client.close()
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
