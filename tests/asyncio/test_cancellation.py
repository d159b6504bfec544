"""Cancellation: every async method, slow callbacks, whole blocks, at every step.

asyncio has no cancel scopes: a task is cancelled (``task.cancel()``, or
``asyncio.timeout`` doing it) wherever it waits.  So most tests here cancel a
task after *n* trips through the loop for n = 0, 1, 2, ... until the operation
completes before the cancel arrives, and check after each that nothing is left
half-done: no task, no descriptor, the object either untouched or done, each
send settled at most once (exactly once when it returned) and one DISCONNECT
per CONNECTED.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys

import pytest
from jfsocket.bindings.asyncio import (
    CastReceiver,
    CastSender,
    EventTypes,
    TcpClient,
    TcpServer,
)

from .helpers import (
    CLIENT_KEYS,
    LOCALHOST,
    RECEIVER_KEYS,
    SENDER_KEYS,
    SERVER_KEYS,
    EventLog,
    accept,
    cancel_after,
    cancel_and_wait,
    connected,
    new_fds,
    one_disconnect_per_connected,
    open_fds,
    quiesce,
    raw_listener,
    read_to_eof,
    run_isolated,
    settled,
    stray_tasks,
    within,
)

pytestmark = pytest.mark.asyncio
E = EventTypes
GROUP = "239.255.91.1"
#: More than loopback's socket buffers hold: a send of it blocks until the peer reads.
HUGE = 16 * 1024 * 1024
#: Most loop iterations a cancel-at-every-step test tries before it must be done.
MAX_STEPS = 400


# -- TcpClient.connect -----------------------------------------------------------


async def test_connect_cancelled_while_the_peer_never_accepts() -> None:
    """connect to a listener whose backlog is full, cancelled: CancelledError, not
    connected, no event, no task; connecting to a real server afterwards works."""
    log = EventLog()
    with raw_listener(backlog=0) as listener:
        async with (
            TcpServer(LOCALHOST, 0) as server,
            TcpClient(evts=log.evts(*CLIENT_KEYS)) as client,
        ):
            address = listener.getsockname()
            with socket.create_connection(address, timeout=5):  # fills the backlog
                connecting = asyncio.ensure_future(client.connect(*address))
                await quiesce(lambda: (connecting.done(), client.isAlive))
                assert not connecting.done(), "connect to a full backlog returned"
                connecting.cancel()
                await within(asyncio.wait({connecting}))
                assert connecting.cancelled()
                assert not client.isAlive and log.names() == []
                assert stray_tasks() == []
            await client.connect(*server.host)
            assert client.isAlive
    assert log.names() == ["CONNECTED", "DISCONNECT"]


async def test_connect_cancelled_at_every_step() -> None:
    """A connect cancelled after n loop iterations, for every n until it completes
    first: see :func:`tests.asyncio.isolated.connect_cancelled_at_every_step` (a
    child process: a failure here may hang under the binding's cleanup shield)."""
    result = await run_isolated("connect_cancelled_at_every_step")
    assert result.returncode == 0, result.stderr.decode()


# -- TcpClient.send --------------------------------------------------------------


async def test_send_cancelled_while_blocked_on_flow_control() -> None:
    """A send stuck on a peer that does not read, cancelled: CancelledError itself
    propagates; the data gets exactly one SENDED or SENDFAIL (a SENDED only once
    the peer read it all); one DISCONNECT after close; no task left."""
    log = EventLog()
    big = bytes(HUGE)
    with raw_listener(rcvbuf=4096) as listener:
        async with TcpClient(evts=log.evts(*CLIENT_KEYS), encoding=None) as client:
            await client.connect(*listener.getsockname())
            peer = await accept(listener)
            with peer:
                sending = asyncio.ensure_future(client.send(big))
                await quiesce(lambda: (sending.done(), log.names()))
                assert not sending.done() and log.names() == ["CONNECTED"]
                sending.cancel()
                await within(asyncio.wait({sending}))
                assert sending.cancelled()
                # Whether the binding drops the connection (SENDFAIL) or lets the
                # queued bytes go out (SENDED once read), it settles exactly once.
                reading = asyncio.ensure_future(read_to_eof(peer))
                await log.wait_for(lambda: settled(log, big) >= 1)
                await client.close()
                received = await within(reading)
            assert settled(log, big) == 1
            if log.data("SENDED"):
                assert len(received) == HUGE
    one_disconnect_per_connected(log)
    assert log.count("DISCONNECT") == 1


async def test_send_cancelled_at_every_step() -> None:
    """A send cancelled after n loop iterations: settled at most once, exactly once
    if it returned; the connection still closes with one DISCONNECT."""
    for steps in range(MAX_STEPS):
        server_log, log = EventLog(), EventLog()
        data = f"message {steps}\n"
        async with connected(server_log, log) as (_, client, _side):
            outcome = await cancel_after(steps, functools.partial(client.send, data))
            if outcome.completed:
                assert settled(log, data) == 1
            await quiesce(log.names)
            assert settled(log, data) <= 1, (steps, log.names())
        assert settled(log, data) <= 1 and log.count("DISCONNECT") == 1, steps
        one_disconnect_per_connected(log)
        if outcome.completed:
            break
    else:
        pytest.fail(f"send never completed within {MAX_STEPS} steps")


# -- TcpClient.close, TcpServer.stop / start / close -------------------------------


async def test_client_close_cancelled_at_every_step_still_closes() -> None:
    """close cancelled after n iterations: the client is closed regardless, with
    one DISCONNECT on each side, and it can connect again."""
    for steps in range(1, MAX_STEPS):
        server_log, log = EventLog(), EventLog()
        async with connected(server_log, log) as (server, client, _side):
            outcome = await cancel_after(steps, client.close)
            assert not client.isAlive, steps
            await log.wait_for("DISCONNECT")
            await server_log.wait_for("DISCONNECT")
            await client.connect(*server.host)
            assert client.isAlive
        assert log.names() == ["CONNECTED", "DISCONNECT", "CONNECTED", "DISCONNECT"], steps
        if outcome.completed:
            break
    else:
        pytest.fail(f"close never completed within {MAX_STEPS} steps")


async def test_server_stop_cancelled_at_every_step_still_stops() -> None:
    """stop cancelled after n iterations: not listening, no client left, STOPED once
    after the DISCONNECT; the peer sees its DISCONNECT; start works again."""
    for steps in range(1, MAX_STEPS):
        server_log, client_log = EventLog(), EventLog()
        async with connected(server_log, client_log) as (server, _, _side):
            outcome = await cancel_after(steps, server.stop)
            assert not server.isAlive, steps
            await server_log.wait_for("STOPED")
            assert server.clients == {}
            assert server_log.names()[-2:] == ["DISCONNECT", "STOPED"], steps
            await client_log.wait_for("DISCONNECT")
            await server.start()
            assert server.isAlive
        assert server_log.count("STOPED") == 2 and server_log.count("DISCONNECT") == 1, steps
        if outcome.completed:
            break
    else:
        pytest.fail(f"stop never completed within {MAX_STEPS} steps")


async def test_server_start_cancelled_at_every_step() -> None:
    """start cancelled after n iterations: not listening and no STARTED, or listening
    with its STARTED; then it starts (or stops) as usual, STARTED/STOPED paired."""
    for steps in range(MAX_STEPS):
        log = EventLog()
        async with TcpServer(LOCALHOST, 0, evts=log.evts(E.STARTED, E.STOPED)) as server:
            await server.stop()
            before = open_fds()
            outcome = await cancel_after(steps, server.start)
            await quiesce(log.names)
            if server.isAlive:
                assert log.names() == ["STARTED", "STOPED", "STARTED"], steps
            else:
                assert log.names() == ["STARTED", "STOPED"], steps
                assert new_fds(before) == {}, steps  # no listening socket left open
                await server.start()
            async with TcpClient() as client:  # it really listens
                await client.connect(*server.host)
        assert log.names()[::2] == ["STARTED", "STARTED"] and log.names()[-1] == "STOPED"
        assert log.count("STOPED") == 2, steps
        if outcome.completed:
            break
    else:
        pytest.fail(f"start never completed within {MAX_STEPS} steps")


async def test_server_send_and_close_cancelled() -> None:
    """server.send / server.close cancelled at their first wait: the data settled at
    most once; close still closes the clients, one DISCONNECT each."""
    server_log, client_log = EventLog(), EventLog()
    async with connected(server_log, client_log) as (server, _, _side):
        data = "to all"
        await cancel_after(1, lambda: server.send(data))
        await quiesce(server_log.names)
        assert settled(server_log, data) <= 1
        await cancel_after(1, server.close)
        await server_log.wait_for("DISCONNECT")
        assert server.clients == {}
        await client_log.wait_for("DISCONNECT")
    assert server_log.count("DISCONNECT") == 1 and client_log.count("DISCONNECT") == 1


# -- multicast -------------------------------------------------------------------


async def test_receiver_start_and_stop_cancelled() -> None:
    """CastReceiver.stop and start cancelled after n iterations: see
    :func:`tests.asyncio.isolated.receiver_start_and_stop_cancelled` (a child
    process: a socket the loop still owns, closed under it, can break the loop)."""
    result = await run_isolated("receiver_start_and_stop_cancelled")
    assert result.returncode == 0, result.stderr.decode()


async def test_sender_send_cancelled() -> None:
    """CastSender.send cancelled after n iterations: settled at most once (exactly
    once when it returned); a later send works."""
    for steps in range(MAX_STEPS):
        log = EventLog()
        async with CastSender(evts=log.evts(*SENDER_KEYS), ttl=0, interface="127.0.0.1") as cast:
            data = b"cancelled"
            outcome = await cancel_after(steps, functools.partial(cast.send, (GROUP, 9), data))
            await quiesce(log.names)
            assert settled(log, data) == 1 if outcome.completed else settled(log, data) <= 1
            after = "after"
            await cast.send((GROUP, 9), after)
            assert settled(log, after) == 1 and log.data("SENDED")[-1] is after
        if outcome.completed:
            break
    else:
        pytest.fail(f"send never completed within {MAX_STEPS} steps")


# -- slow callbacks ----------------------------------------------------------------


async def test_cancelled_send_while_its_sended_callback_is_slow() -> None:
    """The SENDED callback of a send waits on a gate; the send is cancelled
    meanwhile: SENDED runs once, the events queued behind it run after it, in
    order, and never alongside it; close gives one DISCONNECT."""
    log = EventLog()
    entered, gate = asyncio.Event(), asyncio.Event()
    active: list[str] = []
    overlaps: list[str] = []

    async def slow_sended(client: TcpClient, data: object) -> None:
        log.record("SENDED", (client, data))
        active.append("SENDED")
        entered.set()
        try:
            await gate.wait()
        finally:
            active.remove("SENDED")

    def received(client: TcpClient, data: object) -> None:
        if active:
            overlaps.append(f"RECEIVED {data} during {active}")
        log.record("RECEIVED", (client, data))

    server_log = EventLog()
    async with connected(server_log, EventLog(), framing="line") as (server, _, _side):
        client = TcpClient(
            evts={
                **log.evts(E.DISCONNECT),
                E.RECEIVED: received,
                E.SENDED: slow_sended,
            },
            framing="line",
        )
        async with client:
            await client.connect(*server.host)
            await server_log.wait_for("CONNECTED", 2)
            sending = asyncio.ensure_future(client.send("x"))
            await within(entered.wait())
            for word in ("a", "b", "c"):
                await server.send(word)
            await quiesce(log.names)
            assert log.count("RECEIVED") == 0, "a callback ran while SENDED was running"
            sending.cancel()
            await within(asyncio.wait({sending}))
            gate.set()  # a SENDED callback not cancelled with the send may finish now
            await log.wait_for("RECEIVED", 3)
            assert client.isAlive
            await client.close()
    assert overlaps == []
    assert log.names() == ["SENDED", "RECEIVED", "RECEIVED", "RECEIVED", "DISCONNECT"]
    assert log.data("RECEIVED") == ["a", "b", "c"]


async def test_cancelling_the_block_around_a_stuck_reader_callback() -> None:
    """A RECEIVED callback that never returns, with more RECEIVED queued behind it;
    the task around both blocks is cancelled: the stuck callback is cancelled, the
    queued events still run, DISCONNECT and STOPED come once each, no task left."""
    client_log, server_log = EventLog(), EventLog()
    stuck = asyncio.Event()
    cancelled_in_callback: list[str] = []

    async def slow_received(client: TcpClient, data: object) -> None:
        client_log.record("RECEIVED", (client, data))
        if data == "a":
            stuck.set()
            try:
                await asyncio.Event().wait()  # forever
            except asyncio.CancelledError:
                cancelled_in_callback.append("a")
                raise

    client = TcpClient(
        evts={**client_log.evts(E.DISCONNECT), E.RECEIVED: slow_received}, framing="line"
    )
    server = TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS))

    async def body() -> None:
        async with server, client:
            await client.connect(*server.host)
            await server.send("a\nb\nc\n")  # one write, one read: three RECEIVED queued
            await stuck.wait()
            await asyncio.Event().wait()  # forever

    task = asyncio.ensure_future(body())
    await within(stuck.wait())
    await quiesce(client_log.names)
    task.cancel()
    await within(asyncio.wait({task}), what="leaving the block hangs")
    assert task.cancelled()
    assert stray_tasks() == []
    assert cancelled_in_callback == ["a"]
    assert client_log.data("RECEIVED") == ["a", "b", "c"]
    assert client_log.names()[-1] == "DISCONNECT" and client_log.count("DISCONNECT") == 1
    assert server_log.count("DISCONNECT") == 1 and server_log.count("STOPED") == 1
    assert not client.isAlive and not server.isAlive


# -- whole blocks --------------------------------------------------------------------


async def _block_until_cancelled(
    server_log: EventLog, client_log: EventLog, ready: asyncio.Event
) -> tuple[TcpServer, TcpClient]:
    async with connected(server_log, client_log) as (_server, client, _side):
        await client.send("hi")
        await server_log.wait_for("RECEIVED")
        ready.set()
        await asyncio.Event().wait()  # forever
    raise AssertionError("unreachable")  # pragma: no cover


def _assert_closed_once(server_log: EventLog, client_log: EventLog) -> None:
    assert client_log.names() == ["CONNECTED", "SENDED", "DISCONNECT"]
    assert server_log.names() == ["STARTED", "CONNECTED", "RECEIVED", "DISCONNECT", "STOPED"]
    server = server_log.args("STARTED")[0][0]
    client = client_log.args("CONNECTED")[0][0]
    assert isinstance(server, TcpServer) and isinstance(client, TcpClient)
    assert not server.isAlive and not client.isAlive and server.clients == {}


async def test_cancelling_the_whole_block_with_task_cancel() -> None:
    """``task.cancel()`` on a task inside ``async with`` server and client: the task
    ends cancelled, everything is closed, DISCONNECT and STOPED once each."""
    server_log, client_log = EventLog(), EventLog()
    ready = asyncio.Event()
    task = asyncio.ensure_future(_block_until_cancelled(server_log, client_log, ready))
    await within(ready.wait())
    task.cancel()
    await within(asyncio.wait({task}), what="leaving the block hangs")
    assert task.cancelled()
    assert stray_tasks() == []
    _assert_closed_once(server_log, client_log)


async def test_cancelling_the_whole_block_with_a_timeout() -> None:
    """A timeout expiring inside ``async with`` server and client (``asyncio.timeout``
    on 3.11+, ``asyncio.wait_for`` before): TimeoutError at the timeout, not a
    swallowed cancellation; everything closed once; the task is not left
    cancelling."""
    server_log, client_log = EventLog(), EventLog()
    ready = asyncio.Event()
    if sys.version_info >= (3, 11):

        async def block_with_timeout() -> None:
            async with asyncio.timeout(None) as deadline:

                async def expire_when_ready() -> None:
                    await ready.wait()
                    deadline.reschedule(asyncio.get_running_loop().time())

                expiry = asyncio.ensure_future(expire_when_ready())
                try:
                    await _block_until_cancelled(server_log, client_log, ready)
                finally:
                    await cancel_and_wait(expiry)

        with pytest.raises(TimeoutError):
            await within(block_with_timeout(), what="leaving the block hangs")
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
    else:  # pragma: no cover - Python 3.10
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_block_until_cancelled(server_log, client_log, ready), 1.0)
        if not ready.is_set():
            pytest.skip("the setup took longer than the timeout")
    assert stray_tasks() == []
    _assert_closed_once(server_log, client_log)


async def test_a_second_cancel_while_leaving_still_cleans_up() -> None:
    """The task is cancelled, and cancelled again while leaving the block (a slow
    DISCONNECT callback is running): it still ends with no task, no open object,
    and each DISCONNECT/STOPED once."""
    server_log, client_log = EventLog(), EventLog()
    in_disconnect, gate = asyncio.Event(), asyncio.Event()

    async def slow_disconnect(*args: object) -> None:
        client_log.record("DISCONNECT", args)
        in_disconnect.set()
        await gate.wait()

    async def body() -> None:
        server = TcpServer(LOCALHOST, 0, evts=server_log.evts(*SERVER_KEYS))
        client = TcpClient(
            evts={**client_log.evts(E.CONNECTED, E.SENDED), E.DISCONNECT: slow_disconnect}
        )
        async with server, client:
            await client.connect(*server.host)
            await client.send("hi")
            ready.set()
            await asyncio.Event().wait()  # forever

    ready = asyncio.Event()
    task = asyncio.ensure_future(body())
    await within(ready.wait())
    task.cancel()
    await within(in_disconnect.wait())
    task.cancel()
    gate.set()
    await within(asyncio.wait({task}), what="leaving the block hangs")
    assert task.cancelled()
    assert stray_tasks() == []
    assert client_log.names() == ["CONNECTED", "SENDED", "DISCONNECT"]
    (client,) = {args[0] for args in client_log.args("CONNECTED")}
    assert isinstance(client, TcpClient) and not client.isAlive
    assert server_log.count("DISCONNECT") == 1 and server_log.names()[-1] == "STOPED"
    assert server_log.count("STOPED") == 1


async def test_cancelling_a_whole_lifecycle_at_every_step() -> None:
    """Server and client through start, connect, send both ways and exit, the task
    cancelled after n iterations for every n until it completes: see
    :func:`tests.asyncio.isolated.lifecycle_cancelled_at_every_step` (a child
    process: a failure here may hang under the binding's cleanup shield)."""
    result = await run_isolated("lifecycle_cancelled_at_every_step")
    assert result.returncode == 0, result.stderr.decode()


class BodyError(Exception):
    """Raised by a test body on purpose."""


@pytest.mark.parametrize("kind", ["server", "client", "receiver", "sender"])
async def test_body_exception_propagates_as_itself(kind: str) -> None:
    """An exception from the body of ``async with`` is that exception, not a group;
    the object is still closed or stopped."""
    log = EventLog()
    obj: TcpServer | TcpClient | CastReceiver | CastSender
    if kind == "server":
        obj = TcpServer(LOCALHOST, 0, evts=log.evts(*SERVER_KEYS))
    elif kind == "client":
        obj = TcpClient(evts=log.evts(*CLIENT_KEYS))
    elif kind == "receiver":
        obj = CastReceiver(("0.0.0.0", 0), evts=log.evts(*RECEIVER_KEYS), interface="127.0.0.1")
    else:
        obj = CastSender(evts=log.evts(*SENDER_KEYS), ttl=0, interface="127.0.0.1")

    async def body(address: tuple[str, int]) -> None:
        async with obj:
            if isinstance(obj, TcpClient):
                await obj.connect(*address)
            raise BodyError(kind)

    async with TcpServer(LOCALHOST, 0) as other:
        with pytest.raises(BodyError) as info:
            await body(other.host)
        assert type(info.value) is BodyError
    if isinstance(obj, TcpClient):
        assert log.names() == ["CONNECTED", "DISCONNECT"]
    elif not isinstance(obj, CastSender):
        assert log.names() == ["STARTED", "STOPED"] and not obj.isAlive
