"""SocketError codes 1000-1007 where SPEC section 4 says, and bad input as Python errors.

Every case checks the code, that nothing fired, and that the object is left
as it was (no half-done state).
"""

from __future__ import annotations

import errno
import importlib
import socket

import pytest

from .driver import Driver

core = importlib.import_module("jfsocket.core")


def test_socket_error_is_the_cores_with_code_err_message(d: Driver) -> None:
    """Every binding raises the core's SocketError: .errno, .err, .message, str shows both."""
    assert d.SocketError is core.SocketError
    client = d.client()
    with pytest.raises(d.SocketError) as info:
        client.send("nobody there")
    error = info.value
    assert isinstance(error, Exception) and isinstance(error, core.SocketError)
    assert error.errno == 1001 and error.err is None
    assert error.message == "remote has disconnected, or not connected yet"
    assert "1001" in str(error) and error.message in str(error)
    d.expect({})


def test_1000_connect_while_connected(d: Driver) -> None:
    """connect while connected: 1000; the connection is intact and still sends."""
    server = d.server()
    client, side = d.connected(server)
    with pytest.raises(d.SocketError) as info:
        client.connect(*server.host)
    assert info.value.errno == 1000 and client.isAlive
    client.send("still fine")
    side.wait_for("RECEIVED")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", "still fine")],
            "client1": [("CONNECTED", "client1", "server"), ("SENDED", "still fine")],
        }
    )


def test_1000_start_while_started(d: Driver) -> None:
    """start on a listening server or receiver: 1000, still listening, no second STARTED."""
    server = d.server()
    receiver = d.receiver(start=True)
    for obj in (server, receiver):
        with pytest.raises(d.SocketError) as info:
            obj.start()
        assert info.value.errno == 1000 and obj.isAlive
    d.expect({"server": [("STARTED",)], "receiver1": [("STARTED",)]})


def test_1001_send_before_connect_and_after_close(d: Driver) -> None:
    """send on a client never connected, or closed: 1001, and no SENDED/SENDFAIL."""
    server = d.server()
    fresh = d.client()
    with pytest.raises(d.SocketError) as info:
        fresh.send("too early")
    assert info.value.errno == 1001
    client, side = d.connected(server)
    client.close()
    with pytest.raises(d.SocketError) as info:
        client.send("too late")
    assert info.value.errno == 1001
    side.close()  # already closed by the peer, or closing: nothing more
    with pytest.raises(d.SocketError) as info:
        side.send("gone")
    assert info.value.errno == 1001
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client2": [
                ("CONNECTED", "server", "client2"),
                ("DISCONNECT", "server", "client2"),
            ],
            "client2": [("CONNECTED", "client2", "server"), ("DISCONNECT", "client2", "server")],
        }
    )


def test_1001_send_to_a_departed_remote(d: Driver) -> None:
    """server.send(data, remote) to a remote that has disconnected: 1001, no SENDFAIL."""
    server = d.server()
    client, side = d.connected(server)
    remote = client.host
    client.close()
    side.wait_for("DISCONNECT")
    d.wait_until(lambda: remote not in server.clients, what="the registry to forget it")
    with pytest.raises(d.SocketError) as info:
        server.send("gone", remote)
    assert info.value.errno == 1001
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("DISCONNECT", "server", "client1"),
            ],
            "client1": [("CONNECTED", "client1", "server"), ("DISCONNECT", "client1", "server")],
        }
    )


def test_1002_1003_1004_group_membership(d: Driver) -> None:
    """1002 joining a joined group (or one twice), 1003 dropping one not joined,
    1004 for anything not multicast; all-or-nothing, before and after start."""
    a, b, c = d.groups(3)
    receiver = d.receiver()
    receiver.joinGroup(a)
    cases: list[tuple[int, tuple[object, ...], bool]] = [
        (1002, (a,), True),
        (1002, (b, b), True),
        (1002, (b, a), True),
        (1003, (b,), False),
        (1003, (a, b), False),
        (1004, ("127.0.0.1",), True),
        (1004, (b, "10.0.0.1"), True),
        (1004, ("not an address",), True),
        (1004, ("",), True),
        (1004, ("224.0.0.0/4",), True),
        (1004, (42,), True),
        (1004, ("240.0.0.1",), False),
        (1004, (a, "10.168.1.1"), False),
    ]
    for started in (False, True):
        if started:
            receiver.start()
        for code, ips, join in cases:
            with pytest.raises(d.SocketError) as info:
                (receiver.joinGroup if join else receiver.dropGroup)(*ips)
            assert (info.value.errno, receiver.groups) == (code, [a]), (code, ips, started)
    receiver.joinGroup(b, c)  # b was never half-joined
    receiver.dropGroup((a, c))
    assert receiver.groups == [b]
    d.expect({"receiver1": [("STARTED",)]})


def test_1003_unknown_remote(d: Driver) -> None:
    """server.send/close to a remote that never connected: 1003, nothing happens."""
    server = d.server()
    d.connected(server)
    for remote in (("127.0.0.1", 1), ("10.1.2.3", 9)):
        with pytest.raises(d.SocketError) as info:
            server.send("x", remote)
        assert info.value.errno == 1003
        with pytest.raises(d.SocketError) as info:
            server.close(remote)
        assert info.value.errno == 1003
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1")],
            "client1": [("CONNECTED", "client1", "server")],
        }
    )


def test_1004_sender_to_a_non_multicast_address(d: Driver) -> None:
    """CastSender.send to anything but a multicast group: 1004, no event."""
    sender = d.sender()
    for group in ("127.0.0.1", "10.1.2.3", "not-an-address", "240.0.0.1"):
        with pytest.raises(d.SocketError) as info:
            sender.send((group, 5000), "x")
        assert info.value.errno == 1004
    d.expect({})


def test_1005_port_in_use(d: Driver) -> None:
    """start on a port another socket listens on: 1005 with the OSError; nothing fires;
    stop afterwards is a no-op."""
    taken = d.raw_listener()
    server = d.server(port=taken.host[1], start=False)
    with pytest.raises(d.SocketError) as info:
        server.start()
    assert info.value.errno == 1005
    assert isinstance(info.value.err, OSError)
    assert not server.isAlive
    server.stop()
    d.expect({})


def test_1006_connect_refused_then_connect_elsewhere(d: Driver) -> None:
    """A refused connect: 1006 with the OSError, no event, client left idle: it can
    connect elsewhere next."""
    server = d.server()
    client = d.client()
    with pytest.raises(d.SocketError) as info:
        client.connect("127.0.0.1", d.closed_port())
    assert info.value.errno == 1006
    assert isinstance(info.value.err, OSError)
    assert not client.isAlive
    client.connect(*server.host)
    assert client.isAlive
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1")],
            "client1": [("CONNECTED", "client1", "server")],
        }
    )


#: A private address this host does not have (the test skips if it does): binding
#: to it fails at once, locally; no packet is sent.  (No name lookups either: a
#: refused connect on loopback covers 1006.)
_NOT_HERE = "10.255.255.254"


def test_1007_address_not_of_this_host(d: Driver) -> None:
    """start bound to an address this host does not have: 1007 (beyond the seed)."""
    if d.runner().real_sockets:  # (the memory network's localhost has only loopback)
        with socket.socket() as probe:
            try:
                probe.bind((_NOT_HERE, 0))
            except OSError as exc:
                refused = exc.errno
            else:
                pytest.skip(f"{_NOT_HERE} is an address of this host")
        assert refused == errno.EADDRNOTAVAIL
    server = d.server(_NOT_HERE, start=False)
    with pytest.raises(d.SocketError) as info:
        server.start()
    assert info.value.errno == 1007
    assert isinstance(info.value.err, OSError)
    assert not server.isAlive
    d.expect({})


@pytest.mark.parametrize(
    ("ip", "port", "error", "match"),
    [
        ("localhost", 0, ValueError, "ip"),
        ("not-an-ip", 0, ValueError, "not-an-ip"),
        (None, 0, TypeError, "ip"),
        ("127.0.0.1", 70000, ValueError, "port"),
        ("127.0.0.1", -1, ValueError, "port"),
        ("127.0.0.1", "80", TypeError, "port"),
        ("127.0.0.1", 1.5, TypeError, "port"),
    ],
)
def test_bad_server_address(
    d: Driver, ip: object, port: object, error: type[Exception], match: str
) -> None:
    """A server address that is not an IP literal and a port in 0-65535: ValueError or
    TypeError naming the argument."""
    with pytest.raises(error, match=match):
        d.construct("TcpServer", ip, port)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"backlog": -5}, ValueError, "backlog"),
        ({"backlog": "5"}, TypeError, "backlog"),
        ({"backlog": True}, TypeError, "backlog"),
        ({"line_ending": "\r"}, ValueError, "line_ending"),
        ({"line_ending": b"\n"}, TypeError, "line_ending"),
        ({"half_open": "yes"}, TypeError, "half_open"),
    ],
)
def test_bad_server_options(
    d: Driver, options: dict[str, object], error: type[Exception], match: str
) -> None:
    """backlog, line_ending and half_open are checked at construction, naming the argument."""
    with pytest.raises(error, match=match):
        d.construct("TcpServer", "127.0.0.1", 0, **options)
    if "backlog" not in options:
        with pytest.raises(error, match=match):
            d.construct("TcpClient", **options)


@pytest.mark.parametrize(
    ("ip", "port", "error", "match"),
    [
        ("127.0.0.1", 70000, ValueError, "port"),
        ("127.0.0.1", -1, ValueError, "port"),
        ("127.0.0.1", "80", TypeError, "port"),
        ("127.0.0.1", 1.5, TypeError, "port"),
        ("", 80, ValueError, "ip"),
        (None, 80, TypeError, "ip"),
    ],
)
def test_bad_connect_arguments(
    d: Driver, ip: object, port: object, error: type[Exception], match: str
) -> None:
    """connect with a bad port or host: ValueError/TypeError naming it; nothing changes."""
    client = d.client()
    with pytest.raises(error, match=match):
        client.connect(ip, port)  # type: ignore[arg-type]
    assert not client.isAlive
    d.expect({})


def test_bad_remote_for_server_send_and_close(d: Driver) -> None:
    """A remote that is not an (ip, port) tuple: TypeError/ValueError, nothing sent."""
    server = d.server()
    d.connected(server)
    bad: list[tuple[object, type[Exception]]] = [
        ("127.0.0.1", TypeError),
        ("127.0.0.1:80", TypeError),
        (["127.0.0.1", 1], TypeError),
        (("127.0.0.1",), TypeError),
        (("not an ip", 1), ValueError),
        (("127.0.0.1", "80"), TypeError),
        (("127.0.0.1", 70000), ValueError),
    ]
    for remote, error in bad:
        with pytest.raises(error):
            server.send("x", remote)
        with pytest.raises(error):
            server.close(remote)
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1")],
            "client1": [("CONNECTED", "client1", "server")],
        }
    )


@pytest.mark.parametrize("bad", [42, None, ["list"], 1.5, {"a": 1}], ids=repr)
def test_send_rejects_what_is_not_data(d: Driver, bad: object) -> None:
    """Anything but str/bytes/bytearray/memoryview: TypeError from client, server and
    sender alike; no event; the connection still works."""
    server = d.server()
    client, side = d.connected(server)
    sender = d.sender()
    with pytest.raises(TypeError):
        client.send(bad)
    with pytest.raises(TypeError):
        server.send(bad)
    with pytest.raises(TypeError):
        sender.send((d.groups(1)[0], 5000), bad)
    client.send("still fine")
    side.wait_for("RECEIVED")
    d.expect(
        {
            "server": [("STARTED",)],
            "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", "still fine")],
            "client1": [("CONNECTED", "client1", "server"), ("SENDED", "still fine")],
        }
    )


def test_bad_options(d: Driver) -> None:
    """framing, max_message_size, recv_buffer, encoding, ttl: bad values are
    ValueError/TypeError (LookupError for an unknown codec) naming the option."""
    with pytest.raises(ValueError, match="framing"):
        d.construct("TcpClient", framing="xml")
    with pytest.raises(ValueError, match="max_message_size"):
        d.construct("TcpServer", "127.0.0.1", 0, max_message_size=0)
    with pytest.raises(ValueError, match=r"recvBuffer|recv_buffer"):
        d.construct("TcpServer", "127.0.0.1", 0, recv_buffer=0)
    with pytest.raises((LookupError, ValueError)):
        d.construct("TcpClient", encoding="no-such-codec")
    with pytest.raises(ValueError, match="ttl"):
        d.construct("CastSender", ttl=256)


def test_sender_bad_port_and_receiver_host(d: Driver) -> None:
    """CastSender.send to port 0, a receiver on port 70000: ValueError naming the argument."""
    sender = d.sender()
    with pytest.raises(ValueError, match="port"):
        sender.send((d.groups(1)[0], 0), "x")
    with pytest.raises(ValueError, match="host"):
        d.construct("CastReceiver", 70000, interface="127.0.0.1")  # the argument is ``host``
    d.expect({})
