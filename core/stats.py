"""Statistics: what each object has done so far, as one frozen snapshot.

Rules of this module:

* the models count (the connection, the server, the receiver, the sender, the
  send ledger, the redialer), so every binding reports the same numbers for
  the same events; a binding only asks for the snapshot;
* out: a send counts once settled: ``messages_out``/``bytes_out`` when
  written (SENDED), ``sends_failed`` when failed (SENDFAIL), whoever settled it;
* in: ``bytes_in`` as read from the OS (a datagram after the cut at
  ``recvBuffer``), ``messages_in`` one per RECEIVED with data (on a raw
  stream that is one per read, which the OS decides);
* a field that does not apply to a kind of object stays 0 (a server's bytes
  are its clients': each has its own ``stats``).
"""

from __future__ import annotations

import attrs

__all__ = ["Stats"]


@attrs.frozen(kw_only=True)
class Stats:
    """A snapshot of one object's counters (``obj.stats``)."""

    #: Bytes received (TCP: read from the stream; multicast: of the datagrams delivered).
    bytes_in: int = 0
    #: RECEIVED events with data: framed messages, raw reads, or datagrams.
    messages_in: int = 0
    #: Bytes of the sends written in full (framing included).
    bytes_out: int = 0
    #: Sends written in full (SENDED).
    messages_out: int = 0
    #: Sends that failed (SENDFAIL).
    sends_failed: int = 0
    #: Datagrams longer than ``recvBuffer``, delivered cut (receivers).
    truncated: int = 0
    #: Connections accepted (servers).
    accepted: int = 0
    #: Connections refused because the server was not listening any more (servers).
    refused: int = 0
    #: Clients connected now (servers).
    current: int = 0
    #: Connections a client with ``reconnect`` made again after losing one.
    reconnects: int = 0
