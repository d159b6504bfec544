"""The event trace of a conformance scenario: recorded raw, compared normalised.

Every callback call of every object is recorded as it happens (from whatever
thread or task the binding runs it in), with its positional arguments as
they were.  Normalising is done when a trace is read, so that addresses known
only later (a client's local port, learnt when ``connect`` returns) still get
their role label:

* the source object (the callback's first argument) becomes the key of its
  own trace: ``"server"``, ``"client1"``, ``"receiver1"``, or for a server's
  side of a connection ``"server:client1"`` (``"server:raw1"`` for a plain
  socket peer; a second object with the same label gets ``"#2"``);
* an ``(ip, port)`` becomes the label of whoever has that address;
* an ``OSError`` or ``SocketError`` becomes ``"error"`` (the SPEC only says
  SENDFAIL carries "the exception"; which one depends on what the binding saw
  first); any other exception shows as ``"unexpected <type>"``, so a binding
  that hands users a cancellation there fails the comparison;
* data stays itself, compared with its exact type; SENDED/SENDFAIL data that
  is not the very object passed to ``send`` shows as :class:`Copied`;
* on a raw-framed (stream) connection, consecutive RECEIVEDs are joined: how
  a byte stream is cut into reads is not part of the contract.

Ordering is only compared within one object's trace: the SPEC orders the
events of one object, not those of different objects.
"""

from __future__ import annotations

import logging
import reprlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import pytest
from jfsocket.core import SocketError

__all__ = [
    "ERROR",
    "Copied",
    "Entry",
    "LogLine",
    "Recorder",
    "Trace",
    "format_diff",
    "same",
    "squash",
]

#: One normalised event: its name, then its normalised arguments (source left out).
Entry = tuple[object, ...]
#: Every object's entries, by label.
Trace = dict[str, list[Entry]]
#: How an exception (SENDFAIL's ``err``) is shown in a trace.
ERROR: Final = "error"
#: How long a wait may last by default before it fails the test.
WAIT: Final = 5.0
#: The longest a waiter sleeps before looking again at state that changes
#: without a record (a registry emptying, a socket's queue filling).
_RECHECK: Final = 0.02

_short = reprlib.Repr()
_short.maxstring = 48
_short.maxother = 48
_short.maxlevel = 3


class Copied:
    """A SENDED/SENDFAIL ``data`` that is not the object the caller passed to ``send``."""

    __slots__ = ("data",)

    def __init__(self, data: object) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Copied) and same(self.data, other.data)

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        return f"Copied({_short.repr(self.data)})"


class LogLine:
    """One record of the ``jfsocket`` logger: level, message, exception type (if any)."""

    __slots__ = ("exc_type", "level", "message")

    def __init__(self, level: int, message: str, exc_type: type[BaseException] | None) -> None:
        self.level = level
        self.message = message
        self.exc_type = exc_type

    def __repr__(self) -> str:
        kind = self.exc_type.__name__ if self.exc_type is not None else None
        return f"LogLine({logging.getLevelName(self.level)}, {self.message!r}, {kind})"


def same(a: object, b: object) -> bool:
    """Equal and of the same type, all the way down (``b'x'`` is not ``bytearray(b'x')``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list))
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def squash(entries: Iterable[Entry]) -> list[str]:
    """The event names of *entries*, runs of one name written once: for traces
    whose length depends on timing (a stream of SENDED cut short by a fault)."""
    names: list[str] = []
    for entry in entries:
        name = str(entry[0])
        if not names or names[-1] != name:
            names.append(name)
    return names


def _show(entry: Entry) -> str:
    return "(" + ", ".join(_short.repr(part) for part in entry) + ")"


def format_diff(label: str, expected: list[Entry], actual: list[Entry]) -> str:
    """A compact, readable difference between two traces of *label*."""
    lines = [f"trace of {label!r} differs:"]
    for i in range(max(len(expected), len(actual))):
        want = _show(expected[i]) if i < len(expected) else "-"
        got = _show(actual[i]) if i < len(actual) else "-"
        ok = i < len(expected) and i < len(actual) and same(expected[i], actual[i])
        lines.append(f"  {'  ' if ok else '!!'} {i:3d} expected {want:<44} actual {got}")
    return "\n".join(lines)


class _Record:
    __slots__ = ("args", "event", "seq", "source")

    def __init__(self, seq: int, source: object, event: str, args: tuple[object, ...]) -> None:
        self.seq = seq
        self.source = source
        self.event = event
        self.args = args


class _LogHandler(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.WARNING)
        self._recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[0] if record.exc_info else None
        self._recorder._log(LogLine(record.levelno, record.getMessage(), exc))


class Recorder:
    """Records callback calls and ``jfsocket`` log lines, thread-safely; normalises on read.

    Waiters block on one condition variable that every record notifies.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._records: list[_Record] = []
        self._generation = 0
        #: id(object) -> label, for objects the scenario created.
        self._labels: dict[int, str] = {}
        #: id(object) -> (object, server label), for a server's sides of connections.
        self._sides: dict[int, tuple[object, str]] = {}
        #: id(side) -> the peer address its CONNECTED reported.
        self._side_remote: dict[int, tuple[str, int]] = {}
        self._addresses: dict[tuple[str, int], str] = {}
        #: id(object) -> whether it is a stream connection with raw framing.
        self._raw: dict[int, bool] = {}
        #: Objects passed to a ``send``: SENDED/SENDFAIL must hand back these very ones.
        self._sent: dict[int, object] = {}
        self._inside: Counter[int] = Counter()
        self._counts: Counter[tuple[int, str]] = Counter()
        self._logs: list[LogLine] = []
        #: A runtime that only moves when driven (the memory binding's): waits
        #: run it instead of waiting for time to pass.
        self.driving: Callable[[Callable[[], object], float], bool] | None = None
        self._handler = _LogHandler(self)
        logging.getLogger("jfsocket").addHandler(self._handler)

    def close(self) -> None:
        """Stop listening to the ``jfsocket`` logger."""
        logging.getLogger("jfsocket").removeHandler(self._handler)

    # -- what the drivers tell us ------------------------------------------------------

    def name(self, obj: object, label: str, *, raw: bool = False) -> None:
        """*obj* is called *label* in traces; *raw*: a stream connection (or a server of them)."""
        with self._cond:
            self._labels[id(obj)] = label
            self._raw[id(obj)] = raw

    def address(self, address: object, label: str) -> None:
        """Whoever has *address* is *label* (the first to claim it keeps it)."""
        if isinstance(address, tuple) and len(address) == 2:
            with self._cond:
                self._addresses.setdefault((str(address[0]), int(address[1])), label)

    def sending(self, data: object) -> None:
        """*data* is about to be passed to a ``send``."""
        with self._cond:
            self._sent[id(data)] = data

    def record(self, owner: object, event: str, args: tuple[object, ...]) -> None:
        """One callback call: *args* as received; *owner* is whose callback it is."""
        source = args[0] if args else owner
        with self._cond:
            key = id(source)
            if key not in self._labels and key not in self._sides and id(owner) in self._labels:
                # A server's callback called for one of its connections.
                self._sides[key] = (source, self._labels[id(owner)])
                self._raw[key] = self._raw.get(id(owner), False)
            if event == "CONNECTED" and len(args) == 3:
                if key in self._sides:
                    self._side_remote.setdefault(key, _address(args[2]))
                elif key in self._labels:
                    # A client's own address: known for sure only now.
                    self._addresses.setdefault(_address(args[1]), self._labels[key])
            self._records.append(_Record(len(self._records), source, event, args[1:]))
            self._counts[key, event] += 1
            self._changed()

    def note(self, obj: object, text: str) -> None:
        """A marker in *obj*'s trace, e.g. where a call made inside a callback returned."""
        self.record(obj, "note", (obj, text))

    def entered(self, source: object) -> None:
        """A callback of *source* starts: two at once for one object is a violation."""
        with self._cond:
            self._inside[id(source)] += 1
            if self._inside[id(source)] > 1:
                self._records.append(_Record(len(self._records), source, "OVERLAP", ()))
                self._changed()

    def left(self, source: object) -> None:
        """A callback of *source* has returned."""
        with self._cond:
            self._inside[id(source)] -= 1

    def _log(self, line: LogLine) -> None:
        with self._cond:
            self._logs.append(line)
            self._changed()

    def _changed(self) -> None:
        self._generation += 1
        self._cond.notify_all()

    # -- reading ---------------------------------------------------------------------

    def count(self, obj: object, event: str) -> int:
        """How many *event* callbacks *obj* has had (cheap: no normalising)."""
        with self._cond:
            return self._counts[id(obj), event]

    def logs(self) -> list[LogLine]:
        """The ``jfsocket`` log lines at WARNING and above, so far."""
        with self._cond:
            return list(self._logs)

    def raw_args(self, obj: object) -> list[tuple[str, tuple[object, ...]]]:
        """*obj*'s events with their arguments as the binding passed them (source left out)."""
        with self._cond:
            return [(r.event, r.args) for r in self._records if r.source is obj]

    def sides(self, owner: object) -> list[tuple[object, tuple[str, int] | None]]:
        """The server *owner*'s sides of connections seen so far, with their peers' addresses."""
        with self._cond:
            return [
                (obj, self._side_remote.get(key))
                for key, (obj, server) in self._sides.items()
                if server == self._labels.get(id(owner))
            ]

    def label_of(self, obj: object) -> str:
        """*obj*'s label now (a side whose peer is not known yet gets a ``?``)."""
        with self._cond:
            return self._resolve().get(id(obj), f"?{obj!r}")

    def label_address(self, address: object) -> str:
        """The label of *address*, or ``?ip:port``."""
        with self._cond:
            return self._address_label(address)

    def _address_label(self, address: object) -> str:
        if isinstance(address, tuple) and len(address) == 2:
            label = self._addresses.get((str(address[0]), int(address[1])))
            if label is not None:
                return label
            return f"?{address[0]}:{address[1]}"
        return f"?{address!r}"

    def _resolve(self) -> dict[int, str]:
        labels = dict(self._labels)
        first_seen: dict[int, int] = {}
        for record in self._records:
            first_seen.setdefault(id(record.source), record.seq)
        by_base: dict[str, list[int]] = {}
        for key, (_, server) in self._sides.items():
            remote = self._side_remote.get(key)
            base = f"{server}:{self._address_label(remote) if remote else '?'}"
            by_base.setdefault(base, []).append(key)
        for base, keys in by_base.items():
            keys.sort(key=lambda k: first_seen.get(k, 1 << 60))
            for n, key in enumerate(keys, 1):
                labels[key] = base if n == 1 else f"{base}#{n}"
        return labels

    def _normalise(self, value: object, labels: Mapping[int, str]) -> object:
        if id(value) in labels:
            return labels[id(value)]
        if isinstance(value, (OSError, SocketError)):
            # SENDFAIL's ``err`` is "the exception": an OSError from the write, or
            # the SocketError(1001) of a connection lost meanwhile, depending on
            # which the binding saw first.  Which of the two is not part of the
            # contract; anything else (a cancellation, say) is shown as itself.
            return ERROR
        if isinstance(value, BaseException):
            return f"unexpected {type(value).__name__}"
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return self._address_label(value)
        return value

    def trace(self) -> Trace:
        """Every object's normalised trace, by label."""
        with self._cond:
            records = list(self._records)
            labels = self._resolve()
            sent = dict(self._sent)
            raw = dict(self._raw)
            out: Trace = {}
            for record in records:
                key = id(record.source)
                label = labels.get(key, f"?{record.source!r}")
                entries = out.setdefault(label, [])
                args = [self._normalise(a, labels) for a in record.args]
                if record.event in ("SENDED", "SENDFAIL") and args:
                    data = record.args[0]
                    if sent.get(id(data)) is not data:
                        args[0] = Copied(data)
                if record.event == "RECEIVED" and raw.get(key) and len(args) == 1:
                    data = args[0]
                    last = entries[-1] if entries else None
                    if (
                        last is not None
                        and last[0] == "RECEIVED"
                        and isinstance(data, (str, bytes))
                        and type(last[1]) is type(data)
                        and data
                        and last[1]
                    ):
                        entries[-1] = ("RECEIVED", last[1] + data)  # type: ignore[operator]
                        continue
                entries.append((record.event, *args))
            return out

    def order(self) -> list[tuple[str, str]]:
        """``(label, event)`` of every record, in recording order."""
        with self._cond:
            labels = self._resolve()
            return [(labels.get(id(r.source), "?"), r.event) for r in self._records]

    # -- waiting ---------------------------------------------------------------------

    def poll(self, predicate: Callable[[], object], timeout: float = WAIT) -> bool:
        """Whether *predicate* holds within *timeout* s, re-checked after every record.

        The predicate runs without the lock held: it may call into a binding
        (whose callbacks need the lock to record).
        """
        if self.driving is not None:
            return self.driving(predicate, timeout)
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                generation = self._generation
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                if self._generation == generation:
                    self._cond.wait(min(remaining, _RECHECK))

    def wait_until(
        self, predicate: Callable[[], object], timeout: float = WAIT, what: str = ""
    ) -> None:
        """Wait until *predicate* holds (see :meth:`poll`); fail the test at *timeout*."""
        if not self.poll(predicate, timeout):
            name = what or getattr(predicate, "__qualname__", repr(predicate))
            pytest.fail(f"timed out after {timeout:g} s waiting for {name}", pytrace=False)


def _address(value: object) -> tuple[str, int]:
    assert isinstance(value, tuple) and len(value) == 2, value
    return (str(value[0]), int(value[1]))
