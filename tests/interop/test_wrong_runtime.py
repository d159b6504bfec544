"""An async binding's object used under the other runtime says which binding to use.

(Before, a trio object under ``asyncio.run`` failed deep inside trio with an
``AttributeError`` about a ``RunContext``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import trio
from jfsocket.bindings import asyncio as asyncio_binding
from jfsocket.bindings import trio as trio_binding

_MAKERS: dict[str, Callable[[Any], object]] = {
    "TcpServer": lambda b: b.TcpServer("127.0.0.1", 0),
    "TcpClient": lambda b: b.TcpClient(),
    "CastReceiver": lambda b: b.CastReceiver(("127.0.0.1", 0)),
    "CastSender": lambda b: b.CastSender(ttl=0, interface="127.0.0.1"),
}


@pytest.mark.parametrize("cls", sorted(_MAKERS))
def test_trio_object_under_asyncio(cls: str) -> None:
    """``async with`` a trio object inside ``asyncio.run``: RuntimeError naming both bindings."""
    obj: Any = _MAKERS[cls](trio_binding)

    async def main() -> None:
        async with obj:
            pass  # pragma: no cover - never entered

    with pytest.raises(RuntimeError, match=r"needs trio.*jfsocket\.bindings\.asyncio"):
        asyncio.run(main())


@pytest.mark.parametrize("cls", sorted(_MAKERS))
def test_asyncio_object_under_trio(cls: str) -> None:
    """``async with`` an asyncio object inside ``trio.run``: RuntimeError naming both."""
    obj: Any = _MAKERS[cls](asyncio_binding)

    async def main() -> None:
        async with obj:
            pass  # pragma: no cover - never entered

    with pytest.raises(RuntimeError, match=r"needs a running asyncio loop.*bindings\.trio"):
        trio.run(main)


def test_asyncio_server_start_under_trio_changes_nothing() -> None:
    """``await server.start()`` outside asyncio fails before the server is marked starting."""
    server = asyncio_binding.TcpServer("127.0.0.1", 0)

    async def main() -> None:
        await server.start()

    with pytest.raises(RuntimeError, match="asyncio"):
        trio.run(main)
    assert not server.isAlive
    assert "stopped" in repr(server)


def test_trio_connect_under_asyncio() -> None:
    """``await client.connect(...)`` of a trio client under asyncio: the same clear error."""
    client = trio_binding.TcpClient()

    async def main() -> None:
        await client.connect("127.0.0.1", 9)

    with pytest.raises(RuntimeError, match="needs trio"):
        asyncio.run(main())
    assert not client.isAlive
