"""The checks themselves: a wrong expected trace fails, and so do broken traces.

A conformance suite whose comparisons could not fail would prove nothing; these
tests feed it wrong expectations and broken records and require a failure.
"""

from __future__ import annotations

import pytest

from .driver import Driver, invariants
from .trace import ERROR, Copied, Recorder, same

Failed = pytest.fail.Exception


def test_a_wrong_expected_trace_fails(d: Driver) -> None:
    """Against a real binding: the right trace passes; a wrong event, a wrong data type,
    a wrong order, a missing or an extra object each fail with a diff."""
    server = d.server()
    client, side = d.connected(server)
    client.send(b"ping")
    side.wait_for("RECEIVED")
    right: dict[str, list[tuple[object, ...]]] = {
        "server": [("STARTED",)],
        "server:client1": [("CONNECTED", "server", "client1"), ("RECEIVED", "ping")],
        "client1": [("CONNECTED", "client1", "server"), ("SENDED", b"ping")],
    }
    d.expect(right)
    wrong: list[dict[str, list[tuple[object, ...]]]] = [
        {**right, "client1": [("CONNECTED", "client1", "server"), ("SENDED", "ping")]},
        {**right, "client1": [("CONNECTED", "client1", "server"), ("SENDED", bytearray(b"ping"))]},
        {**right, "client1": [("SENDED", b"ping"), ("CONNECTED", "client1", "server")]},
        {**right, "client1": [("CONNECTED", "server", "client1"), ("SENDED", b"ping")]},
        {k: v for k, v in right.items() if k != "server"},
        {**right, "client2": [("CONNECTED", "client2", "server")]},
        {**right, "server": [("STARTED",), ("STOPED",)]},
    ]
    for expected in wrong:
        with pytest.raises(Failed, match="differs"):
            d.expect(expected, timeout=0.05)


def test_same_compares_types_all_the_way_down() -> None:
    """``same`` tells bytes from bytearray and str, inside tuples and lists too."""
    assert same(("RECEIVED", b"x"), ("RECEIVED", b"x"))
    assert not same(("RECEIVED", b"x"), ("RECEIVED", bytearray(b"x")))
    assert not same(("RECEIVED", b"x"), ("RECEIVED", "x"))
    assert not same([("A",)], [["A"]])
    assert not same([("A",)], [("A",), ("A",)])
    assert same(memoryview(b"m"), memoryview(b"m"))


def test_the_recorder_normalises_and_flags() -> None:
    """Labels for sources and addresses, ``error`` for exceptions, Copied for data that
    is not the object sent, raw RECEIVEDs joined, and two callbacks at once flagged."""
    recorder = Recorder()
    try:
        server, client, side = object(), object(), object()
        recorder.name(server, "server", raw=True)
        recorder.name(client, "client1", raw=True)
        recorder.address(("127.0.0.1", 1), "server")
        sent = b"data"
        recorder.sending(sent)
        recorder.record(client, "CONNECTED", (client, ("127.0.0.1", 2), ("127.0.0.1", 1)))
        recorder.record(server, "CONNECTED", (side, ("127.0.0.1", 1), ("127.0.0.1", 2)))
        recorder.record(client, "SENDED", (client, sent))
        recorder.record(client, "SENDFAIL", (client, bytes(bytearray(sent)), OSError("x")))
        recorder.record(server, "RECEIVED", (side, "da"))
        recorder.record(server, "RECEIVED", (side, "ta"))
        recorder.entered(side)
        recorder.entered(side)
        assert recorder.trace() == {
            "client1": [
                ("CONNECTED", "client1", "server"),
                ("SENDED", b"data"),
                ("SENDFAIL", Copied(b"data"), ERROR),
            ],
            "server:client1": [
                ("CONNECTED", "server", "client1"),
                ("RECEIVED", "data"),
                ("OVERLAP",),
            ],
        }
    finally:
        recorder.close()


@pytest.mark.parametrize(
    ("trace", "kinds", "problem"),
    [
        (
            {"c": [("CONNECTED", "c", "s"), ("DISCONNECT", "c", "s"), ("DISCONNECT", "c", "s")]},
            {},
            "outside",
        ),
        (
            {"c": [("CONNECTED", "c", "s"), ("DISCONNECT", "c", "s"), ("RECEIVED", "x")]},
            {},
            "outside",
        ),
        (
            {"c": [("SENDED", "x"), ("CONNECTED", "c", "s"), ("DISCONNECT", "c", "s")]},
            {},
            "outside",
        ),
        ({"c": [("CONNECTED", "c", "s"), ("CONNECTED", "c", "s")]}, {}, "twice"),
        ({"c": [("CONNECTED", "c", "s"), ("SENDED", "x")]}, {}, "no DISCONNECT"),
        ({"c": [("CONNECTED", "c", "s"), ("OVERLAP",), ("DISCONNECT", "c", "s")]}, {}, "at once"),
        (
            {"c": [("CONNECTED", "c", "s"), ("SENDED", Copied("x")), ("DISCONNECT", "c", "s")]},
            {},
            "copy",
        ),
        ({"s": [("STARTED",), ("STARTED",), ("STOPED",)]}, {"s": "TcpServer"}, "STARTED twice"),
        ({"s": [("STARTED",)]}, {"s": "TcpServer"}, "no STOPED"),
        ({"s": [("STOPED",)]}, {"s": "TcpServer"}, "without STARTED"),
        ({"s": [("STARTED",), ("SENDED", "x"), ("STOPED",)]}, {"s": "TcpServer"}, "not an event"),
    ],
)
def test_the_end_of_test_invariants_catch_broken_traces(
    trace: dict[str, list[tuple[object, ...]]], kinds: dict[str, str], problem: str
) -> None:
    """Each broken trace is reported by the check every driver runs at the end."""
    problems = invariants(trace, kinds)
    assert problems and any(problem in p for p in problems), problems


def test_the_end_of_test_invariants_accept_good_traces() -> None:
    """A reconnection and a restart are fine."""
    trace: dict[str, list[tuple[object, ...]]] = {
        "c": [
            ("CONNECTED", "c", "s"),
            ("SENDED", "x"),
            ("DISCONNECT", "c", "s"),
            ("note", "between"),
            ("CONNECTED", "c", "s"),
            ("DISCONNECT", "c", "s"),
        ],
        "s": [("STARTED",), ("STOPED",), ("STARTED",), ("STOPED",)],
        "r": [("STARTED",), ("RECEIVED", "x"), ("STOPED",)],
    }
    assert invariants(trace, {"c": "TcpClient", "s": "TcpServer", "r": "CastReceiver"}) == []
