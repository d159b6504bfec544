"""CastReceiver and CastSender on loopback only.

Every receiver binds ``('0.0.0.0', 0)`` and joins on interface 127.0.0.1;
every sender has TTL 0 and interface 127.0.0.1, so no datagram leaves the
host.  Groups are random in 239.255.0.0/16.  "Not received" is shown without
waiting for time to pass: a marker datagram to a joined group is sent after
the one that must not arrive, from the same socket; once the marker is in,
the earlier datagram would have been too.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator

import pytest
import trio
from jfsocket.bindings.trio import CastReceiver, CastSender, EventTypes, SocketError
from jfsocket.core import Event, Received

from .conftest import RECEIVER_KEYS, SENDER_KEYS, EventLog, blocked

pytestmark = pytest.mark.trio
E = EventTypes
ANY = "0.0.0.0"
LOOPBACK = "127.0.0.1"


def groups(count: int) -> list[str]:
    """*count* distinct random groups in 239.255.0.0/16 (x.x.1.1 - x.x.254.254)."""
    picked = random.sample(range(257, 65279), count)
    return [f"239.255.{n >> 8}.{n & 255}" for n in picked]


def receiver(log: EventLog, **options: int | str | None) -> CastReceiver:
    """A loopback receiver on an OS-chosen port, logging into *log*."""
    recv_buffer = options.get("recv_buffer", 256)
    encoding = options.get("encoding", "utf-8")
    assert isinstance(recv_buffer, int) and (encoding is None or isinstance(encoding, str))
    return CastReceiver(
        (ANY, 0),
        evts=log.evts(*RECEIVER_KEYS),
        interface=LOOPBACK,
        recv_buffer=recv_buffer,
        encoding=encoding,
    )


@contextlib.asynccontextmanager
async def sender(log: EventLog | None = None) -> AsyncIterator[CastSender]:
    """A loopback-only sender (TTL 0, interface 127.0.0.1)."""
    evts = log.evts(*SENDER_KEYS) if log is not None else None
    async with CastSender(evts=evts, ttl=0, interface=LOOPBACK) as cast:
        yield cast


async def test_receive_and_sended_carries_the_object() -> None:
    """A group joined before start receives; SENDED gets each object as passed."""
    (group,) = groups(1)
    rlog, slog = EventLog(), EventLog()
    rec = receiver(rlog)
    rec.joinGroup(group)
    payloads: list[str | bytes | bytearray | memoryview] = [
        "text é",
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"memoryview"),
    ]
    async with rec, sender(slog) as cast:
        assert rlog.args("STARTED") == [(rec,)] and rec.isAlive
        ip, port = rec.host
        assert ip == ANY and port > 0
        for data in payloads:
            await cast.send((group, port), data)
        await rlog.wait_for("RECEIVED", 4)
    sent = slog.data("SENDED")
    assert len(sent) == 4 and all(s is p for s, p in zip(sent, payloads, strict=True))
    assert slog.args("SENDED")[0][0] is cast
    assert rlog.data("RECEIVED") == ["text é", "bytes", "bytearray", "memoryview"]
    assert all(args[0] is rec for args in rlog.args("RECEIVED"))
    assert rlog.names()[-1] == "STOPED" and rlog.args("STOPED") == [(rec,)]
    assert not rec.isAlive


async def test_join_and_drop_after_start() -> None:
    """Joining after start receives; after dropping, that group's datagrams stop."""
    first, second = groups(2)
    log = EventLog()
    rec = receiver(log)
    rec.joinGroup(first)
    async with rec, sender() as cast:
        port = rec.host[1]
        rec.joinGroup(second)
        assert rec.groups == [first, second]
        await cast.send((second, port), "to second")
        await log.wait_for("RECEIVED")
        rec.dropGroup(first)
        assert rec.groups == [second]
        await cast.send((first, port), "dropped")
        await cast.send((second, port), "marker")
        await log.wait_for("RECEIVED", 2)
        await blocked()
    assert log.data("RECEIVED") == ["to second", "marker"]


async def test_drop_before_start_and_groups_survive_restart() -> None:
    """A group dropped before start is not joined; groups survive stop/start."""
    kept, dropped = groups(2)
    log = EventLog()
    rec = receiver(log)
    rec.joinGroup(kept, dropped)
    rec.dropGroup(dropped)
    assert rec.groups == [kept]
    async with rec, sender() as cast:
        await rec.stop()
        await rec.stop()
        assert rec.groups == [kept] and not rec.isAlive
        await rec.start()
        port = rec.host[1]
        await cast.send((dropped, port), "dropped")
        await cast.send((kept, port), "marker")
        await log.wait_for("RECEIVED")
        await blocked()
    assert log.data("RECEIVED") == ["marker"]
    assert log.names() == ["STARTED", "STOPED", "STARTED", "RECEIVED", "STOPED"]


async def test_start_while_started_is_1000() -> None:
    """``start()`` on a listening receiver: SocketError 1000."""
    async with receiver(EventLog()) as rec:
        with pytest.raises(SocketError) as info:
            await rec.start()
        assert info.value.errno == 1000 and rec.isAlive


@pytest.mark.parametrize("started", [False, True], ids=["before-start", "after-start"])
async def test_membership_errors_are_all_or_nothing(started: bool) -> None:
    """1002 / 1003 / 1004, each leaving the groups as they were (and the OS too)."""
    joined, fresh, other = groups(3)
    log = EventLog()
    rec = receiver(log)
    rec.joinGroup([joined])  # a single list is accepted too
    async with contextlib.AsyncExitStack() as stack:
        if started:
            await stack.enter_async_context(rec)
        cases: list[tuple[int, tuple[str, ...], bool]] = [
            (1004, (fresh, "10.0.0.1"), True),
            (1004, (fresh, "not-an-address"), True),
            (1004, ("",), True),
            (1004, ("224.0.0.0/4",), True),
            (1002, (fresh, joined), True),
            (1002, (fresh, fresh), True),
            (1003, (joined, fresh), False),
            (1003, (other,), False),
            (1004, (joined, "10.168.1.1"), False),
        ]
        for code, ips, join in cases:
            with pytest.raises(SocketError) as info:
                (rec.joinGroup if join else rec.dropGroup)(*ips)
            assert info.value.errno == code, (code, ips)
            assert rec.groups == [joined], (code, ips)
        with pytest.raises(SocketError) as info:
            rec.joinGroup(42)  # type: ignore[arg-type]
        assert info.value.errno == 1004
        if started:
            async with sender() as cast:
                port = rec.host[1]
                await cast.send((fresh, port), "never joined")
                await cast.send((joined, port), "marker")
                await log.wait_for("RECEIVED")
                await blocked()
            assert log.data("RECEIVED") == ["marker"]
    rec.joinGroup(fresh, other)
    rec.dropGroup((joined, other))
    assert rec.groups == [fresh]


async def test_sender_errors() -> None:
    """Not a multicast group: 1004; bad data: TypeError; bad port/TTL: ValueError."""
    log = EventLog()
    async with sender(log) as cast:
        for group in ("127.0.0.1", "10.1.2.3", "not-an-address", "240.0.0.1"):
            with pytest.raises(SocketError) as info:
                await cast.send((group, 5000), "x")
            assert info.value.errno == 1004
        with pytest.raises(TypeError):
            await cast.send((groups(1)[0], 5000), 17)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="port"):
            await cast.send((groups(1)[0], 0), "x")
    with pytest.raises(ValueError, match="ttl"):
        CastSender(ttl=256)
    assert log.names() == []


async def test_two_receivers_share_a_port() -> None:
    """Two receivers on one port, same group: one datagram reaches both."""
    (group,) = groups(1)
    one_log, two_log = EventLog(), EventLog()
    one = receiver(one_log)
    one.joinGroup(group)
    async with one:
        two = CastReceiver(
            (ANY, one.host[1]), evts=two_log.evts(*RECEIVER_KEYS), interface=LOOPBACK
        )
        two.joinGroup(group)
        async with two, sender() as cast:
            assert two.host == one.host
            await cast.send((group, one.host[1]), "both")
            await one_log.wait_for("RECEIVED")
            await two_log.wait_for("RECEIVED")
    assert one_log.data("RECEIVED") == ["both"] and two_log.data("RECEIVED") == ["both"]


@pytest.mark.parametrize("how", ["constructor", "property"])
async def test_truncated_datagram_is_not_delivered_and_is_logged(
    caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """A datagram longer than recvBuffer: no RECEIVED callback, a warning on
    'jfsocket', a typed event flagged ``truncated``; shorter ones still arrive."""
    (group,) = groups(1)
    log = EventLog()
    if how == "constructor":
        rec = receiver(log, recv_buffer=8)
    else:
        rec = receiver(log)
        rec.recvBuffer = 8
    assert rec.recvBuffer == 8
    rec.joinGroup(group)
    typed: list[Event] = []
    with caplog.at_level(logging.WARNING, logger="jfsocket"):
        async with trio.open_nursery() as nursery:
            stream = rec.__aiter__()

            async def pull() -> None:
                async for event in stream:
                    typed.append(event)

            nursery.start_soon(pull)
            async with rec, sender() as cast:
                port = rec.host[1]
                await cast.send((group, port), "x" * 100)
                await cast.send((group, port), "short")
                await log.wait_for("RECEIVED")
    assert log.data("RECEIVED") == ["short"]
    assert any("recvBuffer" in r.getMessage() for r in caplog.records)
    received = [e for e in typed if isinstance(e, Received)]
    assert [(e.truncated, len(e.data)) for e in received] == [(True, 8), (False, 5)]
    assert received[0].remote is not None and received[0].remote[0] == LOOPBACK


async def test_encoding_none_receives_bytes() -> None:
    """A receiver with ``encoding=None`` delivers bytes, undecoded."""
    (group,) = groups(1)
    log = EventLog()
    rec = receiver(log, encoding=None)
    rec.joinGroup(group)
    async with rec, sender() as cast:
        await cast.send((group, rec.host[1]), b"\xff\x00raw")
        await log.wait_for("RECEIVED")
    assert log.data("RECEIVED") == [b"\xff\x00raw"]


async def test_receiver_stops_itself_from_a_callback() -> None:
    """``await receiver.stop()`` inside its RECEIVED callback: STOPED once, no hang."""
    (group,) = groups(1)
    log = EventLog()

    async def stop(rec: CastReceiver, data: object) -> None:
        log.record("RECEIVED", (rec, data))
        await rec.stop()

    rec = CastReceiver(
        (ANY, 0),
        evts={**log.evts(E.STARTED, E.STOPED), E.RECEIVED: stop},
        interface=LOOPBACK,
    )
    rec.joinGroup(group)
    async with rec, sender() as cast:
        await cast.send((group, rec.host[1]), "stop")
        await log.wait_for("STOPED")
        assert not rec.isAlive
    assert log.names() == ["STARTED", "RECEIVED", "STOPED"]


async def test_sender_close_then_send_again() -> None:
    """``close()`` releases the socket; a later send opens a new one."""
    (group,) = groups(1)
    log, slog = EventLog(), EventLog()
    rec = receiver(log)
    rec.joinGroup(group)
    async with rec, sender(slog) as cast:
        await cast.send((group, rec.host[1]), "one")
        await cast.close()
        await cast.close()
        await cast.send((group, rec.host[1]), "two")
        await log.wait_for("RECEIVED", 2)
    assert slog.data("SENDED") == ["one", "two"]
    assert log.data("RECEIVED") == ["one", "two"]


async def test_receivers_on_one_port_get_only_their_own_groups() -> None:
    """Two receivers on one port with different groups: each gets its group only."""
    mine, theirs = groups(2)
    one_log, two_log = EventLog(), EventLog()
    one = receiver(one_log)
    one.joinGroup(mine)
    async with one:
        port = one.host[1]
        two = CastReceiver((ANY, port), evts=two_log.evts(*RECEIVER_KEYS), interface=LOOPBACK)
        two.joinGroup(theirs)
        async with two, sender() as cast:
            await cast.send((theirs, port), "theirs first")
            await cast.send((mine, port), "mine")
            await cast.send((theirs, port), "theirs last")
            await one_log.wait_for("RECEIVED")
            await two_log.wait_for("RECEIVED", 2)
            await blocked()
    assert one_log.data("RECEIVED") == ["mine"]
    assert two_log.data("RECEIVED") == ["theirs first", "theirs last"]
