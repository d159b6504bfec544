"""The send ledger: exactly one SENDED or SENDFAIL per accepted ``send``.

A ``send`` that the core accepts gets a ticket.  The binding reports the
outcome of writing it (``sent`` or ``failed``); when the connection or socket
dies, every ticket still open fails.  A ticket is settled once: reports that
arrive after it was settled (a writer finishing after the reader saw the
connection drop) are ignored, so the user never sees both events or neither.
"""

from __future__ import annotations

from .errors import LocalProtocolError
from .events import Data, SendFailed, Sent

__all__ = ["SendLedger"]


class SendLedger:
    """Open tickets of one connection or sender, in the order they were taken.

    The oldest open ticket may sit in ``_first``/``_first_data`` rather than in
    ``_open``: a connection that settles each send before the next (the usual
    case) then never touches the dict.
    """

    __slots__ = (
        "_epoch",
        "_first",
        "_first_data",
        "_first_size",
        "_first_time",
        "_next",
        "_open",
        "_source",
        "bytes",
        "failed_count",
        "sent_bytes",
        "sent_count",
    )

    def __init__(self, source: object) -> None:
        self._source = source
        #: Open tickets after the first, oldest first (dicts keep insertion order),
        #: with the size of what each writes and when it was taken.
        self._open: dict[int, tuple[Data, int, float]] = {}
        self._first = -1
        self._first_data: Data | None = None
        self._first_size = 0
        self._first_time = 0.0
        self._next = 0
        self._epoch = 0
        #: What the open tickets write, in bytes (``max_pending`` counts it).
        self.bytes = 0
        #: Settled so far (statistics): tickets written and their bytes, tickets failed.
        self.sent_count = 0
        self.sent_bytes = 0
        self.failed_count = 0

    def __len__(self) -> int:
        return len(self._open) + (self._first_data is not None)

    def __bool__(self) -> bool:
        return self._first_data is not None or bool(self._open)

    def open(self, data: Data, size: int = 0, now: float = 0.0) -> int:
        """Take a ticket for *data* (the caller's object, kept as passed), which
        writes *size* bytes, at time *now*."""
        ticket = self._next
        self._next = ticket + 1
        self.bytes += size
        if self._first_data is None and not self._open:
            self._first = ticket
            self._first_data = data
            self._first_size = size
            self._first_time = now
        else:
            self._open[ticket] = (data, size, now)
        return ticket

    def oldest_time(self) -> float | None:
        """When the oldest open ticket was taken (``None``: none is open)."""
        if self._first_data is not None:
            return self._first_time
        for _data, _size, when in self._open.values():
            return when
        return None

    def new_epoch(self) -> None:
        """A new connection: tickets taken before it are late from now on."""
        self._epoch = self._next

    def _settle(self, ticket: int, *, late_ok: bool, written: bool) -> Data | None:
        """The data of open *ticket* (*written*, or failed), no longer open;
        ``None`` for a late one."""
        data = self._first_data
        if ticket == self._first and data is not None:
            self._first_data = None
            self._first = -1
            self.bytes -= self._first_size
            self._count(written, self._first_size)
            return data
        open_ = self._open
        entry = open_.get(ticket)
        if entry is not None:
            del open_[ticket]
            self.bytes -= entry[1]
            self._count(written, entry[1])
            return entry[0]
        late_ok = late_ok or 0 <= ticket < self._epoch
        if not (late_ok and 0 <= ticket < self._next):
            raise LocalProtocolError(f"ticket {ticket} was never issued or is already settled")
        return None

    def _count(self, written: bool, size: int) -> None:
        if written:
            self.sent_count += 1
            self.sent_bytes += size
        else:
            self.failed_count += 1

    def settle(self, ticket: int) -> None:
        """*ticket* was written, and nobody will see its SENDED: close it quietly."""
        if ticket == self._first and self._first_data is not None:
            self._first_data = None
            self._first = -1
            self.bytes -= self._first_size
            self.sent_count += 1
            self.sent_bytes += self._first_size
        else:
            # In the dict, or late, or never issued.
            self._settle(ticket, late_ok=False, written=True)

    def sent(self, ticket: int, *, late_ok: bool = False) -> list[Sent]:
        """SENDED for *ticket*; ``late_ok`` tolerates a ticket already failed."""
        data = self._settle(ticket, late_ok=late_ok, written=True)
        return [] if data is None else [Sent(source=self._source, data=data)]

    def failed(
        self, ticket: int, error: BaseException, *, late_ok: bool = False
    ) -> list[SendFailed]:
        """SENDFAIL for *ticket*."""
        data = self._settle(ticket, late_ok=late_ok, written=False)
        return [] if data is None else [SendFailed(source=self._source, data=data, error=error)]

    def fail_all(self, error: BaseException) -> list[SendFailed]:
        """SENDFAIL for every open ticket, oldest first."""
        source = self._source
        first = self._first_data
        pending = [entry[0] for entry in self._open.values()]
        if first is not None:
            pending.insert(0, first)
        self._first_data = None
        self._first = -1
        self._open.clear()
        self.bytes = 0
        self.failed_count += len(pending)
        return [SendFailed(source=source, data=data, error=error) for data in pending]
