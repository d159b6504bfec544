"""``TcpServer('::', port, dual_stack=...)`` behaves the same on every binding
(SPEC section 11): with dual stack an IPv4 client connects, and its ``remote``
is its plain IPv4 address; without, IPv4 is refused.

A server on ``'::'`` listens on every address, so it runs inside a network
namespace the test makes (tests/netns.py): nothing outside can reach it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .netns import Hosts, NsScript, make_namespaces

SCRIPT = """
import socket, sys, threading
binding, dual = sys.argv[1], sys.argv[2] == "dual"
seen = []
connected = threading.Event()
def on_connected(client, host, remote):
    seen.append(remote)
    connected.set()
evts = {"onConnected": on_connected}
def probe(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            if not connected.wait(5):
                return "NO-CONNECTED"
            return "REMOTE %s %s" % (seen[0][0], seen[0][1] == raw.getsockname()[1])
    except ConnectionRefusedError:
        return "REFUSED"
def report(port):
    print(probe(port), flush=True)
if binding == "threaded":
    from jfsocket.bindings.threaded import TcpServer
    with TcpServer("::", 0, evts, dual_stack=dual) as server:
        server.start()
        report(server.host[1])
else:
    import importlib
    module = importlib.import_module("jfsocket.bindings." + binding)
    async def main(in_thread):
        async with module.TcpServer("::", 0, evts, dual_stack=dual) as server:
            await in_thread(report, server.host[1])
    if binding == "trio":
        import trio
        trio.run(main, trio.to_thread.run_sync)
    else:
        import asyncio
        asyncio.run(main(asyncio.to_thread))
"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    """A namespace to listen in (with its pair, unused here); deleted afterwards."""
    yield from make_namespaces()


@pytest.mark.parametrize("binding", ["threaded", "trio", "asyncio"])
def test_dual_stack_takes_ipv4_clients_with_their_own_address(hosts: Hosts, binding: str) -> None:
    script = NsScript(hosts.a, SCRIPT, binding, "dual")
    try:
        assert script.expect_line("") == "REMOTE 127.0.0.1 True", script.seen
    finally:
        script.close()


@pytest.mark.parametrize("binding", ["threaded", "trio", "asyncio"])
def test_without_dual_stack_ipv4_is_refused(hosts: Hosts, binding: str) -> None:
    script = NsScript(hosts.a, SCRIPT, binding, "v6only")
    try:
        assert script.expect_line("") == "REFUSED", script.seen
    finally:
        script.close()
