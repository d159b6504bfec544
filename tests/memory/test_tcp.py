"""TCP on the memory network: connect, data, chunking, close, half-close, errors."""

from __future__ import annotations

import ssl

import pytest
from jfsocket.bindings.memory import EventTypes, Network, SocketError, TcpClient, TcpServer
from jfsocket.core import Disconnected

from .helpers import Log

SERVER_KEYS = tuple(EventTypes.__members__[name] for name in EventTypes._member_names_)


def _pair(net: Network, log: Log, **options: object) -> tuple[TcpServer, TcpClient]:
    a = net.host("a", "10.0.0.1")
    b = net.host("b", "10.0.0.2")
    server: TcpServer = a.TcpServer("10.0.0.1", 80, evts=log.evts("server", SERVER_KEYS), **options)
    server.start()
    client: TcpClient = b.TcpClient(evts=log.evts("client"), **options)
    client.connect("10.0.0.1", 80)
    return server, client


def test_nothing_runs_until_the_network_does() -> None:
    """send queues; net.run() delivers; addresses are the virtual hosts'."""
    net, log = Network(), Log()
    server, client = _pair(net, log, framing="line")
    assert client.host == ("10.0.0.2", 49152)
    assert client.remote == ("10.0.0.1", 80)
    assert list(server.clients) == [("10.0.0.2", 49152)]
    client.send("hi")
    assert log.names("client") == ["CONNECTED"]
    assert net.due()
    net.run()
    assert log.of("client")[-1] == ("SENDED", ("hi",))
    assert ("RECEIVED", ("hi",)) in log.of("server")
    assert not net.due()


def test_connect_by_name_refused_unreachable() -> None:
    """Names resolve to hosts' addresses; no listener, no host, no name: 1006."""
    net = Network()
    a = net.host("a", "10.0.0.1")
    b = net.host("b", "10.0.0.2")
    with a.TcpServer("0.0.0.0", 80) as server:
        server.start()
        client = b.TcpClient()
        client.connect("a", 80)
        assert client.remote == ("10.0.0.1", 80)
        client.close()
        for target in (("a", 81), ("10.9.9.9", 80), ("nowhere", 80)):
            with pytest.raises(SocketError) as info:
                client.connect(*target)
            assert info.value.errno == 1006
        assert not client.isAlive


def test_port_in_use_and_foreign_address() -> None:
    """A port taken on that host is 1005; an address the host lacks is 1007."""
    net = Network()
    a = net.host("a", "10.0.0.1")
    first = a.TcpServer("0.0.0.0", 80)
    first.start()
    with pytest.raises(SocketError) as info:
        a.TcpServer("10.0.0.1", 80).start()
    assert info.value.errno == 1005
    with pytest.raises(SocketError) as info:
        a.TcpServer("10.0.0.2", 81).start()
    assert info.value.errno == 1007
    net.host("b", "10.0.0.2").TcpServer("10.0.0.2", 80).start()  # another host's port 80
    first.stop()


def test_segments_reassemble_into_messages() -> None:
    """``segment=1`` delivers one byte per read: framers still give whole messages."""
    net, log = Network(segment=1), Log()
    server, client = _pair(net, log, framing="length", encoding=None)
    server.bind("onReceived", lambda side, data: side.send(data[::-1]))
    client.send(b"hello")
    client.send(b"world")
    net.run()
    received = [args[0] for name, args in log.of("client") if name == "RECEIVED"]
    assert received == [b"olleh", b"dlrow"]


def test_raw_reads_follow_the_segments() -> None:
    """Raw framing: each read is one RECEIVED, at most recvBuffer bytes."""
    net, log = Network(segment=4), Log()
    server, client = _pair(net, log, encoding=None)
    client.send(b"0123456789")
    net.run()
    side = next(iter(server.clients.values()))
    chunks = [args[0] for name, args in log.of("server") if name == "RECEIVED"]
    assert chunks == [b"0123", b"4567", b"89"]
    assert side.recvBuffer == 256


def test_close_both_ways_one_disconnect_each() -> None:
    """A client's close: DISCONNECT on both ends (the server's once its EOF ran)."""
    net, log = Network(), Log()
    server, client = _pair(net, log)
    client.close()
    client.close()
    assert log.names("client") == ["CONNECTED", "DISCONNECT"]
    assert log.names("server") == ["STARTED", "CONNECTED", "DISCONNECT"]
    assert server.clients == {}
    server.stop()
    assert log.names("server")[-1] == "STOPED"


def test_half_close_replies_are_written_before_the_end() -> None:
    """shutdown(): the peer sees EOF, its replies from the data before arrive,
    then both ends close."""
    net, log = Network(), Log()
    server, client = _pair(net, log, framing="line")
    server.bind("onReceived", lambda side, data: side.send(f"re {data}"))
    client.send("one")
    client.shutdown()
    with pytest.raises(SocketError) as info:
        client.send("two")
    assert info.value.errno == 1001
    net.run()
    assert log.names("client") == ["CONNECTED", "SENDED", "RECEIVED", "DISCONNECT"]
    assert log.names("server")[1:] == ["CONNECTED", "SENDED", "DISCONNECT"]  # RECEIVED rebound


def test_abort_resets_the_peer() -> None:
    """close(abort=True): the peer's DISCONNECT carries the reset."""
    net, log = Network(), Log()
    _, client = _pair(net, log)
    client.close(abort=True)
    net.run()
    assert log.names("server")[-1] == "DISCONNECT"
    ends = {e.name: e.event for e in net.trace if isinstance(e.event, Disconnected)}
    assert ends["TcpClient#1"].error is None  # ours: asked for
    assert isinstance(ends["TcpClient#2"].error, ConnectionResetError)  # the server's side


def test_callbacks_may_close_and_stop_from_inside() -> None:
    """A RECEIVED callback closes its client and stops the server: no deadlock,
    DISCONNECTs before STOPED."""
    net, log = Network(), Log()
    server, client = _pair(net, log)

    def received(side: TcpClient, data: str) -> None:
        log.calls.append(("server", "RECEIVED", (data,)))
        side.close()
        server.stop()

    server.bind(EventTypes.RECEIVED, received)
    client.send("bye")
    net.run()
    assert log.names("server")[-3:] == ["RECEIVED", "DISCONNECT", "STOPED"]
    assert log.names("client")[-1] == "DISCONNECT"
    assert not server.isAlive


def test_the_trace_names_every_object() -> None:
    """net.trace holds every event of every object, bound or not."""
    net = Network()
    a = net.host("a", "10.0.0.1")
    server = a.TcpServer("10.0.0.1", 7)
    server.start()
    client = net.host("b", "10.0.0.2").TcpClient()
    client.connect("10.0.0.1", 7)
    client.send(b"x")
    client.close()
    server.stop()
    names = [(e.name, type(e.event).__name__) for e in net.trace]
    assert names == [
        ("TcpServer#1", "Started"),
        ("TcpClient#2", "Connected"),
        ("TcpClient#1", "Connected"),
        ("TcpClient#1", "Sent"),
        ("TcpClient#1", "Disconnected"),
        ("TcpClient#2", "Received"),
        ("TcpClient#2", "Disconnected"),
        ("TcpServer#1", "Stopped"),
    ]
    assert net.name(server) == "TcpServer#1"


def test_objects_need_a_network() -> None:
    """Without network= the object does not know where it lives."""
    with pytest.raises(TypeError, match="network="):
        TcpClient()


def test_a_connect_from_inside_the_network_registers_before_connected() -> None:
    """A client dialling from a task (a redial, a callback): the server's side
    is in ``clients`` when its CONNECTED runs, as on the threaded binding."""
    net = Network()
    server = net.host("a", "10.0.0.1").TcpServer("10.0.0.1", 80)
    listed: list[bool] = []
    server.bind("onConnected", lambda side, host, remote: listed.append(remote in server.clients))
    server.start()
    client = net.host("b", "10.0.0.2").TcpClient()
    net.soon(lambda: client.connect("10.0.0.1", 80))
    net.run()
    assert listed == [True] and client.isAlive
    server.stop()


def test_tls_is_refused_not_ignored() -> None:
    """ssl= on the virtual network is a ValueError naming it (it would otherwise be
    plaintext in disguise); server_hostname without ssl= is refused as everywhere."""
    net = Network()
    context = ssl.create_default_context()
    with pytest.raises(ValueError, match="ssl"):
        net.TcpClient(ssl=context)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with pytest.raises(ValueError, match="ssl"):
        net.TcpServer("127.0.0.1", 0, ssl=server_context)
    server = net.TcpServer("127.0.0.1", 0)
    server.start()
    client = net.TcpClient()
    with pytest.raises(ValueError, match="server_hostname"):
        client.connect(*server.host, server_hostname="localhost")
    assert not client.isAlive
    server.stop()
