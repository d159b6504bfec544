"""Flow control: ``await send()`` waits for a peer that does not read, and memory
stays bounded; when the peer reads again every send completes, SENDED in order.

The peer is a plain socket with a 4 KiB receive buffer that the test reads or
not.  Bytes the binding has reported SENDED while the peer read nothing are
bounded by what the kernel holds (the sender's send buffer can grow to
``tcp_wmem``'s maximum; the peer's receive buffer is fixed) plus the
transport's high-water mark: a binding that buffers without waiting would
report all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
from collections.abc import AsyncIterator

import pytest
from jfsocket.bindings.asyncio import EventTypes, SocketError, TcpClient, TcpServer

from .helpers import (
    CLIENT_KEYS,
    LOCALHOST,
    SERVER_KEYS,
    EventLog,
    accept,
    cancel_and_wait,
    quiesce,
    raw_listener,
    read_exactly,
    read_to_eof,
    reset,
    settled,
    within,
)

pytestmark = pytest.mark.asyncio
E = EventTypes
CHUNK = 64 * 1024
COUNT = 256  # 16 MiB in all
#: More than loopback's socket buffers hold: a send of it blocks until the peer reads.
HUGE = 16 * 1024 * 1024
#: Seconds the peer may take to read everything back.
READ_ALL = 15.0


def sended_bound() -> int:
    """The most bytes a correct binding can have reported SENDED while the peer
    read nothing: the kernel's largest TCP send buffer, its skb overhead and the
    peer's small receive buffer, and a transport high-water mark and one chunk
    (generously: 1 MiB)."""
    wmem_max = int(pathlib.Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    return wmem_max + (1 << 20)


def numbered_chunks(count: int, size: int = CHUNK) -> list[bytes]:
    """*count* distinct chunks of *size* bytes, each starting with its number."""
    return [i.to_bytes(4, "big") + bytes(size - 4) for i in range(count)]


#: max_pending for these tests: room for every send they queue behind a peer
#: that does not read (more is a slow consumer, tested on its own).
ROOM = 64 << 20


@contextlib.asynccontextmanager
async def slow_peer(role: str, log: EventLog) -> AsyncIterator[tuple[TcpClient, socket.socket]]:
    """A jfsocket connection whose other end is a plain socket that reads only
    when told: ``(our side, peer)``.  *role* ``'client'``: our TcpClient connects
    to a plain listener; ``'server'``: a plain socket connects to our TcpServer and
    we send from the server's side of it."""
    if role == "client":
        with raw_listener(rcvbuf=4096) as listener:
            async with TcpClient(
                evts=log.evts(*CLIENT_KEYS), encoding=None, max_pending=ROOM
            ) as client:
                await client.connect(*listener.getsockname())
                with await accept(listener) as peer:
                    yield client, peer
        return
    loop = asyncio.get_running_loop()
    async with TcpServer(
        LOCALHOST, 0, evts=log.evts(*SERVER_KEYS), encoding=None, max_pending=ROOM
    ) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as peer:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            peer.setblocking(False)
            await within(loop.sock_connect(peer, server.host))
            await log.wait_for("CONNECTED")
            (side,) = server.clients.values()
            yield side, peer


@pytest.mark.parametrize("role", ["client", "server"])
async def test_sends_wait_for_a_peer_that_does_not_read(role: str) -> None:
    """256 sends of 64 KiB in a row to a peer that does not read: the sending task
    waits, with only a bounded number of them SENDED; once the peer reads, all
    complete, the bytes arrive in order and SENDED ran for each, in order."""
    log = EventLog()
    chunks = numbered_chunks(COUNT)
    async with slow_peer(role, log) as (ours, peer):

        async def send_all() -> None:
            for chunk in chunks:
                await ours.send(chunk)

        sender = asyncio.ensure_future(send_all())
        try:
            await quiesce(lambda: (sender.done(), log.count("SENDED")), steady=100)
            assert not sender.done(), "every send returned while the peer read nothing"
            sended = log.count("SENDED") * CHUNK
            assert sended <= sended_bound(), f"{sended} bytes SENDED, none read"
            received = await read_exactly(peer, CHUNK * COUNT, timeout=READ_ALL)
            await within(sender)
        finally:
            await cancel_and_wait(sender)
        assert ours.isAlive
    assert received == b"".join(chunks)
    sent = log.data("SENDED")
    assert len(sent) == COUNT and all(s is c for s, c in zip(sent, chunks, strict=True))
    assert log.count("SENDFAIL") == 0 and log.count("DISCONNECT") == 1


async def test_one_huge_send_returns_once_the_peer_has_read_it() -> None:
    """One 16 MiB send: it does not return (no SENDED) while the peer reads
    nothing; it returns after the peer read it all, SENDED once with the object."""
    log = EventLog()
    big = bytes(HUGE)
    async with slow_peer("client", log) as (client, peer):
        sending = asyncio.ensure_future(client.send(big))
        try:
            await quiesce(lambda: (sending.done(), log.names()))
            assert not sending.done() and log.names() == ["CONNECTED"]
            received = await read_exactly(peer, HUGE, timeout=READ_ALL)
            await within(sending)
        finally:
            await cancel_and_wait(sending)
        assert len(received) == HUGE
        assert len(log.data("SENDED")) == 1 and log.data("SENDED")[0] is big
    assert log.names() == ["CONNECTED", "SENDED", "DISCONNECT"]


async def test_concurrent_blocked_sends_complete_in_call_order() -> None:
    """Eight tasks each send 1 MiB while the peer does not read: once it reads, the
    bytes arrive in the order the sends were called, not interleaved, and SENDED
    runs in that order."""
    log = EventLog()
    chunks = numbered_chunks(8, 1 << 20)
    async with slow_peer("client", log) as (client, peer):
        senders = [asyncio.ensure_future(client.send(chunk)) for chunk in chunks]
        try:
            await quiesce(lambda: log.count("SENDED"))
            assert not all(s.done() for s in senders)
            received = await read_exactly(peer, len(chunks) << 20, timeout=READ_ALL)
            await within(asyncio.gather(*senders))
        finally:
            for sender in senders:
                await cancel_and_wait(sender)
    assert received == b"".join(chunks)
    sent = log.data("SENDED")
    assert len(sent) == len(chunks) and all(s is c for s, c in zip(sent, chunks, strict=True))


@pytest.mark.parametrize("how", ["close", "leave-block"])
async def test_close_does_not_wait_for_a_peer_that_does_not_read(how: str) -> None:
    """A send blocked on a peer that never reads, then ``close()`` (or leaving
    ``async with``): it returns at once; the blocked send returns after its
    SENDFAIL (or raises 1001 without one), never SENDED; one DISCONNECT; the peer,
    still open, sees the connection end."""
    log = EventLog()
    big = bytes(HUGE)
    sending: list[asyncio.Future[None]] = []
    peers: list[socket.socket] = []
    with raw_listener(rcvbuf=4096) as listener, contextlib.ExitStack() as stack:
        client = TcpClient(evts=log.evts(*CLIENT_KEYS), encoding=None)

        async def block() -> None:
            async with client:
                await client.connect(*listener.getsockname())
                peers.append(stack.enter_context(await accept(listener)))
                sending.append(asyncio.ensure_future(client.send(big)))
                await quiesce(lambda: (sending[0].done(), log.names()))
                assert not sending[0].done()
                if how == "close":
                    await client.close()
                    assert not client.isAlive

        await within(block(), what=f"{how} waits for the peer to read")
        assert not client.isAlive
        (send,) = sending
        await within(asyncio.wait({send}))
        error = send.exception()
        await read_to_eof(peers[0], timeout=READ_ALL)
    assert log.data("SENDED") == []
    if error is None:
        assert settled(log, big) == 1
    else:
        assert isinstance(error, SocketError) and error.errno == 1001, error
        assert settled(log, big) == 0
    assert log.names()[-1] == "DISCONNECT" and log.count("DISCONNECT") == 1


async def test_blocked_sends_when_the_peer_resets() -> None:
    """Three sends blocked on a peer that then resets the connection: every one
    ends (none hangs); each that returned got exactly one SENDED or SENDFAIL, the
    huge one SENDFAIL; DISCONNECT once and last."""
    log = EventLog()
    first, second, third = bytes(HUGE), b"second", bytearray(b"third")
    async with slow_peer("client", log) as (client, peer):
        senders = [asyncio.ensure_future(client.send(d)) for d in (first, second, third)]
        try:
            await quiesce(lambda: (log.names(), [s.done() for s in senders]))
            assert not senders[0].done()
            reset(peer)
            await within(asyncio.wait(senders), what="a send hangs after the reset")
        finally:
            for sender in senders:
                await cancel_and_wait(sender)
        for sender, data in zip(senders, (first, second, third), strict=True):
            error = sender.exception()
            if error is None:
                assert settled(log, data) == 1, data
            else:
                assert isinstance(error, SocketError) and error.errno == 1001, error
                assert settled(log, data) == 0
        assert log.data("SENDFAIL")[0] is first
        await log.wait_for("DISCONNECT")
        assert not client.isAlive
    assert log.names()[-1] == "DISCONNECT" and log.count("DISCONNECT") == 1
