"""asyncio streams (``start_server``/``open_connection``) doing the bulk and
ping-pong work: the extra baseline of the trio and asyncio benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import Final, TypeVar

from .counters import Tally
from .plumbing import LOOPBACK, StalledError, check

__all__ = ["Handler", "bulk_streams", "ping_streams", "streams_client", "streams_server", "within"]

CHUNK: Final = 64 << 10  # bulk send size, and the streams readers' buffer
PING_SIZE: Final = 64
PING_RECV: Final = 1024
_T = TypeVar("_T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def within(awaitable: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await *awaitable* for at most *seconds*; past that, :class:`StalledError`."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise StalledError(f"{what}: not done within {seconds:g} s") from None


@contextlib.asynccontextmanager
async def streams_server(
    handle: Handler, timeout: float, what: str, backlog: int = 100
) -> AsyncIterator[int]:
    """``asyncio.start_server`` on loopback: its port; at the end its handlers have ended.

    Their connections are closed (so their reads see the end of the stream), not
    their tasks cancelled: asyncio logs a cancelled handler as an error.
    """
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        try:
            await handle(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0, backlog=backlog)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await within(
            asyncio.gather(*tasks, return_exceptions=True), timeout, f"{what}: handlers ending"
        )
        for writer in writers:
            with contextlib.suppress(OSError):
                await within(writer.wait_closed(), timeout, f"{what}: server side closing")
        await within(server.wait_closed(), timeout, f"{what}: server closing")


@contextlib.asynccontextmanager
async def streams_client(
    port: int, timeout: float, what: str
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``asyncio.open_connection`` to loopback; closed after."""
    reader, writer = await within(
        asyncio.open_connection(LOOPBACK, port), timeout, f"{what}: connecting"
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await within(writer.wait_closed(), timeout, f"{what}: client closing")


async def bulk_streams(total: int, timeout: float) -> float:
    """The same with ``write`` + ``drain`` and a handler's ``read(65536)``."""
    what = "bulk, streams"
    chunk = bytes(CHUNK)
    arrived = asyncio.Event()
    tally = Tally(total, arrived.set)

    async def read(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        receive, add = reader.read, tally.add
        while data := await receive(CHUNK):
            add(len(data))

    async def pump(writer: asyncio.StreamWriter) -> float:
        write, drain = writer.write, writer.drain
        start = perf_counter()
        for _ in range(total // CHUNK):
            write(chunk)
            await drain()
        await arrived.wait()
        return perf_counter() - start

    async with (
        streams_server(read, timeout, what) as port,
        streams_client(port, timeout, what) as (_, writer),
    ):
        elapsed = await within(pump(writer), timeout, f"{what}: sending {total} bytes")
    check(what, tally.got, total)
    return elapsed


async def ping_streams(rounds: int, timeout: float) -> float:
    """The same with an echo handler and a ``write`` + ``drain`` + ``read`` loop."""
    what = "ping-pong, streams"
    request = bytes(range(PING_SIZE))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        receive, write, drain = reader.read, writer.write, writer.drain
        while data := await receive(PING_RECV):
            write(data)
            await drain()

    async def volley(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        receive, write, drain = reader.read, writer.write, writer.drain
        start = perf_counter()
        for _ in range(rounds):
            write(request)
            await drain()
            got = 0
            while got < PING_SIZE:
                data = await receive(PING_RECV)
                if not data:
                    raise RuntimeError(f"{what}: the echo handler closed early")
                got += len(data)
        return perf_counter() - start

    async with (
        streams_server(echo, timeout, what) as port,
        streams_client(port, timeout, what) as (reader, writer),
    ):
        return await within(volley(reader, writer), timeout, f"{what}: {rounds} round trips")
