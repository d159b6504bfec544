"""A truncated datagram under trio, seen through ``async for``: its typed event is flagged.

Every binding's multicast behaviour is in ``tests/conformance``; loopback only
(receivers on 127.0.0.1, senders with TTL 0, groups in 239.255.0.0/16).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator

import pytest
import trio
from jfsocket.bindings.trio import CastReceiver, CastSender, EventTypes
from jfsocket.core import Received, StreamEvent

from .conftest import RECEIVER_KEYS, SENDER_KEYS, EventLog

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
    typed: list[StreamEvent] = []
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
