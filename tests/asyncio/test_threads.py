"""Other threads drive the objects through ``asyncio.run_coroutine_threadsafe``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from jfsocket.bindings.asyncio import EventTypes, SocketError

from .helpers import WAIT, EventLog, connected, settled_once, within

pytestmark = pytest.mark.asyncio
E = EventTypes
THREADS = 3
MESSAGES = 20


async def in_thread(target: Callable[[], None]) -> None:
    """Run *target* in a plain thread of its own; wait (not blocking the loop)
    until it is done; re-raise what it raised."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            loop.call_soon_threadsafe(done.set_exception, exc)
        else:
            loop.call_soon_threadsafe(done.set_result, None)

    thread = threading.Thread(target=run, name="jfsocket-test-thread")
    thread.start()
    try:
        await within(asyncio.shield(done), WAIT * 2, "the thread did not finish")
    finally:
        thread.join(WAIT)
    assert not thread.is_alive()


async def test_threads_send_through_run_coroutine_threadsafe() -> None:
    """Three plain threads each send 20 lines via ``run_coroutine_threadsafe``: each
    call returns once SENDED ran; the server gets every line, each thread's in
    its order; SENDED once per object."""
    loop = asyncio.get_running_loop()
    server_log, client_log = EventLog(), EventLog()
    sent: list[str] = []
    lock = threading.Lock()
    async with connected(server_log, client_log, framing="line") as (_, client, _side):

        def sender(number: int) -> Callable[[], None]:
            def send_all() -> None:
                for i in range(MESSAGES):
                    data = f"thread {number} line {i}"
                    with lock:
                        sent.append(data)
                    future = asyncio.run_coroutine_threadsafe(client.send(data), loop)
                    future.result(timeout=WAIT)
                    assert settled_once(client_log, [data]), data

            return send_all

        await asyncio.gather(*(in_thread(sender(n)) for n in range(THREADS)))
        await server_log.wait_for("RECEIVED", THREADS * MESSAGES)
    received = server_log.data("RECEIVED")
    assert sorted(map(str, received)) == sorted(sent)
    for number in range(THREADS):
        mine = [r for r in received if str(r).startswith(f"thread {number} ")]
        assert mine == [f"thread {number} line {i}" for i in range(MESSAGES)]
    assert settled_once(client_log, sent) and client_log.count("SENDFAIL") == 0


async def test_a_thread_closes_the_client_and_sees_1001_afterwards() -> None:
    """A thread closes the client through the loop, then its send raises
    SocketError 1001 in that thread; DISCONNECT ran once, in the loop."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.current_thread()
    server_log, client_log = EventLog(), EventLog()
    threads: list[threading.Thread] = []
    async with connected(server_log, client_log) as (_, client, _side):
        client.bind(E.DISCONNECT, lambda *args: threads.append(threading.current_thread()))

        def close_then_send() -> None:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=WAIT)
            future = asyncio.run_coroutine_threadsafe(client.send("too late"), loop)
            with pytest.raises(SocketError) as info:
                future.result(timeout=WAIT)
            assert info.value.errno == 1001

        await in_thread(close_then_send)
        assert not client.isAlive
        await server_log.wait_for("DISCONNECT")
    assert threads == [loop_thread]
