"""Multicast across two hosts, simulated by two network namespaces joined by a veth pair.

Needs root and iproute2.  The namespaces (jfs-a-<pid>, jfs-b-<pid>) exist only
for this module; each veth end is moved into its namespace before it gets an
address (10.77.0.1/24 in A, 10.77.0.2/24 in B), so no traffic can leave them.
The receivers run in B and the senders in A, each in its own Python process
started with ``ip netns exec``; the test talks to them through stdin/stdout
lines, never by waiting a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

import pytest

ADDRESS_A = "10.77.0.1"
ADDRESS_B = "10.77.0.2"

RECEIVERS = """
import sys, threading
from jfsocket.bindings.threaded import CastReceiver
group, own, iface = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
def say(line):
    with lock:
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()
def printer(name):
    return lambda receiver, data: say(f"{name} {data}")
r1 = CastReceiver(("0.0.0.0", 0), {"onReceived": printer("R1")}, interface=iface)
r1.joinGroup(group, own)
r1.start()
r2 = CastReceiver(("0.0.0.0", r1.host[1]), {"onReceived": printer("R2")}, interface=iface)
r2.joinGroup(group)
r2.start()
say(f"READY {r1.host[1]}")
for line in sys.stdin:
    if line.strip() == "drop":
        r1.dropGroup(group)
        say("DROPPED")
    elif line.strip() == "quit":
        break
r1.stop()
r2.stop()
say("BYE")
"""

SENDERS = """
import sys, threading
from jfsocket.bindings.threaded import CastReceiver, CastSender
group, port, iface = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def say(*words):
    with lock:
        sys.stdout.write(" ".join(map(str, words)) + "\\n")
        sys.stdout.flush()
# A member of the group on the sending host: Linux applies "TTL 0 stays on this
# host" only to multicast routes whose output interface has a local member.
local = CastReceiver(
    ("0.0.0.0", port), {"onReceived": lambda r, d: say("A", d)}, interface=iface
)
local.joinGroup(group)
local.start()
say("READY")
for line in sys.stdin:
    words = line.split()
    if words == ["quit"]:
        break
    # A new sender (so a new source port) for every datagram.
    ttl, target, message = int(words[0]), words[1], words[2]
    with CastSender({"onSended": lambda s, d: say("SENT", d)}, ttl=ttl, interface=iface) as sender:
        sender.send((target, port), message)
local.stop()
say("BYE")
"""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(("ip", *args), capture_output=True, text=True, timeout=20, check=False)


def _must(*args: str) -> None:
    result = _ip(*args)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"


@pytest.fixture(scope="module")
def namespaces() -> Iterator[tuple[str, str]]:
    """Two namespaces A and B joined by a veth pair; deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip command")
    pid = os.getpid()
    ns_a, ns_b = f"jfs-a-{pid}", f"jfs-b-{pid}"
    veth_a, veth_b = f"jfsva{pid}", f"jfsvb{pid}"  # interface names: 15 characters at most
    created: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            result = _ip("netns", "add", ns)
            if result.returncode != 0:
                pytest.skip(f"ip netns add failed: {result.stderr.strip()}")
            created.append(ns)
        _must("link", "add", "name", veth_a, "type", "veth", "peer", "name", veth_b)
        # Into the namespaces first, addresses only there.
        _must("link", "set", veth_a, "netns", ns_a)
        _must("link", "set", veth_b, "netns", ns_b)
        for ns, veth, address in ((ns_a, veth_a, ADDRESS_A), (ns_b, veth_b, ADDRESS_B)):
            _must("-n", ns, "addr", "add", f"{address}/24", "dev", veth)
            _must("-n", ns, "link", "set", "dev", veth, "multicast", "on")
            _must("-n", ns, "link", "set", "dev", veth, "up")
            _must("-n", ns, "link", "set", "dev", "lo", "up")
        yield ns_a, ns_b
    finally:
        for ns in created:
            _ip("netns", "del", ns)  # takes its veth end with it
        if _ip("link", "show", veth_a).returncode == 0:  # never moved: still here
            _ip("link", "del", veth_a)


class NsScript:
    """A Python script running in a namespace, driven by stdin lines, read by stdout lines."""

    def __init__(self, namespace: str, code: str, *args: str) -> None:
        self._proc = subprocess.Popen(
            ("ip", "netns", "exec", namespace, sys.executable, "-c", code, *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stdout,), name="test netns reader"
        )
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def tell(self, command: str) -> None:
        """Send one command line."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def expect(self, done: Callable[[list[str]], bool], timeout: float = 10.0) -> list[str]:
        """Read lines until ``done(lines so far)``; fail at EOF or *timeout* per line."""
        while not done(self.seen):
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no output for {timeout:g} s; saw {self.seen}", pytrace=False)
            if line is None:
                pytest.fail(f"the script ended early; saw {self.seen}: {self._stderr()}")
            self.seen.append(line)
        return self.seen

    def expect_line(self, prefix: str) -> str:
        """Read until a line starting with *prefix*; return it."""
        self.expect(lambda lines: any(x.startswith(prefix) for x in lines))
        return next(x for x in self.seen if x.startswith(prefix))

    def _stderr(self) -> str:
        if self._proc.poll() is None:
            return ""
        assert self._proc.stderr is not None
        return self._proc.stderr.read()

    def close(self) -> None:
        """Ask the script to quit; kill it if it does not; release pipes and the thread."""
        try:
            stdin = self._proc.stdin
            if self._proc.poll() is None and stdin is not None and not stdin.closed:
                with contextlib.suppress(OSError):
                    self.tell("quit")
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        finally:
            self._reader.join(10)
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()


class Scripts(NamedTuple):
    """The two scripts of a test and the groups they use."""

    receivers: NsScript  # in B: R1 joined to group and own, R2 joined to group
    senders: NsScript  # in A: senders, and a local member of group
    group: str
    own: str


@pytest.fixture
def scripts(namespaces: tuple[str, str]) -> Iterator[Scripts]:
    """Receivers in B and senders in A, both READY."""
    ns_a, ns_b = namespaces
    picked = random.sample(range(1, 65535), 2)
    group, own = (f"239.255.{n >> 8}.{n & 255}" for n in picked)
    receivers = NsScript(ns_b, RECEIVERS, group, own, ADDRESS_B)
    try:
        port = int(receivers.expect_line("READY").split()[1])
        senders = NsScript(ns_a, SENDERS, group, str(port), ADDRESS_A)
        try:
            senders.expect_line("READY")
            yield Scripts(receivers, senders, group, own)
        finally:
            senders.close()
    finally:
        receivers.close()


def _has(*wanted: str) -> Callable[[list[str]], bool]:
    return lambda lines: all(w in lines for w in wanted)


def test_both_receivers_get_a_datagram_from_another_host(
    scripts: Scripts,
) -> None:
    """A sender in A (ttl=1, interface 10.77.0.1) reaches both receivers in B on one port."""
    receivers, senders, group, _ = scripts
    senders.tell(f"1 {group} first")
    senders.expect(_has("SENT first"))
    receivers.expect(_has("R1 first", "R2 first"))
    senders.tell(f"1 {group} second")
    receivers.expect(_has("R1 second", "R2 second"))


def test_ttl_zero_stays_on_the_sending_host(
    scripts: Scripts,
) -> None:
    """ttl=0 reaches the member on the sending host but never B; ttl=1 after it reaches B.

    (Linux drops TTL-0 multicast at the output only when the outgoing interface
    has a local member of the group, hence the receiver in A.)
    """
    receivers, senders, group, _ = scripts
    senders.tell(f"0 {group} local")
    senders.expect(_has("SENT local", "A local"))
    senders.tell(f"1 {group} remote")
    senders.expect(_has("SENT remote", "A remote"))
    lines = receivers.expect(_has("R1 remote", "R2 remote"))
    assert not any(line.endswith(" local") for line in lines), lines


def test_dropped_receiver_stops_while_other_continues(scripts: Scripts) -> None:
    """After R1 drops the group it gets no more of it; R2, still joined, does.

    R1 keeps its own group, which R2 never joined: each must get exactly its
    groups' datagrams, sent from 8 source ports (see the loopback twin of this test).
    """
    receivers, senders, group, own = scripts
    senders.tell(f"1 {group} before")
    receivers.expect(_has("R1 before", "R2 before"))
    receivers.tell("drop")
    receivers.expect(_has("DROPPED"))
    for n in range(8):
        senders.tell(f"1 {group} after-{n}")
        senders.tell(f"1 {own} own-{n}")
    senders.expect(_has(*(f"SENT own-{n}" for n in range(8))))
    lines = receivers.expect(lambda seen: len(seen[seen.index("DROPPED") + 1 :]) >= 16)
    after = lines[lines.index("DROPPED") + 1 :]
    assert sorted(x for x in after if x.startswith("R1 ")) == [f"R1 own-{n}" for n in range(8)]
    assert sorted(x for x in after if x.startswith("R2 ")) == [f"R2 after-{n}" for n in range(8)]
