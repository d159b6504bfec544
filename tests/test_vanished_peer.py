"""A peer that vanishes without a FIN (SPEC section 9), on every binding.

A plain server in namespace B accepts a jfsocket client from namespace A
(tests/netns.py); then B's end of the veth goes down, so nothing more arrives
and nothing is ever sent back: the cable pulled.  With ``idle_timeout`` the
client's own deadline reports it; with ``keepalive`` the kernel's probes do.
Either way DISCONNECT comes in bounded time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .netns import ADDRESS_B, Hosts, NsScript, ip, make_namespaces

SERVER = """
import socket, sys
listener = socket.create_server((sys.argv[1], 0))
print("READY", listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
print("ACCEPTED", flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
conn.close()
listener.close()
"""

CLIENT = """
import sys, time
from jfsocket.core import Keepalive
binding, mode, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "idle":
    options = {"idle_timeout": 1.0}
else:
    options = {"keepalive": Keepalive(idle=1, interval=1, count=2)}
def say(word):
    print(word, round(time.monotonic(), 3), flush=True)
evts = {"onConnected": lambda *a: say("CONNECTED"), "onDisconnect": lambda *a: say("DISCONNECT")}
if binding == "threaded":
    from jfsocket.bindings.threaded import TcpClient
    with TcpClient(None, evts, **options) as client:
        client.connect(host, port, timeout=5)
        for line in sys.stdin:
            if line.strip() == "quit":
                break
else:
    import importlib
    module = importlib.import_module("jfsocket.bindings." + binding)
    async def main(lines):
        async with module.TcpClient(None, evts, **options) as client:
            await client.connect(host, port, timeout=5)
            await lines()
    if binding == "trio":
        import trio
        trio.run(main, lambda: trio.to_thread.run_sync(sys.stdin.readline))
    else:
        import asyncio
        async def lines():
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        asyncio.run(main(lines))
say("BYE")
"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    """Two namespaces A and B joined by a veth pair; deleted afterwards."""
    yield from make_namespaces()


@pytest.mark.parametrize("mode", ["idle", "keepalive"])
@pytest.mark.parametrize("binding", ["threaded", "trio", "asyncio"])
def test_a_vanished_peer_is_reported(hosts: Hosts, binding: str, mode: str) -> None:
    server = NsScript(hosts.b, SERVER, ADDRESS_B)
    try:
        port = server.expect_line("READY").split()[1]
        client = NsScript(hosts.a, CLIENT, binding, mode, ADDRESS_B, port)
        try:
            client.expect_line("CONNECTED")
            server.expect_line("ACCEPTED")
            ip("-n", hosts.b, "link", "set", "dev", hosts.veth_b, "down")
            try:
                gone = time.monotonic()
                client.expect_line("DISCONNECT")  # no FIN will ever come
                waited = time.monotonic() - gone
            finally:
                ip("-n", hosts.b, "link", "set", "dev", hosts.veth_b, "up")
            # idle: 1 s; keepalive: 1 s idle + 2 probes 1 s apart, then the kernel gives up.
            assert waited < (4.0 if mode == "idle" else 8.0), waited
        finally:
            client.close()
    finally:
        server.close()
