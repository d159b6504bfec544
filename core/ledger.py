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
    """Open tickets of one connection or sender, in the order they were taken."""

    __slots__ = ("_epoch", "_next", "_open", "_source")

    def __init__(self, source: object) -> None:
        self._source = source
        self._open: dict[int, Data] = {}
        self._next = 0
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._open)

    def open(self, data: Data) -> int:
        """Take a ticket for *data* (the caller's object, kept as passed)."""
        ticket = self._next
        self._next = ticket + 1
        self._open[ticket] = data
        return ticket

    def new_epoch(self) -> None:
        """A new connection: tickets taken before it are late from now on."""
        self._epoch = self._next

    # get and del rather than pop(ticket, None): compiled, they are two C calls,
    # where pop with a default is a method looked up by name.
    def _settle(self, ticket: int, *, late_ok: bool) -> Data | None:
        open_ = self._open
        data = open_.get(ticket)
        if data is not None:
            del open_[ticket]
        late_ok = late_ok or 0 <= ticket < self._epoch
        if data is None and not (late_ok and 0 <= ticket < self._next):
            raise LocalProtocolError(f"ticket {ticket} was never issued or is already settled")
        return data

    def settle(self, ticket: int) -> None:
        """*ticket* was written, and nobody will see its SENDED: close it quietly."""
        open_ = self._open
        if ticket in open_:
            del open_[ticket]
        else:
            self._settle(ticket, late_ok=False)  # already settled or never issued: it decides

    def sent(self, ticket: int, *, late_ok: bool = False) -> list[Sent]:
        """SENDED for *ticket*; ``late_ok`` tolerates a ticket already failed."""
        data = self._settle(ticket, late_ok=late_ok)
        return [] if data is None else [Sent(source=self._source, data=data)]

    def failed(
        self, ticket: int, error: BaseException, *, late_ok: bool = False
    ) -> list[SendFailed]:
        """SENDFAIL for *ticket*."""
        data = self._settle(ticket, late_ok=late_ok)
        return [] if data is None else [SendFailed(source=self._source, data=data, error=error)]

    def fail_all(self, error: BaseException) -> list[SendFailed]:
        """SENDFAIL for every open ticket, oldest first."""
        source = self._source
        events = [SendFailed(source=source, data=data, error=error) for data in self._open.values()]
        self._open.clear()
        return events
