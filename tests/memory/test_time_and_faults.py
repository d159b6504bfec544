"""The virtual clock (deadlines, backoff, grace) and the faults on demand."""

from __future__ import annotations

import pytest
from jfsocket.bindings.memory import Backoff, Network, SocketError, TcpClient, TcpServer
from jfsocket.core import Disconnected, GaveUp, Reconnecting, SendFailed

from .helpers import Log


def _hosts(net: Network) -> tuple[TcpServer, TcpClient]:
    a = net.host("a", "10.0.0.1")
    b = net.host("b", "10.0.0.2")
    return a.TcpServer("10.0.0.1", 80), b.TcpClient()


def _ends(net: Network) -> dict[str, Disconnected]:
    return {e.name: e.event for e in net.trace if isinstance(e.event, Disconnected)}


def test_idle_timeout_fires_on_the_virtual_clock() -> None:
    """idle_timeout=5: nothing at 4.9 s, DISCONNECT (1008) at 5 s."""
    net = Network()
    _, client = _hosts(net)
    with TcpServer("10.0.0.1", 81, network=net.host("a"), idle_timeout=5) as server:
        server.start()
        client.connect("10.0.0.1", 81)
        net.advance(4.9)
        assert client.isAlive
        net.advance(0.1)
        assert not client.isAlive
        error = _ends(net)["TcpClient#2"].error
        assert isinstance(error, SocketError) and error.errno == 1008
        assert net.now == 5.0


def test_latency_delays_bytes() -> None:
    """A link's latency: the bytes arrive that much later, in order."""
    net = Network()
    server, client = _hosts(net)
    net.link(net.host("a"), net.host("b"), latency=0.25)
    got: list[str] = []
    server.bind("onReceived", lambda side, data: got.append(data))
    server.start()
    client.connect("10.0.0.1", 80)
    client.send("x")
    net.run()
    assert got == []
    assert net.in_flight(client) == 1
    net.advance(0.25)
    assert got == ["x"] and net.in_flight(client) == 0
    client.close()
    server.stop()


def test_stall_fills_the_window_and_send_timeout_fails_it() -> None:
    """A peer that stops reading: the window fills, the rest of a send waits,
    send_timeout fails it (1008) and closes; resume would have let it through."""
    net = Network(window=1000)
    server, client = _hosts(net)
    client = net.host("b").TcpClient(send_timeout=2.0, encoding=None)
    server.start()
    client.connect("10.0.0.1", 80)
    net.stall(client)  # the server's side stops reading what the client sends
    client.send(bytes(1500))
    net.run()
    assert net.in_flight(client) == 1000
    net.advance(2.0)
    failed = [e.event for e in net.trace if isinstance(e.event, SendFailed)]
    assert len(failed) == 1 and getattr(failed[0].error, "errno", None) == 1008
    assert not client.isAlive
    server.stop()


def test_resume_lets_a_stalled_send_finish() -> None:
    """stall then resume: the waiting bytes go through, SENDED once."""
    net = Network(window=100)
    log = Log()
    server, _ = _hosts(net)
    client = net.host("b").TcpClient(evts=log.evts("client"), encoding=None)
    server.start()
    client.connect("10.0.0.1", 80)
    net.stall(client)
    client.send(bytes(250))
    net.run()
    assert log.names("client") == ["CONNECTED"]
    net.resume(client)
    net.run()
    assert log.names("client") == ["CONNECTED", "SENDED"]
    client.close()
    server.stop()


def test_reset_ends_both_ends_with_an_error() -> None:
    """net.reset(conn): both ends see ECONNRESET; pending sends fail."""
    net = Network()
    server, client = _hosts(net)
    server.start()
    client.connect("10.0.0.1", 80)
    net.reset(client)
    net.run()
    ends = _ends(net)
    assert isinstance(ends["TcpClient#1"].error, ConnectionResetError)
    assert isinstance(ends["TcpClient#2"].error, ConnectionResetError)
    assert server.clients == {}
    server.stop()


def test_partition_holds_bytes_and_refuses_connects_until_heal() -> None:
    """Partitioned: connects time out (1006, at once), bytes wait; heal delivers them."""
    net = Network()
    server, client = _hosts(net)
    got: list[str] = []
    server.bind("onReceived", lambda side, data: got.append(data))
    server.start()
    client.connect("10.0.0.1", 80)
    a, b = net.host("a"), net.host("b")
    net.partition(a, b)
    other = b.TcpClient()
    with pytest.raises(SocketError) as info:
        other.connect("10.0.0.1", 80)
    assert info.value.errno == 1006 and isinstance(info.value.err, TimeoutError)
    client.send("held")
    net.advance(60)
    assert got == []
    net.heal(a, b)
    net.run()
    assert got == ["held"]
    client.close()
    server.stop()


def test_reconnect_backoff_on_the_virtual_clock() -> None:
    """The server goes away: the client redials after the core's backoff
    (jitter from the seeded source), connects when it is back."""
    net = Network(seed=1)
    server, _ = _hosts(net)
    backoff = Backoff(initial=1.0, maximum=4.0, jitter=0.0, attempts=3)
    client = net.host("b").TcpClient(reconnect=backoff)
    server.start()
    client.connect("10.0.0.1", 80)
    server.stop()
    assert client.reconnecting
    net.advance(1.0)  # try 1: refused; try 2 after 2 s
    net.advance(2.0)  # try 2: refused; try 3 after 4 s
    server.start()
    net.advance(4.0)
    assert client.isAlive
    notices = [e.event for e in net.trace if isinstance(e.event, Reconnecting)]
    assert [(n.attempt, n.delay) for n in notices] == [(1, 1.0), (2, 2.0), (3, 4.0)]
    server.stop()
    net.advance(100)
    assert any(isinstance(e.event, GaveUp) for e in net.trace)
    client.close()


def test_stop_with_grace_waits_on_the_virtual_clock() -> None:
    """stop(grace): the listener closes now; clients still there at the end of
    the period are closed by the advance that reaches it; STOPED last."""
    net = Network()
    server, client = _hosts(net)
    server.start()
    client.connect("10.0.0.1", 80)
    server.stop(grace=3.0)
    assert not server.isAlive and client.isAlive
    net.advance(2.9)
    assert client.isAlive
    net.advance(0.1)
    assert not client.isAlive
    order = [(e.name, type(e.event).__name__) for e in net.trace]
    assert order.index(("TcpServer#1", "Stopped")) > order.index(("TcpClient#2", "Disconnected"))
    assert net.trace[-2].time == 3.0
