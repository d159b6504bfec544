"""Statistics are counted by the models: every input that changes one is seen once."""

from __future__ import annotations

from jfsocket.core import (
    Backoff,
    Connection,
    ConnectionOptions,
    Dispatcher,
    ReceiverModel,
    Redialer,
    SenderModel,
    SendLedger,
    ServerModel,
    Stats,
)
from jfsocket.core.callbacks import CallbackRegistry, Role

ERR = OSError("gone")
HOST, REMOTE = ("127.0.0.1", 1), ("127.0.0.1", 2)


def test_the_ledger_counts_each_settled_ticket_once() -> None:
    """Written (quietly or with SENDED) and failed (one, or all) are counted;
    late reports are not."""
    ledger = SendLedger("src")
    a, b, c, d = (ledger.open(x, size) for x, size in ((b"a", 1), (b"bb", 2), (b"c", 3), (b"d", 4)))
    ledger.settle(a)
    ledger.sent(b)
    ledger.failed(c, ERR)
    ledger.fail_all(ERR)
    ledger.sent(d, late_ok=True)
    assert (ledger.sent_count, ledger.sent_bytes, ledger.failed_count) == (2, 3, 2)


def test_a_connection_counts_bytes_and_messages_both_ways() -> None:
    """Line framing: messages in per line (the tail at EOF too), bytes as read;
    out: framed bytes of the sends written; failures from the end of it."""
    conn = Connection("c", ConnectionOptions(framing="line"))
    conn.connection_made(HOST, REMOTE)
    conn.receive_data(b"one\ntw")
    conn.receive_data(b"o\nthr")
    ticket, payload = conn.send("hello")
    conn.sent(ticket)
    conn.send("lost")
    conn.receive_eof()
    conn.connection_lost(ERR)
    assert conn.stats() == Stats(
        bytes_in=11, messages_in=3, bytes_out=len(payload), messages_out=1, sends_failed=1
    )


def test_the_fast_paths_count_too() -> None:
    """feed() and settle() on a raw bytes connection with nobody listening."""
    registry = CallbackRegistry(Role.CLIENT)
    conn = Connection("c", ConnectionOptions(encoding=None), Dispatcher(registry))
    conn.connection_made(HOST, REMOTE)
    conn.feed(b"abc")
    conn.feed(b"x" * 300)  # more than recvBuffer: two RECEIVED
    ticket, _ = conn.send(b"12345")
    conn.settle(ticket)
    assert conn.stats(reconnects=2) == Stats(
        bytes_in=303, messages_in=3, bytes_out=5, messages_out=1, reconnects=2
    )


def test_a_server_counts_accepted_refused_current() -> None:
    """Refused: arrived while not listening."""
    model: ServerModel[str] = ServerModel("s", "127.0.0.1", 0)
    model.start()
    model.listening(HOST)
    model.accept(("10.0.0.1", 1), "one")
    model.accept(("10.0.0.1", 2), "two")
    model.remove(("10.0.0.1", 1))
    model.stop()
    assert not model.accept(("10.0.0.1", 3), "late")
    assert model.stats() == Stats(accepted=2, refused=1, current=1)


def test_multicast_counts_datagrams_and_cuts() -> None:
    """A receiver counts datagrams, their bytes after the cut, and the cut ones;
    a sender what it wrote, and what failed."""
    receiver = ReceiverModel("r", 5000, recv_buffer=4, encoding=None)
    receiver.receive_datagram(b"abc", REMOTE)
    receiver.receive_datagram(b"abcdefgh", REMOTE)
    queue = Dispatcher(CallbackRegistry(Role.RECEIVER))
    receiver.feed(b"xy", REMOTE, queue)
    assert receiver.stats() == Stats(bytes_in=9, messages_in=3, truncated=1)
    sender = SenderModel("s")
    ticket, payload, _ = sender.send(("239.255.1.1", 5000), b"12345")
    sender.written(ticket, len(payload), payload)
    ticket, payload, _ = sender.send(("239.255.1.1", 5000), b"123")
    sender.written(ticket, 1, payload)
    assert sender.stats() == Stats(bytes_out=5, messages_out=1, sends_failed=1)


def test_reconnects_count_connections_after_a_loss() -> None:
    """The first connection is not a reconnect; each one after a loss is; a
    close by the user ends the count's run."""
    redial = Redialer("c", Backoff())
    redial.connected(0.0)
    redial.lost(1.0, 0.5, ERR)
    redial.connected(2.0)
    redial.lost(3.0, 0.5, ERR)
    redial.failed(4.0, 0.5, ERR)
    redial.connected(5.0)
    redial.connected(6.0)
    assert redial.reconnects == 2
    redial.lost(7.0, 0.5, None, asked=True)
    redial.connected(8.0)
    assert redial.reconnects == 2
