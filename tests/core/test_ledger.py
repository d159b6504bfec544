"""The send ledger: each ticket settles once, whatever order the outcomes come in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jfsocket.core import LocalProtocolError, SendFailed, SendLedger, Sent

ERR = OSError("gone")


def test_in_order_settling_and_what_is_left_open() -> None:
    """One send at a time, then several open: len, truth and fail_all follow."""
    ledger = SendLedger("src")
    assert not ledger and len(ledger) == 0
    first = ledger.open(b"a")
    assert ledger and len(ledger) == 1
    ledger.settle(first)
    assert not ledger
    tickets = [ledger.open(data) for data in (b"b", "c", bytearray(b"d"))]
    assert len(ledger) == 3
    assert ledger.sent(tickets[1]) == [Sent(source="src", data="c")]
    events = ledger.fail_all(ERR)
    assert [e.data for e in events] == [b"b", bytearray(b"d")]
    assert all(isinstance(e, SendFailed) and e.error is ERR for e in events)
    assert not ledger


def test_a_ticket_settles_once() -> None:
    """A second outcome for a ticket, or one never issued, is the binding's mistake."""
    ledger = SendLedger("src")
    ticket = ledger.open(b"a")
    ledger.settle(ticket)
    for report in (ledger.settle, ledger.sent, lambda t: ledger.failed(t, ERR)):
        with pytest.raises(LocalProtocolError):
            report(ticket)
    with pytest.raises(LocalProtocolError):
        ledger.settle(7)
    with pytest.raises(LocalProtocolError):
        ledger.settle(-1)
    assert ledger.sent(ticket, late_ok=True) == []


def test_tickets_of_a_previous_connection_are_late() -> None:
    """After new_epoch, outcomes of older tickets (already failed) are ignored."""
    ledger = SendLedger("src")
    old = ledger.open(b"a")
    assert [e.data for e in ledger.fail_all(ERR)] == [b"a"]
    ledger.new_epoch()
    new = ledger.open(b"b")
    ledger.settle(old)
    assert ledger.sent(old) == []
    assert ledger.sent(new) == [Sent(source="src", data=b"b")]


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=40))
def test_any_order_of_opens_and_settles_matches_a_plain_dict(steps: list[tuple[bool, int]]) -> None:
    """Against a model: open, or settle the k-th open ticket; fail_all at the end."""
    ledger = SendLedger("src")
    model: dict[int, bytes] = {}
    for opens, k in steps:
        if opens or not model:
            data = b"%d" % len(model)
            model[ledger.open(data)] = data
        else:
            ticket = sorted(model)[k % len(model)]
            if k % 2:
                ledger.settle(ticket)
            else:
                assert ledger.sent(ticket) == [Sent(source="src", data=model[ticket])]
            del model[ticket]
        assert len(ledger) == len(model) and bool(ledger) == bool(model)
    assert [e.data for e in ledger.fail_all(ERR)] == [model[t] for t in sorted(model)]
