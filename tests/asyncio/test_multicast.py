"""CastReceiver and CastSender on loopback only.

Every receiver binds ``('0.0.0.0', 0)`` and joins on interface 127.0.0.1; every
sender has TTL 0 and interface 127.0.0.1, so no datagram leaves the host.
Groups are random in 239.255.0.0/16.  "Not received" is shown without waiting
for time to pass: a marker datagram to a joined group is sent after the one
that must not arrive, from the same socket; once the marker is in, the earlier
datagram would have been too.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from jfsocket.bindings.asyncio import CastReceiver, CastSender, EventTypes, SocketError

from .helpers import RECEIVER_KEYS, SENDER_KEYS, EventLog

pytestmark = pytest.mark.asyncio
E = EventTypes
ANY = "0.0.0.0"
LOOPBACK = "127.0.0.1"


def groups(count: int) -> list[str]:
    """*count* distinct random groups in 239.255.0.0/16 (x.x.1.1 - x.x.254.254)."""
    picked = random.sample(range(257, 65279), count)
    return [f"239.255.{n >> 8}.{n & 255}" for n in picked]


def receiver(log: EventLog, port: int = 0) -> CastReceiver:
    """A loopback receiver (on an OS-chosen port by default), logging into *log*."""
    return CastReceiver((ANY, port), evts=log.evts(*RECEIVER_KEYS), interface=LOOPBACK)


@contextlib.asynccontextmanager
async def sender(log: EventLog | None = None) -> AsyncIterator[CastSender]:
    """A loopback-only sender (TTL 0, interface 127.0.0.1)."""
    evts = log.evts(*SENDER_KEYS) if log is not None else None
    async with CastSender(evts=evts, ttl=0, interface=LOOPBACK) as cast:
        yield cast


async def test_receive_only_the_groups_joined_before_start() -> None:
    """Groups joined before start receive; another group on the same port does not;
    SENDED gets each object as passed; STARTED/STOPED carry the receiver."""
    joined, other = groups(2)
    rlog, slog = EventLog(), EventLog()
    rec = receiver(rlog)
    rec.joinGroup(joined)
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
        await cast.send((other, port), "not joined")
        for data in payloads:
            await cast.send((joined, port), data)
        await rlog.wait_for("RECEIVED", 4)
    sent = slog.data("SENDED")
    assert len(sent) == 5 and all(s is p for s, p in zip(sent[1:], payloads, strict=True))
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
        await cast.send((first, port), "to first")
        await log.wait_for("RECEIVED", 2)
        rec.dropGroup(first)
        assert rec.groups == [second]
        await cast.send((first, port), "dropped")
        await cast.send((second, port), "marker")
        await log.wait_for("RECEIVED", 3)
    assert log.data("RECEIVED") == ["to second", "to first", "marker"]


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
    assert log.data("RECEIVED") == ["marker"]
    assert log.names() == ["STARTED", "STOPED", "STARTED", "RECEIVED", "STOPED"]


async def test_receivers_on_one_port_get_only_their_own_groups() -> None:
    """Two receivers on one port with different groups: each gets its group only."""
    mine, theirs = groups(2)
    one_log, two_log = EventLog(), EventLog()
    one = receiver(one_log)
    one.joinGroup(mine)
    async with one:
        port = one.host[1]
        two = receiver(two_log, port)
        two.joinGroup(theirs)
        async with two, sender() as cast:
            await cast.send((theirs, port), "theirs first")
            await cast.send((mine, port), "mine")
            await cast.send((theirs, port), "theirs last")
            await cast.send((mine, port), "mine last")
            await one_log.wait_for("RECEIVED", 2)
            await two_log.wait_for("RECEIVED", 2)
    assert one_log.data("RECEIVED") == ["mine", "mine last"]
    assert two_log.data("RECEIVED") == ["theirs first", "theirs last"]


@pytest.mark.parametrize("started", [False, True], ids=["before-start", "after-start"])
async def test_membership_errors_leave_the_groups_as_they_were(started: bool) -> None:
    """1002 / 1003 / 1004, all or nothing, before and after start; a group a failed
    joinGroup named is not joined in the OS either."""
    joined, fresh = groups(2)
    log = EventLog()
    rec = receiver(log)
    rec.joinGroup(joined)
    async with contextlib.AsyncExitStack() as stack:
        if started:
            await stack.enter_async_context(rec)
        cases: list[tuple[int, tuple[str, ...], bool]] = [
            (1004, (fresh, "10.0.0.1"), True),
            (1002, (fresh, joined), True),
            (1003, (joined, fresh), False),
            (1004, (joined, "not-an-address"), False),
        ]
        for code, ips, join in cases:
            with pytest.raises(SocketError) as info:
                (rec.joinGroup if join else rec.dropGroup)(*ips)
            assert info.value.errno == code, (code, ips)
            assert rec.groups == [joined], (code, ips)
        if started:
            async with sender() as cast:
                port = rec.host[1]
                await cast.send((fresh, port), "never joined")
                await cast.send((joined, port), "marker")
                await log.wait_for("RECEIVED")
            assert log.data("RECEIVED") == ["marker"]


async def test_receiver_stops_itself_from_a_callback() -> None:
    """``await receiver.stop()`` inside its async RECEIVED callback: STOPED once,
    after that callback, no hang."""
    (group,) = groups(1)
    log = EventLog()

    async def stop(rec: CastReceiver, data: object) -> None:
        log.record("RECEIVED", (rec, data))
        await rec.stop()
        log.record("stopped", (rec,))

    rec = CastReceiver(
        (ANY, 0), evts={**log.evts(E.STARTED, E.STOPED), E.RECEIVED: stop}, interface=LOOPBACK
    )
    rec.joinGroup(group)
    async with rec, sender() as cast:
        await cast.send((group, rec.host[1]), "stop")
        await log.wait_for("STOPED")
        assert not rec.isAlive
    assert log.names() == ["STARTED", "RECEIVED", "stopped", "STOPED"]


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
