"""A broadcast never waits on one client while the others wait (SPEC section 9).

One client of the server stops reading; a broadcast of more than its socket
buffers can hold must still reach every other client at once, and the
stalled client's share must settle exactly once when it finally goes.
"""

from __future__ import annotations

from .driver import HUGE, Driver
from .trace import ERROR


def test_a_stalled_client_does_not_hold_a_broadcast(d: Driver) -> None:
    """Two reading clients get all of a broadcast while a third, which never reads,
    is stuck on it; when the third resets, its SENDFAIL comes once, and the others'
    SENDED once each."""
    server = d.server(encoding=None)
    stalled = d.raw_connect(server.host, rcvbuf=4096)
    readers = [d.raw_connect(server.host) for _ in range(2)]
    sides = [server.side(peer) for peer in (stalled, *readers)]
    big = bytes(range(256)) * (HUGE // 256)
    pump = d.pump(server.send, [big])
    try:
        for reader in readers:  # nothing held them: they get it all while the third is stuck
            assert reader.recv_exactly(len(big)) == big
        for side in sides[1:]:
            side.wait_for("SENDED")
        assert stalled.queued() > 0  # its share is on its way, not done
    finally:
        stalled.reset()  # the stuck write fails now
        pump.join()
    sides[0].wait_for("DISCONNECT")
    d.expect(
        {
            "server:raw1": [("SENDFAIL", big, ERROR), ("DISCONNECT", "server", "raw1")],
            "server:raw2": [("SENDED", big)],
            "server:raw3": [("SENDED", big)],
        },
        partial=True,
        only=("SENDED", "SENDFAIL", "DISCONNECT"),
    )
