"""Instructions the threaded binding's TLS side runs, beside Python's ssl sockets.

CPU time on a shared machine swings with where the scheduler puts the two
sides; the instructions a process runs, counted by valgrind's callgrind,
repeat to a fraction of a percent.  The side measured runs under valgrind;
its peer, Python's ssl sockets in a child process of its own, drives it.
Each figure is ``(I(2K) - I(K)) / K``, so start-up, imports and the
handshake cancel out.  Two sides, each jfsocket's and the raw code's:

* ``ping-pong``: a TLS echo server; the peer makes K round trips of 64 B.
* ``bulk``: a TLS receiver; the peer writes K blocks of 64 KiB.

Without valgrind (or off Linux) there are no rows, and a note says why.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from . import tlsfiles
from .common import Result
from .counters import echo_sync
from .plumbing import LOOPBACK

__all__ = ["main", "measure"]

_ROOT: Final = Path(__file__).resolve().parents[2]
_MODULE: Final = "tests.bench.bench_instructions"
_PING: Final = b"x" * 64
_BLOCK: Final = b"x" * (64 << 10)
_WARM: Final = 200  # round trips (or blocks) before either count, for caches and tickets
_LIMIT: Final = 600.0  # seconds any one run may take, valgrind included
#: Scenario: (K, K when quick, unit).
_SCENARIOS: Final = {
    "ping-pong": (1000, 200, "instructions/round trip"),
    "bulk": (200, 40, "instructions/64 KiB"),
}


def main(quick: bool = False) -> list[Result]:
    """One row per scenario: jfsocket's instructions per event beside the raw code's."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or not sys.platform.startswith("linux"):
        print("bench instructions: no valgrind here, no rows", file=sys.stderr)
        return []
    results = []
    with tempfile.TemporaryDirectory(prefix="jfsocket-bench-") as folder:
        tlsfiles.write(folder)
        for scenario, (count, small, unit) in _SCENARIOS.items():
            k = small if quick else count
            print(f"bench instructions: TLS {scenario}", file=sys.stderr, flush=True)
            ours, raw = (
                measure(valgrind, folder, scenario, kind, k) for kind in ("jfsocket", "raw")
            )
            results.append(
                Result(
                    scenario=f"TLS {scenario}, threaded: instructions",
                    jfsocket=ours,
                    baseline=raw,
                    unit=unit,
                    baseline_name="Python's ssl sockets, threads",
                    higher_is_better=False,
                    note=f"callgrind, the measured side only; (I(2K) - I(K)) / K, K={k}",
                )
            )
    return results


def measure(valgrind: str, folder: str, scenario: str, kind: str, k: int) -> float:
    """Instructions per event of *kind*'s side of *scenario* (see the module docstring)."""
    once, twice = (_instructions(valgrind, folder, scenario, kind, n) for n in (k, 2 * k))
    return (twice - once) / k


def _instructions(valgrind: str, folder: str, scenario: str, kind: str, count: int) -> int:
    argv = [sys.executable, "-m", _MODULE, "--side", scenario, kind, folder, str(count)]
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=_LIMIT,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"{' '.join(argv)} under valgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


# -- the measured side, and its peer ---------------------------------------------------


def _side(scenario: str, kind: str, folder: str, count: int) -> None:
    """Serve one peer (spawned here) until it leaves: the process valgrind counts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(Path(folder) / "cert.pem", Path(folder) / "key.pem")
    gone = threading.Event()
    if kind == "jfsocket":
        from jfsocket.bindings.threaded import EventTypes, TcpServer

        evts: dict[EventTypes | str, Callable[..., object] | None] = {
            EventTypes.DISCONNECT: lambda *_: gone.set()
        }
        if scenario == "ping-pong":
            evts[EventTypes.RECEIVED] = echo_sync  # the threaded benchmark's echo
        with TcpServer(
            LOOPBACK, 0, evts, encoding=None, recv_buffer=64 << 10, ssl=context
        ) as server:
            server.start()
            _drive(scenario, folder, count, server.host[1], gone)
        return
    with socket.create_server((LOOPBACK, 0)) as listener:
        listener.settimeout(_LIMIT)
        reader = threading.Thread(target=_serve_raw, args=(scenario, listener, context, gone))
        reader.start()
        _drive(scenario, folder, count, listener.getsockname()[1], gone)
        reader.join(_LIMIT)


def _serve_raw(
    scenario: str, listener: socket.socket, context: ssl.SSLContext, gone: threading.Event
) -> None:
    conn, _ = listener.accept()
    conn.settimeout(None)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as jfsocket sets it
    with context.wrap_socket(conn, server_side=True) as tls:
        if scenario == "ping-pong":
            while data := tls.recv(64 << 10):
                tls.sendall(data)
        else:
            buffer = bytearray(64 << 10)
            while tls.recv_into(buffer):
                pass
    gone.set()


def _drive(scenario: str, folder: str, count: int, port: int, gone: threading.Event) -> None:
    argv = [sys.executable, "-m", _MODULE, "--peer", scenario, folder, str(count), str(port)]
    peer = subprocess.run(argv, cwd=_ROOT, timeout=_LIMIT, check=False)
    if peer.returncode:
        raise RuntimeError(f"the peer failed ({peer.returncode})")
    if not gone.wait(_LIMIT):
        raise RuntimeError("the side did not see the peer leave")


def _peer(scenario: str, folder: str, count: int, port: int) -> None:
    """Python's ssl socket, blocking: *count* events after the warm-up, then close."""
    context = ssl.create_default_context(cafile=Path(folder) / "ca.pem")
    sock = socket.create_connection((LOOPBACK, port), timeout=_LIMIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(sock, server_hostname=tlsfiles.HOSTNAME) as tls:
        for _ in range(_WARM + count):
            if scenario == "ping-pong":
                tls.sendall(_PING)
                got = 0
                while got < len(_PING):
                    data = tls.recv(1024)
                    if not data:
                        raise RuntimeError("ping-pong: the echo server closed early")
                    got += len(data)
            else:
                tls.sendall(_BLOCK)


def _cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}", description=__doc__)
    parser.add_argument("--side", nargs=4, metavar=("SCENARIO", "KIND", "FOLDER", "COUNT"))
    parser.add_argument("--peer", nargs=4, metavar=("SCENARIO", "FOLDER", "COUNT", "PORT"))
    args = parser.parse_args(argv)
    if args.side:
        scenario, kind, folder, count = args.side
        _side(scenario, kind, folder, int(count))
    elif args.peer:
        scenario, folder, count, port = args.peer
        _peer(scenario, folder, int(count), int(port))
    else:
        parser.error("--side or --peer (the benchmark itself runs from tests.bench.run)")


if __name__ == "__main__":
    _cli()
