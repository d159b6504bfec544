"""The instruction-count benchmark's sides still run (natively, tiny counts:
valgrind would take a minute), its parse of valgrind's report holds, and with
no valgrind it gives no rows."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.bench import bench_instructions, tlsfiles
from tests.bench.plumbing import open_fds


@pytest.mark.parametrize("kind", ["jfsocket", "raw"])
@pytest.mark.parametrize("scenario", ["ping-pong", "bulk"])
def test_each_side_serves_its_peer_to_the_end(tmp_path: Path, scenario: str, kind: str) -> None:
    tlsfiles.write(str(tmp_path))
    fds, threads = open_fds(), threading.active_count()
    bench_instructions._side(scenario, kind, str(tmp_path), 20)
    assert open_fds() == fds
    assert threading.active_count() == threads


def test_the_count_is_read_off_valgrinds_report(tmp_path: Path) -> None:
    """A stand-in valgrind that runs the side itself and reports a count per event."""
    tlsfiles.write(str(tmp_path))
    fake = tmp_path / "valgrind"
    fake.write_text(
        "#!/bin/sh\n"
        'shift 2; "$@" || exit 1\n'  # drop --tool and --callgrind-out-file
        "count=$(eval echo \\${$#})\n"  # the side's last argument: its count of events
        'echo "==1== Collected : $((1000 + 7 * count))" >&2\n'
    )
    fake.chmod(0o755)
    got = bench_instructions.measure(str(fake), str(tmp_path), "ping-pong", "raw", 10)
    assert got == 7


def test_no_valgrind_no_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert bench_instructions.main(quick=True) == []
