"""Statistics: every binding reports the same numbers for the same scenario
(they are counted in the core; these are the numbers it must count)."""

from __future__ import annotations

from jfsocket.core import Backoff, Stats

from .driver import Driver


def test_tcp_stats_of_an_echo(d: Driver) -> None:
    """Three lines each way: bytes and messages on both ends, the server's
    accepted and current, and nothing failed."""
    server = d.server(framing="line")
    server.on("RECEIVED", lambda ev: ev.source.send(f"re {ev.data}"))
    client, side = d.connected(server, framing="line")
    for text in ("a", "bb", "ccc"):
        client.send(text)
    d.wait_until(lambda: len(client.received()) == 3, what="the three echoes")
    side.wait_for("SENDED", 3)
    up, down = 2 + 3 + 4, 5 + 6 + 7  # "a\n" "bb\n" "ccc\n"; "re a\n" ...
    assert client.stats == Stats(bytes_in=down, messages_in=3, bytes_out=up, messages_out=3)
    assert side.stats == Stats(bytes_in=up, messages_in=3, bytes_out=down, messages_out=3)
    assert server.stats == Stats(accepted=1, current=1)
    client.close()
    side.wait_for("DISCONNECT")
    d.wait_until(lambda: server.stats.current == 0, what="the registry to empty")
    assert server.stats == Stats(accepted=1)


def test_multicast_stats_count_datagrams_and_cuts(d: Driver) -> None:
    """Two datagrams, one longer than recvBuffer: both counted, one cut (which no
    callback is handed), the bytes as delivered."""
    (group,) = d.groups(1)
    receiver = d.receiver(recv_buffer=8)
    receiver.joinGroup(group)
    receiver.start()
    sender = d.sender()
    sender.send((group, receiver.port), b"short")
    sender.send((group, receiver.port), b"a much longer datagram")
    d.wait_until(lambda: receiver.stats.messages_in == 2, what="both datagrams")
    receiver.stop()
    assert receiver.stats == Stats(bytes_in=5 + 8, messages_in=2, truncated=1)
    assert sender.stats == Stats(bytes_out=5 + 22, messages_out=2)


def test_a_reconnect_is_counted(d: Driver) -> None:
    """The server restarts on its port: the client's second connection is one reconnect."""
    first = d.server()
    port = first.host[1]
    client = d.client(reconnect=Backoff(initial=0.05, maximum=0.2, jitter=0))
    client.connect(*first.host)
    first.stop()
    client.wait_for("DISCONNECT")
    second = d.server(port=port)
    client.wait_for("CONNECTED", 2, timeout=10)
    assert client.stats.reconnects == 1
    second.side(client)  # the server has registered it too (its CONNECTED ran), so a
    # close now cannot race the accept (which would count it refused)
    client.close()
    second.stop()
    assert second.stats.accepted == 1
