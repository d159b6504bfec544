"""Two network namespaces joined by a veth pair, for tests that need two hosts.

Needs root and iproute2.  The namespaces (jfs-a-<pid>, jfs-b-<pid>) exist only
for the module that uses :func:`namespaces`; each veth end is moved into its
namespace before it gets an address (10.77.0.1/24 in A, 10.77.0.2/24 in B), so
no traffic can leave them.  Scripts run in a namespace as their own Python
process (``ip netns exec``), driven through stdin/stdout lines, never by
waiting a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

import pytest

__all__ = ["ADDRESS_A", "ADDRESS_B", "Hosts", "NsScript", "ip", "make_namespaces"]

ADDRESS_A = "10.77.0.1"
ADDRESS_B = "10.77.0.2"


class Hosts(NamedTuple):
    """The two namespaces and the veth end in each."""

    a: str
    b: str
    veth_a: str
    veth_b: str


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(("ip", *args), capture_output=True, text=True, timeout=20, check=False)


def _must(*args: str) -> None:
    result = ip(*args)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"


def make_namespaces() -> Iterator[Hosts]:
    """Two namespaces A and B joined by a veth pair; deleted afterwards (a
    generator for a module's fixture; skips where they cannot be made)."""
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
            result = ip("netns", "add", ns)
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
        yield Hosts(ns_a, ns_b, veth_a, veth_b)
    finally:
        for ns in created:
            ip("netns", "del", ns)  # takes its veth end with it
        if ip("link", "show", veth_a).returncode == 0:  # never moved: still here
            ip("link", "del", veth_a)


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
