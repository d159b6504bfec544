"""Interface-aware multicast (SPEC section 11) on a receiver with two links.

Three network namespaces made here and deleted at the end: a receiver R and
two senders A and B, each joined to R by a veth pair (link A: 10.78.1.0/24 and
fd00:78:1::/64, A holding two addresses of each family; link B: 10.78.2.0/24
and fd00:78:2::/64).  The veth ends are created inside their namespaces, so no
datagram can leave them; senders use TTL 1.  The receiver and the senders run
as scripts of the binding under test (``ip netns exec``), driven by stdin
lines; the scripts of one binding serve all its tests, each test opening a
receiver of its own.  A test that deletes an interface gets a third link of
R's (``spare``), made for it.

"Not delivered" is shown without waiting for time to pass: the datagram that
must not arrive is sent first, then a marker to a group the receiver has
joined on the same link, from the same socket; once the marker is in, the
other would have been too.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest

from .netns import NsScript, ip

BINDINGS = ("threaded", "trio", "asyncio")

#: Link A: R's address, then A's two (the second is the other SSM source).
V4_A = ("10.78.1.1", "10.78.1.2", "10.78.1.3")
V6_A = ("fd00:78:1::1", "fd00:78:1::2", "fd00:78:1::3")
#: Link B: R's address, then B's.
V4_B = ("10.78.2.1", "10.78.2.2")
V6_B = ("fd00:78:2::1", "fd00:78:2::2")


class Net(NamedTuple):
    """The namespaces, the veth ends (R's end of link A is ``ra``, A's ``ar``...)
    and the indexes of R's ends inside R and of the senders' ends in theirs."""

    r: str
    a: str
    b: str
    ra: str
    rb: str
    ar: str
    br: str
    ra_index: int
    rb_index: int
    ar_index: int
    br_index: int


def _must(*args: str) -> None:
    result = ip(*args)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"


def _index(ns: str, dev: str) -> int:
    result = ip("-n", ns, "-j", "link", "show", "dev", dev)
    assert result.returncode == 0, result.stderr
    index: int = json.loads(result.stdout)[0]["ifindex"]
    return index


def _ipv6_ready(ns: str, devs: tuple[str, ...]) -> bool:
    """Each of *devs* has a link-local address and no address is still tentative (DAD)."""
    for dev in devs:
        shown = ip("-n", ns, "-6", "addr", "show", "dev", dev)
        if shown.returncode != 0 or "fe80::" not in shown.stdout or "tentative" in shown.stdout:
            return False
    return True


def _wait_ipv6(namespaces: dict[str, tuple[str, ...]], timeout: float = 10.0) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not all(_ipv6_ready(ns, devs) for ns, devs in namespaces.items()):
        if time.monotonic() >= deadline:
            shown = {ns: ip("-n", ns, "-6", "addr").stdout for ns in namespaces}
            pytest.fail(f"IPv6 addresses not ready in {timeout:g} s: {shown}", pytrace=False)
        pause.wait(0.05)


def make_links() -> Iterator[Net]:
    """R joined to A and to B by a veth pair each; everything deleted afterwards
    (a generator for a module fixture; skips where namespaces cannot be made)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip command")
    pid = os.getpid()
    ns_r, ns_a, ns_b = f"jfm-r-{pid}", f"jfm-a-{pid}", f"jfm-b-{pid}"
    # Interface names: 15 characters at most.
    ra, ar, rb, br = (f"jfm{end}{pid}" for end in ("ra", "ar", "rb", "br"))
    created: list[str] = []
    try:
        for ns in (ns_r, ns_a, ns_b):
            result = ip("netns", "add", ns)
            if result.returncode != 0:
                pytest.skip(f"ip netns add failed: {result.stderr.strip()}")
            created.append(ns)
            # Before any veth arrives: its IPv6 addresses then skip DAD.
            for conf in ("all", "default"):
                ip("netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
            _must("-n", ns, "link", "set", "dev", "lo", "up")
        # Both ends made inside their namespaces: neither is ever in this one.
        _must("-n", ns_r, "link", "add", ra, "type", "veth", "peer", "name", ar, "netns", ns_a)
        _must("-n", ns_r, "link", "add", rb, "type", "veth", "peer", "name", br, "netns", ns_b)
        plan = (
            (ns_r, ra, (V4_A[0],), (V6_A[0],)),
            (ns_a, ar, V4_A[1:], V6_A[1:]),
            (ns_r, rb, (V4_B[0],), (V6_B[0],)),
            (ns_b, br, V4_B[1:], V6_B[1:]),
        )
        for ns, dev, v4, v6 in plan:
            for address in v4:
                _must("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            for address in v6:
                _must("-n", ns, "-6", "addr", "add", f"{address}/64", "dev", dev, "nodad")
            _must("-n", ns, "link", "set", "dev", dev, "multicast", "on")
            _must("-n", ns, "link", "set", "dev", dev, "up")
        _wait_ipv6({ns_r: (ra, rb), ns_a: (ar,), ns_b: (br,)})
        yield Net(
            ns_r,
            ns_a,
            ns_b,
            ra,
            rb,
            ar,
            br,
            _index(ns_r, ra),
            _index(ns_r, rb),
            _index(ns_a, ar),
            _index(ns_b, br),
        )
    finally:
        for ns in created:
            ip("netns", "del", ns)  # takes its veth ends with it


# -- the scripts ------------------------------------------------------------------------

_COMMON = """
import json, os, socket, sys, threading
watchdog = threading.Timer(180.0, os._exit, (3,))  # never outlive a stuck test run
watchdog.daemon = True
watchdog.start()
binding = sys.argv[1]
lock = threading.Lock()
def say(*words):
    with lock:
        sys.stdout.write(" ".join(map(str, words)) + "\\n")
        sys.stdout.flush()
import importlib
mod = importlib.import_module("jfsocket.bindings." + binding)
def spec(text):
    if text == "ALL":
        return mod.ALL
    if text.startswith("#"):
        return int(text[1:])
    return text
"""

RECEIVER = (
    _COMMON
    + """
# open HOST: a new receiver on (HOST, 0), which answers READY port; then
# join|drop GROUP INTERFACE [SOURCE] (OK or ERROR code, then MEMBERS json groups)
# until close (CLOSED once it has stopped).  Every typed Received: a RECV line.
from jfsocket.core import Received
def shown(event):
    where = event.interface
    name, index = (where.name, where.index) if where is not None else ("-", "-")
    say("RECV", event.data, event.remote[0], name, index, event.group)
def command(receiver, words):
    change = receiver.joinGroup if words[0] == "join" else receiver.dropGroup
    source = words[3] if len(words) > 3 else None
    try:
        change(words[1], interface=spec(words[2]), source=source)
    except mod.SocketError as exc:
        say("ERROR", int(exc.errno))
    else:
        say("OK")
    members = [[m.group, m.interface, m.source] for m in receiver.memberships]
    tight = {"separators": (",", ":")}
    say("MEMBERS", json.dumps(members, **tight), json.dumps(receiver.groups, **tight))
def words_of(line):
    words = line.split()
    return None if words in ([], ["quit"]) else words

if binding == "threaded":
    def session(host):
        receiver = mod.CastReceiver((host, 0))
        stream = receiver.events()  # before it starts; ends when it stops
        def printer():
            for event in stream:
                if isinstance(event, Received):
                    shown(event)
        reader = threading.Thread(target=printer)
        reader.start()
        receiver.start()
        say("READY", receiver.host[1])
        try:
            for line in iter(sys.stdin.readline, ""):
                words = words_of(line)
                if words is None:
                    return False
                if words == ["close"]:
                    return True
                command(receiver, words)
            return False
        finally:
            receiver.stop()
            reader.join(10)
            say("CLOSED")
    for line in iter(sys.stdin.readline, ""):
        words = words_of(line)
        if words is None or not session(words[1]):
            break
elif binding == "trio":
    import trio
    async def session(host, readline):
        async with trio.open_nursery() as nursery:
            receiver = mod.CastReceiver((host, 0))
            stream = receiver.events()  # before it starts: every datagram is seen
            async with receiver:
                async def printer():
                    async for event in stream:
                        if isinstance(event, Received):
                            shown(event)
                nursery.start_soon(printer)
                say("READY", receiver.host[1])
                while True:
                    words = words_of(await readline())
                    if words is None or words == ["close"]:
                        break
                    command(receiver, words)
        say("CLOSED")
        return words is not None
    async def main():
        readline = lambda: trio.to_thread.run_sync(sys.stdin.readline)
        while True:
            words = words_of(await readline())
            if words is None or not await session(words[1], readline):
                break
    trio.run(main)
else:
    import asyncio
    async def session(host, readline):
        receiver = mod.CastReceiver((host, 0))
        stream = aiter(receiver)  # async for event in receiver, from before it starts
        async with receiver:
            async def printer():
                async for event in stream:
                    if isinstance(event, Received):
                        shown(event)
            task = asyncio.create_task(printer())
            say("READY", receiver.host[1])
            while True:
                words = words_of(await readline())
                if words is None or words == ["close"]:
                    break
                command(receiver, words)
        await asyncio.wait_for(task, 10)
        say("CLOSED")
        return words is not None
    async def main():
        loop = asyncio.get_running_loop()
        readline = lambda: loop.run_in_executor(None, sys.stdin.readline)
        while True:
            words = words_of(await readline())
            if words is None or not await session(words[1], readline):
                break
    asyncio.run(main())
say("BYE")
"""
)

SENDER = (
    _COMMON
    + """
# send INTERFACE GROUP PORT TEXT: through one CastSender per INTERFACE (ttl=1)
# raw SOURCE INDEX GROUP PORT TEXT: a plain socket bound to SOURCE, out of INDEX (ttl=1)
senders, raws = {}, {}
def sender_for(where):
    if where not in senders:
        evts = {
            "onSended": lambda s, data: say("SENT", data),
            "onSendFail": lambda s, data, err: say("FAIL", data, repr(err)),
        }
        senders[where] = mod.CastSender(evts, ttl=1, interface=spec(where))
    return senders[where]
def raw_send(source, index, group, port, text):
    if source not in raws:
        if ":" in source:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        sock.bind((source, 0))
        raws[source] = sock
    raws[source].sendto(text.encode(), (group, port))
    say("SENT", text)
def words_of(line):
    words = line.split()
    return None if words in ([], ["quit"]) else words

if binding == "threaded":
    for line in iter(sys.stdin.readline, ""):
        if line == "\\n":
            say("READY")
            continue
        words = words_of(line)
        if words is None:
            break
        if words[0] == "raw":
            raw_send(words[1], int(words[2]), words[3], int(words[4]), words[5])
        else:
            sender_for(words[1]).send((words[2], int(words[3])), words[4])
    for sender in senders.values():
        sender.close()
else:
    async def run(readline):
        while True:
            line = await readline()
            if line == "\\n":
                say("READY")
                continue
            words = words_of(line)
            if words is None:
                break
            if words[0] == "raw":
                raw_send(words[1], int(words[2]), words[3], int(words[4]), words[5])
            else:
                await sender_for(words[1]).send((words[2], int(words[3])), words[4])
        for sender in senders.values():
            await sender.close()
    if binding == "trio":
        import trio
        trio.run(run, lambda: trio.to_thread.run_sync(sys.stdin.readline))
    else:
        import asyncio
        async def main():
            loop = asyncio.get_running_loop()
            await run(lambda: loop.run_in_executor(None, sys.stdin.readline))
        asyncio.run(main())
for sock in raws.values():
    sock.close()
say("BYE")
"""
)


# -- driving them -------------------------------------------------------------------------

Line = tuple[str, str, str, int, str]  # data, remote ip, interface name, index, group


class Receiver:
    """The receiver script in R: membership commands and the datagrams it got."""

    def __init__(self, script: NsScript, host: str) -> None:
        self.script = script
        self.start = len(script.seen)  # this receiver's lines come after
        script.tell(f"open {host}")
        lines = script.expect(lambda seen: any(x.startswith("READY ") for x in seen[self.start :]))
        self.port = int(next(x for x in lines[self.start :] if x.startswith("READY ")).split()[1])

    def close(self) -> None:
        """Stop this receiver (the script stays, for the next one)."""
        self.script.tell("close")
        self.script.expect(lambda seen: "CLOSED" in seen[self.start :])

    def change(self, *words: object) -> tuple[str, list[list[str | None]], list[str]]:
        """``join``/``drop`` GROUP INTERFACE [SOURCE]: (``OK``/``ERROR n``, memberships, groups)."""
        start = len(self.script.seen)
        self.script.tell(" ".join(map(str, words)))
        lines = self.script.expect(
            lambda seen: any(x.startswith("MEMBERS ") for x in seen[start:])
        )[start:]
        answer = next(x for x in lines if x == "OK" or x.startswith("ERROR "))
        _, members, groups = next(x for x in lines if x.startswith("MEMBERS ")).split(" ", 2)
        return answer, json.loads(members), json.loads(groups)

    def join(self, *words: object) -> list[list[str | None]]:
        """``join``, which must succeed: the memberships after it."""
        answer, members, _ = self.change("join", *words)
        assert answer == "OK", (words, answer)
        return members

    def got(self) -> dict[str, Line]:
        """Every datagram received so far, by its text."""
        found: dict[str, Line] = {}
        for line in self.script.seen[self.start :]:
            words = line.split()
            if line.startswith("RECV "):
                assert words[1] not in found, f"{words[1]} arrived twice: {self.script.seen}"
                found[words[1]] = (words[1], words[2], words[3], int(words[4]), words[5])
        return found

    def wait(self, *texts: str) -> dict[str, Line]:
        """Wait until each of *texts* has arrived; everything received by then."""

        def done(seen: list[str]) -> bool:
            return all(t in self.got() for t in texts)

        self.script.expect(done)
        return self.got()


class Sender:
    """A sender script in A or B (kept for every test of one binding)."""

    def __init__(self, script: NsScript) -> None:
        self.script = script
        script.tell("")  # an empty line answers READY once the script reads commands
        script.expect_line("READY")

    def _sent(self, command: str, text: str) -> None:
        start = len(self.script.seen)
        self.script.tell(command)
        lines = self.script.expect(
            lambda seen: any(
                x == f"SENT {text}" or x.startswith(f"FAIL {text} ") for x in seen[start:]
            )
        )
        assert f"SENT {text}" in lines[start:], lines[start:]

    def send(self, interface: object, group: str, port: int, text: str) -> None:
        """Through the CastSender for *interface* (one socket per interface spec)."""
        self._sent(f"send {interface} {group} {port} {text}", text)

    def raw(self, source: str, index: int, group: str, port: int, text: str) -> None:
        """From a plain socket bound to *source* (one per source), out of *index*."""
        self._sent(f"raw {source} {index} {group} {port} {text}", text)


class Rig(NamedTuple):
    """One test's scripts: the receiver in R, a sender in A and one in B."""

    net: Net
    receiver: Receiver
    a: Sender
    b: Sender


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    """R, A and B, linked; deleted afterwards."""
    yield from make_links()


class Scripts(NamedTuple):
    """One binding's scripts, kept for all its tests: receivers in R, senders in A and B."""

    receivers: NsScript
    a: Sender
    b: Sender


@pytest.fixture(scope="module", params=BINDINGS)
def scripts(net: Net, request: pytest.FixtureRequest) -> Iterator[Scripts]:
    """The scripts of one binding, started together; closed after its last test."""
    binding: str = request.param
    started = [
        NsScript(net.r, RECEIVER, binding),
        NsScript(net.a, SENDER, binding),
        NsScript(net.b, SENDER, binding),
    ]
    try:
        yield Scripts(started[0], Sender(started[1]), Sender(started[2]))
    finally:
        for script in reversed(started):
            script.close()


@pytest.fixture
def rig(net: Net, scripts: Scripts) -> Iterator[Callable[[int], Rig]]:
    """``rig(4)`` or ``rig(6)``: a new receiver on 0.0.0.0 or :: in R, and the
    senders in A and B; the receiver is stopped at the end."""
    opened: list[Receiver] = []

    def make(version: int) -> Rig:
        receiver = Receiver(scripts.receivers, "::" if version == 6 else "0.0.0.0")
        opened.append(receiver)
        return Rig(net, receiver, scripts.a, scripts.b)

    yield make
    for receiver in opened:
        receiver.close()


_SPARES = itertools.count(1)


@pytest.fixture
def spare(net: Net) -> Iterator[str]:
    """A third link of R's (a veth pair with both ends in R, 10.78.3.1/24 and
    fd00:78:3::1/64 on this end), for a test to delete; gone at the end."""
    name, peer = (f"jfm{end}{next(_SPARES) % 100:02d}{os.getpid()}" for end in ("x", "y"))
    _must("-n", net.r, "link", "add", name, "type", "veth", "peer", "name", peer)
    try:
        _must("-n", net.r, "addr", "add", "10.78.3.1/24", "dev", name)
        _must("-n", net.r, "-6", "addr", "add", "fd00:78:3::1/64", "dev", name, "nodad")
        for dev in (name, peer):
            _must("-n", net.r, "link", "set", "dev", dev, "multicast", "on", "up")
        yield name
    finally:
        if ip("-n", net.r, "link", "show", "dev", name).returncode == 0:
            ip("-n", net.r, "link", "del", name)


def groups(version: int, count: int, *, ssm: bool = False) -> list[str]:
    """*count* distinct random groups: 239.255/16 or ff15::/16 (site-local);
    source-specific: 232/8 or ff35::/32."""
    picked = random.sample(range(257, 65279), count)
    if version == 4:
        return [f"{232 if ssm else 239}.255.{n >> 8}.{n & 255}" for n in picked]
    return [f"ff{'3' if ssm else '1'}5::8000:{n:x}" for n in picked]


def _absent(got: dict[str, Line], *texts: str) -> None:
    assert not any(t in got for t in texts), got


# -- the scenarios --------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("by", ["name", "index", "address"])
def test_join_on_one_interface(rig: Callable[[int], Rig], version: int, by: str) -> None:
    """A group joined on link A's interface only (by name, index or R's address on
    it): datagrams over B are not delivered, those over A are, with interface A
    and the group."""
    net, receiver, a, b = rig(version)
    group, marker = groups(version, 2)
    address = V4_A[0] if version == 4 else V6_A[0]
    where = {"name": net.ra, "index": f"#{net.ra_index}", "address": address}[by]
    assert receiver.join(group, where) == [[group, net.ra, None]]
    assert receiver.join(marker, net.rb) == [[group, net.ra, None], [marker, net.rb, None]]
    # B's sender by index, A's by name: the sender's interface in both forms.
    b.send(f"#{net.br_index}", group, receiver.port, "over-b")
    b.send(f"#{net.br_index}", marker, receiver.port, "marker-b")
    a.send(net.ar, group, receiver.port, "over-a")
    got = receiver.wait("marker-b", "over-a")
    _absent(got, "over-b")
    # IPv6 picks one of A's two addresses as the source (the kernel's choice).
    sources_a, source_b = (V4_A[1:2], V4_B[1]) if version == 4 else (V6_A[1:], V6_B[1])
    assert got["over-a"][1] in sources_a, got
    assert got["over-a"][2:] == (net.ra, net.ra_index, group)
    assert got["marker-b"] == ("marker-b", source_b, net.rb, net.rb_index, marker)


@pytest.mark.parametrize("version", [4, 6])
def test_all_joins_both_links(rig: Callable[[int], Rig], version: int) -> None:
    """interface=ALL joins the group on both links (lo has no MULTICAST flag): A's
    and B's datagrams both arrive, each with its own interface."""
    net, receiver, a, b = rig(version)
    (group,) = groups(version, 1)
    assert receiver.join(group, "ALL") == [[group, net.ra, None], [group, net.rb, None]]
    for again in ("ALL", net.ra, f"#{net.rb_index}"):  # the same keys: 1002, nothing changes
        answer, members, _ = receiver.change("join", group, again)
        assert (answer, members) == ("ERROR 1002", [[group, net.ra, None], [group, net.rb, None]])
    sender_a = V4_A[1] if version == 4 else V6_A[1]  # A's sender by address
    a.send(sender_a, group, receiver.port, "from-a")
    b.send(net.br, group, receiver.port, "from-b")
    got = receiver.wait("from-a", "from-b")
    assert got["from-a"][2:] == (net.ra, net.ra_index, group)
    assert got["from-b"][2:] == (net.rb, net.rb_index, group)


def test_ssm_ipv4_takes_only_the_source_joined(rig: Callable[[int], Rig]) -> None:
    """(group, interface A, source=10.78.1.2) in 232/8: that sender's datagrams
    arrive, those of 10.78.1.3 on the same link do not (CastSender by address)."""
    net, receiver, a, _ = rig(4)
    (group,) = groups(4, 1, ssm=True)
    (marker,) = groups(4, 1)
    first, second = V4_A[1], V4_A[2]
    assert receiver.join(group, net.ra, first) == [[group, net.ra, first]]
    receiver.join(marker, net.ra)
    a.send(second, group, receiver.port, "from-second")
    a.send(second, marker, receiver.port, "marker-second")
    a.send(first, group, receiver.port, "from-first")
    got = receiver.wait("marker-second", "from-first")
    _absent(got, "from-second")
    assert got["marker-second"][1] == second, got
    assert got["from-first"] == ("from-first", first, net.ra, net.ra_index, group)


def test_ssm_ipv6_takes_only_the_source_joined(rig: Callable[[int], Rig]) -> None:
    """(ff35::..., interface A, source=fd00:78:1::2): that sender's datagrams arrive,
    those of fd00:78:1::3 on the same link do not (plain sockets bound to each)."""
    net, receiver, a, _ = rig(6)
    (group,) = groups(6, 1, ssm=True)
    (marker,) = groups(6, 1)
    first, second = V6_A[1], V6_A[2]
    answer, members, _ = receiver.change("join", group, f"#{net.ra_index}", first)
    if answer != "OK":
        pytest.skip(f"this kernel refused an IPv6 source-specific join: {answer}")
    assert members == [[group, net.ra, first]]
    receiver.join(marker, net.ra)
    a.raw(second, net.ar_index, group, receiver.port, "from-second")
    a.raw(second, net.ar_index, marker, receiver.port, "marker-second")
    a.raw(first, net.ar_index, group, receiver.port, "from-first")
    got = receiver.wait("marker-second", "from-first")
    _absent(got, "from-second")
    assert got["marker-second"][1] == second, got
    assert got["from-first"] == ("from-first", first, net.ra, net.ra_index, group)


@pytest.mark.parametrize("version", [4, 6])
def test_drop_on_one_interface_keeps_the_other(rig: Callable[[int], Rig], version: int) -> None:
    """Joined on ALL, dropped on link A (by index): A's datagrams stop, B's still
    arrive; the membership on B stays."""
    net, receiver, a, b = rig(version)
    group, marker = groups(version, 2)
    receiver.join(group, "ALL")
    receiver.join(marker, net.ra)
    a.send(net.ar, group, receiver.port, "before")
    receiver.wait("before")
    answer, members, joined = receiver.change("drop", group, f"#{net.ra_index}")
    assert answer == "OK"
    assert members == [[group, net.rb, None], [marker, net.ra, None]]
    assert joined == [group, marker]
    assert receiver.change("drop", group, net.ra)[0] == "ERROR 1003"
    a.send(net.ar, group, receiver.port, "after")
    a.send(net.ar, marker, receiver.port, "marker-a")
    b.send(net.br, group, receiver.port, "over-b")
    got = receiver.wait("marker-a", "over-b")
    _absent(got, "after")
    assert got["over-b"][2:] == (net.rb, net.rb_index, group)
    assert got["marker-a"][2:] == (net.ra, net.ra_index, marker)


#: Found with test_drop_after_its_interface_is_gone.


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("kind", ["any-source", "source-specific"])
def test_drop_after_its_interface_is_gone(
    rig: Callable[[int], Rig], spare: str, version: int, kind: str
) -> None:
    """A membership on an interface deleted since can still be dropped by its
    name (the OS has left the group with the interface)."""
    net, receiver, _, _ = rig(version)
    source = ("10.78.3.2" if version == 4 else "fd00:78:3::2") if kind != "any-source" else None
    (group,) = groups(version, 1, ssm=source is not None)
    extra = [source] if source is not None else []
    assert receiver.join(group, spare, *extra) == [[group, spare, source]]
    _must("-n", net.r, "link", "del", spare)
    assert receiver.change("drop", group, spare, *extra)[:2] == ("OK", [])
