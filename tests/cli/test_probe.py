"""``jfsocket cast probe`` and the interface options of ``cast listen|send`` (SPEC section 11).

The accounting (:mod:`jfsocket.bindings._probe`) is tested on its own; the
commands run as subprocesses with the helpers of ``test_cli``. Network rules
as there: multicast only in 239.255.0.0/16, ``--interface`` 127.0.0.1 or lo on
both ends, ``--ttl 0`` on every sender; every wait has a deadline.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Final

import pytest
from jfsocket.bindings import _probe
from jfsocket.core import Interface

from .test_cli import (
    CAST_SAFE,
    LOOPBACK,
    RUNTIMES,
    SEND_SAFE,
    UVLOOP,
    WAIT,
    Running,
    _env,
    free_udp_port,
    parse,
    run,
    runtime_options,
    started,
)

LO: Final = Interface(name="lo", index=1, addresses=("127.0.0.1",), loopback=True)
ETH: Final = Interface(name="eth9", index=7, addresses=("127.109.9.9",))
SENDER: Final = ("127.0.0.1", 40000)

_REPORT = re.compile(
    r"\s*\d+\.\d{3}  probe\s+REPORT\s+(?P<ip>\S+):(?P<port>\d+) session (?P<session>[0-9a-f]{16}): "
    r"(?P<received>\d+) received, (?P<lost>\d+) lost(?: \((?P<which>[^)]*)\))?, "
    r"(?P<duplicated>\d+) duplicated, (?P<reordered>\d+) reordered; "
    r"highest (?P<highest>\d+) of (?P<count>\d+); interface (?P<interface>[^;]+)(?:; .*)?"
)


def group() -> str:
    """A random group of 239.255.0.0/16 (the organisation-local scope)."""
    return f"239.255.{random.randrange(256)}.{random.randrange(1, 255)}"


def lo_index() -> int:
    """lo's interface index; skip where the loopback interface has another name."""
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named lo on this host")


# -- the datagram format ------------------------------------------------------------


def test_a_probe_round_trips_at_every_size() -> None:
    """``decode(encode(p))`` is *p*; the datagram is padded to the size asked for."""
    probe = _probe.Probe(session=2**64 - 1, sequence=7, count=10, sent=1_700_000_000.25)
    for size in (_probe.HEADER_SIZE, 100, 65507):
        data = _probe.encode(probe, size)
        assert len(data) == size
        assert data.startswith(_probe.MAGIC)
        assert _probe.decode(data) == probe
    assert _probe.HEADER_SIZE == 32


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"JFPR",
        b"JFPR" + bytes(27),  # one byte short of a header
        b"XXXX" + _probe.encode(_probe.Probe(1, 1, 1, 0.0))[4:],  # not the magic
        _probe.encode(_probe.Probe(1, 1, 1, 0.0)).replace(b"JFPR\x01", b"JFPR\x02"),  # version
        _probe.encode(_probe.Probe(1, 0, 5, 0.0)),  # sequence numbers start at 1
        _probe.encode(_probe.Probe(1, 6, 5, 0.0)),  # beyond the run's count
        _probe.encode(_probe.Probe(1, 1, 5, float("nan"))),
    ],
)
def test_what_is_not_a_probe_decodes_to_none(data: bytes) -> None:
    assert _probe.decode(data) is None


def test_a_run_skips_its_gaps_and_keeps_the_others_slots() -> None:
    run = _probe.ProbeRun(session=5, count=5, gaps=frozenset({2, 5}), size=40)
    assert list(run.schedule(0.5)) == [(1, 0.0), (3, 1.0), (4, 1.5)]
    datagram = run.datagram(3, 12.5)
    assert len(datagram) == 40
    assert _probe.decode(datagram) == _probe.Probe(5, 3, 5, 12.5)
    assert "5 datagrams of 40 bytes" in run.describe(("239.255.0.1", 9))
    assert "skipping 2, 5" in run.describe(("239.255.0.1", 9))


@pytest.mark.parametrize(
    ("count", "gaps", "message"),
    [(0, (), "count must be in"), (3, (4,), "--gap 4"), (3, (0,), "--gap 0")],
)
def test_a_run_refuses_gaps_outside_it(count: int, gaps: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _probe.ProbeRun(session=1, count=count, gaps=frozenset(gaps))


# -- the tally ------------------------------------------------------------------------


def feed(tally: _probe.ProbeTally, *sequences: int, session: int = 1, count: int = 10) -> None:
    for sequence in sequences:
        data = _probe.encode(_probe.Probe(session, sequence, count, 100.0))
        tally.feed(data, SENDER, LO, 100.001)


def one_source(tally: _probe.ProbeTally) -> _probe.SourceTally:
    (source,) = tally.sources.values()
    return source


def test_tally_of_a_clean_run() -> None:
    tally = _probe.ProbeTally()
    feed(tally, *range(1, 11))
    source = one_source(tally)
    assert (source.received, source.lost, source.duplicated, source.reordered) == (10, 0, 0, 0)
    assert tally.finished and tally.probes == 10
    (line,) = tally.lines()
    assert line.startswith("127.0.0.1:40000 session 0000000000000001: 10 received, 0 lost, ")
    assert "highest 10 of 10; interface lo; delay 1.000 ms avg" in line


def test_tally_counts_gaps_duplicates_and_reordering() -> None:
    """Lost: missing below the highest; a late one is reordered (and no longer lost);
    one seen before is duplicated, whenever it comes."""
    tally = _probe.ProbeTally()
    feed(tally, 1, 2, 5, 5, 4, 8, 2)
    source = one_source(tally)
    assert source.received == 5  # 1 2 4 5 8
    assert source.lost == 3  # 3 6 7
    assert source.duplicated == 2  # the second 5, the second 2
    assert source.reordered == 1  # 4, after 5
    assert source.highest == 8 and not source.complete and not tally.finished
    assert tally.probes == 7
    assert "5 received, 3 lost (3, 6-7), 2 duplicated, 1 reordered; highest 8 of 10" in (
        source.line()
    )
    feed(tally, 3, 10)
    assert (source.received, source.lost, source.reordered) == (7, 3, 2)
    assert "3 lost (6-7, 9)" in source.line()
    assert tally.finished  # the last one has arrived


def test_tally_lists_the_first_lost_runs_only() -> None:
    tally = _probe.ProbeTally()
    feed(tally, *range(1, 100, 2), count=100)  # every even number lost
    line = one_source(tally).line()
    assert "49 lost (2, 4, 6, 8, 10, 12, 14, 16, ...)" in line


def test_tally_keeps_sources_and_sessions_apart() -> None:
    tally = _probe.ProbeTally()
    feed(tally, 1, 2, session=1, count=2)
    feed(tally, 2, session=2, count=2)
    tally.feed(_probe.encode(_probe.Probe(1, 1, 2, 0.0)), ("127.0.0.2", 5), ETH, 0.0)
    assert len(tally.sources) == 3
    lines = tally.lines()
    assert "session 0000000000000001: 2 received, 0 lost" in lines[0]
    assert "session 0000000000000002: 1 received, 1 lost (1)" in lines[1]
    assert lines[2].startswith("127.0.0.2:5 session 0000000000000001: 1 received, 0 lost")
    assert "interface eth9" in lines[2]
    assert not tally.finished  # the third's last one has not come


def test_tally_names_every_interface_a_source_came_in_on() -> None:
    tally = _probe.ProbeTally()
    for sequence, interface in ((1, LO), (2, ETH), (3, ETH), (4, None)):
        tally.feed(_probe.encode(_probe.Probe(9, sequence, 4, 0.0)), SENDER, interface, 0.0)
    tally.feed(_probe.encode(_probe.Probe(9, 4, 4, 0.0)), SENDER, Interface(name="", index=3), 0)
    assert "interface eth9 (2), lo (1), ? (1), index 3 (1)" in one_source(tally).line()


def test_tally_counts_junk_apart_and_never_fails_on_it() -> None:
    tally = _probe.ProbeTally()
    assert tally.lines() == ["nothing arrived"]
    for junk in (b"", b"hello", b"JFPR" + bytes(100), bytes(range(256))):
        tally.feed(junk, ("127.0.0.9", 9), None, 0.0)
    tally.feed(b"x", ("127.0.0.8", 8), None, 0.0)
    assert tally.sources == {} and tally.probes == 0 and not tally.finished
    assert tally.lines() == ["5 other datagrams (not probes) from 127.0.0.9:9, 127.0.0.8:8"]
    feed(tally, 1)
    assert len(tally.lines()) == 2


def test_tally_agrees_with_a_set_on_random_arrivals() -> None:
    """The run-length bookkeeping against the obvious model, on shuffled, repeated input."""
    chance = random.Random(15)
    for _ in range(200):
        count = chance.randrange(1, 60)
        arrivals = [chance.randrange(1, count + 1) for _ in range(chance.randrange(0, 80))]
        tally = _probe.ProbeTally()
        feed(tally, *arrivals, count=count)
        if not arrivals:
            assert tally.sources == {}
            continue
        seen: set[int] = set()
        duplicated = reordered = highest = 0
        for sequence in arrivals:
            if sequence in seen:
                duplicated += 1
                continue
            reordered += sequence < highest
            highest = max(highest, sequence)
            seen.add(sequence)
        source = one_source(tally)
        missing = sorted(set(range(1, highest + 1)) - seen)
        assert (source.received, source.lost) == (len(seen), len(missing))
        assert (source.duplicated, source.reordered, source.highest) == (
            duplicated,
            reordered,
            highest,
        )
        assert list(source._seen.holes(1)) == _runs(missing)


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


# -- the commands, on loopback ----------------------------------------------------------


def reports(listener: Running) -> list[re.Match[str]]:
    """The REPORT lines of a finished listener, parsed."""
    found = [_REPORT.fullmatch(line.rstrip("\n")) for line in listener.lines]
    return [match for match in found if match]


def probe_listen(port: int, where: str, *options: str) -> list[str]:
    return ["cast", "probe", "listen", str(port), where, *options]


@pytest.mark.parametrize("runtime", [*RUNTIMES, UVLOOP])
def test_probe_reports_the_skipped_datagram_lost(runtime: str) -> None:
    """``probe send --gap 3 --count 10`` to ``probe listen``: 9 received, 3 lost, nothing
    duplicated or reordered, on lo; the listener ends by itself after the last one."""
    port, where = free_udp_port(), group()
    with started(*probe_listen(port, where, *CAST_SAFE, *runtime_options(runtime))) as listener:
        listening = listener.expect("receiver", "LISTENING")
        assert f":{port} " in listening.detail and where in listening.detail
        sent = run(
            "cast", "probe", "send", where, str(port), "--gap", "3", "--count", "10",
            "--interval", "0.01", *SEND_SAFE, *runtime_options(runtime),
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert "SENDING" in sent.stdout and "9 datagrams" in sent.stdout
        code, errors = listener.finish(timeout=2 * WAIT)
    assert (code, errors) == (0, "")
    (report,) = reports(listener)
    assert report["ip"] == "127.0.0.1"
    assert report["session"] in sent.stdout
    assert (report["received"], report["lost"], report["which"]) == ("9", "1", "3")
    assert (report["duplicated"], report["reordered"]) == ("0", "0")
    assert (report["highest"], report["count"], report["interface"]) == ("10", "10", "lo")
    assert [e.what for e in listener.events] == ["STARTED", "LISTENING", "STOPED"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_probe_listen_counts_other_datagrams_apart(runtime: str) -> None:
    """Datagrams that are not probes are counted on their own line; they end nothing."""
    port, where = free_udp_port(), group()
    with started(*probe_listen(port, where, *CAST_SAFE, "--runtime", runtime)) as listener:
        listener.expect("receiver", "LISTENING")
        send_raw(where, port, b"", b"not a probe", b"JFPR" + bytes(40))
        sent = run(
            "cast", "probe", "send", where, str(port), "--count", "2", "--interval", "0",
            "--size", "1000", *SEND_SAFE, "--runtime", runtime,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        code, errors = listener.finish(timeout=2 * WAIT)
    assert (code, errors) == (0, "")
    (report,) = reports(listener)
    assert (report["received"], report["lost"], report["highest"]) == ("2", "0", "2")
    assert any("3 other datagrams (not probes) from 127.0.0.1:" in line for line in listener.lines)


def test_probe_listen_stops_after_count_and_reports_progress() -> None:
    """``--count 3 --every 0.05``: PROGRESS lines while it runs, and it stops after 3
    probes although the sender goes on."""
    port, where = free_udp_port(), group()
    args = probe_listen(port, where, *CAST_SAFE, "--count", "3", "--every", "0.05")
    with started(*args) as listener:
        listener.expect("receiver", "LISTENING")
        sent = run(
            "cast", "probe", "send", where, str(port), "--count", "20", "--interval", "0.03",
            *SEND_SAFE,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    (report,) = reports(listener)
    assert int(report["received"]) == 3 and report["count"] == "20"
    assert any(" PROGRESS " in line for line in listener.lines)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_probe_listen_for_a_duration_with_nothing_sent(runtime: str) -> None:
    result = run(*probe_listen(free_udp_port(), group(), *CAST_SAFE, "--duration", "0.3",
                               "--runtime", runtime))  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.rstrip().endswith("REPORT     nothing arrived")


def send_raw(group: str, port: int, *payloads: bytes) -> None:
    """Datagrams from one plain socket (so from one address): interface 127.0.0.1, TTL 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        for payload in payloads:
            sender.sendto(payload, (group, port))


def expect_line(listener: Running, needle: str) -> str:
    """Read the listener's lines until one holds *needle* (bounded); ``Running.expect``
    knows only event lines, not PROGRESS ones."""
    deadline = time.monotonic() + WAIT
    while True:
        line = listener._get(deadline - time.monotonic())
        if line is None:
            pytest.fail(f"no line with {needle!r}; the output was:\n{''.join(listener.lines)}")
        listener.lines.append(line)
        if needle in line:
            return line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_probe_listen_stops_on_sigint_and_still_reports(runtime: str) -> None:
    """Ctrl-C ends a listener whose sender has not finished: the report comes all the same."""
    port, where = free_udp_port(), group()
    args = probe_listen(port, where, *CAST_SAFE, "--every", "0.05", "--runtime", runtime)
    with started(*args) as listener:
        listener.expect("receiver", "LISTENING")
        probes = [_probe.encode(_probe.Probe(7, sequence, 5, 0.0)) for sequence in (2, 4, 4)]
        send_raw(where, port, *probes, b"the end")  # the end is counted last
        expect_line(listener, "1 other datagram (not probes)")
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    (report,) = reports(listener)
    assert report["session"] == f"{7:016x}"
    assert (report["received"], report["lost"], report["which"]) == ("2", "2", "1, 3")
    assert (report["duplicated"], report["highest"], report["count"]) == ("1", "4", "5")
    last = listener.lines[-1].rstrip("\n")
    assert re.search(r"REPORT     1 other datagram \(not probes\) from 127\.0\.0\.1:\d+$", last)


#: Loaded by the child through PYTHONPATH: probe datagram number 2 cannot be sent.
FAILING_SECOND: Final = """\
import errno, socket, struct

_sendto = socket.socket.sendto


def sendto(self, data, *args):
    data = bytes(data)
    if data[:4] == b"JFPR" and struct.unpack_from("!I", data, 16)[0] == 2:
        raise OSError(errno.ENETUNREACH, "made to fail by the test")
    return _sendto(self, data, *args)


socket.socket.sendto = sendto
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_probe_send_exits_1_after_a_sendfail(tmp_path: Path, runtime: str) -> None:
    """A datagram the OS refuses: a SENDFAIL line naming its number, the others still
    sent, exit 1 with one line."""
    (tmp_path / "sitecustomize.py").write_text(FAILING_SECOND)
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    result = run(
        "cast", "probe", "send", group(), str(free_udp_port()), "--count", "3", "--interval", "0",
        *SEND_SAFE, "--runtime", runtime, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    (failed,) = [e for e in parse(result.stdout.splitlines()) if e.what == "SENDFAIL"]
    assert failed.detail == "number 2  OSError: [Errno 101] made to fail by the test"
    assert "SENT       2 of 3 datagrams" in result.stdout
    assert result.stderr == "jfsocket: 1 of 3 datagrams failed (SENDFAIL)\n"


# -- cast listen / send: interfaces by name and index, sources, IPv6 ----------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("by", ["name", "index"])
def test_cast_interface_by_name_or_index(runtime: str, by: str) -> None:
    """``--interface lo`` or lo's index on both ends; each RECEIVED says who sent it, to
    which group, and that it came in on lo."""
    index = lo_index()
    listen_on, send_by = ("lo", str(index)) if by == "name" else (str(index), "lo")
    port, where = free_udp_port(), group()
    options = ("--runtime", runtime)
    with started(
        "cast", "listen", str(port), where, "--interface", listen_on, *options
    ) as listener:
        listening = listener.expect("receiver", "LISTENING")
        assert listening.detail.endswith(f"on {listen_on}"), listening.detail
        sent = run("cast", "send", where, str(port), "m1", "--interface", send_by, "--ttl", "0",
                   *options)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        received = listener.expect("receiver", "RECEIVED")
        assert received.data == "m1"
        assert re.fullmatch(rf"'m1'  from 127\.0\.0\.1:\d+ to {where} on lo", received.detail)
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cast_listen_from_one_source(runtime: str) -> None:
    """``--source 127.0.0.1`` (source-specific multicast): that sender's datagrams arrive."""
    port, where = free_udp_port(), group()
    args = ("cast", "listen", str(port), where, *CAST_SAFE, "--source", "127.0.0.1")
    with started(*args, "--runtime", runtime) as listener:
        assert listener.expect("receiver", "LISTENING").detail.endswith("from 127.0.0.1")
        sent = run("cast", "send", where, str(port), "ssm", *SEND_SAFE, "--runtime", runtime)
        assert sent.returncode == 0, sent.stderr
        assert listener.expect("receiver", "RECEIVED").data == "ssm"
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 on this host")
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cast_listen_to_an_ipv6_group_binds_the_ipv6_any_address(runtime: str) -> None:
    """An IPv6 group: the listener binds ``::`` and joins on lo, then stops cleanly.
    (Delivery is not asserted: Linux's lo has no MULTICAST flag, and IPv6 keeps to it.)"""
    index = lo_index()
    port = free_udp_port()
    with started(
        "cast", "listen", str(port), "ff15::1234", "--interface", "lo", "--runtime", runtime
    ) as listener:
        listening = listener.expect("receiver", "LISTENING")
        assert listening.detail.startswith(f":::{port} ['ff15::1234']"), listening.detail
        listener.proc.send_signal(signal.SIGINT)
        code, errors = listener.finish()
    assert (code, errors) == (0, "")
    assert [e.what for e in listener.events] == ["STARTED", "LISTENING", "STOPED"]
    # The sender takes the IPv6 group and interface too: it gets as far as the OS.
    sent = run("cast", "send", "ff15::1234", str(port), "m", "--interface", str(index),
               "--ttl", "0", "--runtime", runtime)  # fmt: skip
    assert sent.returncode in (0, 1), sent.stderr
    assert "1004" not in sent.stderr and "Traceback" not in sent.stderr
    assert parse(sent.stdout.splitlines())[0].what in ("SENDED", "SENDFAIL")


# -- help and usage ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        (("cast",), ("listen", "send", "probe")),
        (("cast", "probe"), ("send", "listen", "lost")),
        (
            ("cast", "probe", "send"),
            ("group", "port", "--count", "--interval", "--size", "--gap", "--ttl", "--interface"),
        ),
        (
            ("cast", "probe", "listen"),
            ("port", "GROUP", "--duration", "--count", "--every", "--interface", "--source"),
        ),
        (("cast", "listen"), ("--source", "name", "index")),
    ],
)
def test_help(command: tuple[str, ...], mentions: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(" ".join(("usage: jfsocket", *command)))
    for word in mentions:
        assert word in result.stdout, f"--help of {command} does not mention {word}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cast", "listen", "5000", "239.255.91.9", "ff15::1"), "mix IPv4 and IPv6"),
        (("cast", "listen", "5000", "ff15::1", *CAST_SAFE), "--interface 127.0.0.1 is not IPv6"),
        (("cast", "listen", "5000", "239.255.91.9", "--source", "::1"), "--source ::1 is not"),
        (("cast", "listen", "5000", "239.255.91.9", "--source", "x"), "argument --source"),
        (("cast", "send", "239.255.91.9", "9", "m", "--interface", "4294967"), "index"),
        (("cast", "probe", "send", "239.255.91.9", "9", *SEND_SAFE, "--gap", "11"), "--gap 11"),
        (("cast", "probe", "send", "239.255.91.9", "9", *SEND_SAFE, "--count", "0"), "--count"),
        (("cast", "probe", "send", "239.255.91.9", "9", *SEND_SAFE, "--size", "31"), "--size"),
        (("cast", "probe", "send", "239.255.91.9", "9", *SEND_SAFE, "--interval", "-1"), "'-1'"),
        (
            ("cast", "probe", "listen", "5000", "239.255.91.9", "--count", "1", "--duration", "1"),
            "not allowed with argument",
        ),
        (("cast", "probe", "listen", "5000", "ff15::1", "239.255.1.1"), "mix IPv4 and IPv6"),
        (("cast", "probe"), "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert "error:" in last and message in last, last


def test_the_header_is_network_order() -> None:
    """The layout the module's docstring gives (others may read it: keep it)."""
    data = _probe.encode(_probe.Probe(0x0102030405060708, 9, 10, 2.5))
    assert data == b"JFPR\x01\x00\x00\x00" + struct.pack("!QIId", 0x0102030405060708, 9, 10, 2.5)
