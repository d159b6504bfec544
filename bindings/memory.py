"""The memory binding: the threaded binding's API over an in-process :class:`Network`.

For testing applications (and jfsocket itself) with no socket, no thread and
no real time: every object lives on a virtual host of a :class:`Network` and
drives the same core objects the other bindings drive.  Its rules:

* objects take ``network=`` (a :class:`Network`, for its ``localhost``, or a
  :class:`Host`), or are made from one: ``net.TcpServer(...)``,
  ``host.TcpClient(...)``;
* nothing happens until the test runs the network: ``net.run()`` does what is
  due now, ``net.advance(seconds)`` moves the virtual clock and fires what
  falls due on the way (deadlines, reconnects, latency);
* callbacks run inside those calls, one object's in order, never two at once.
  A call that changes something from outside the network (``send`` at the
  top of a test) queues its events for the next run; from inside a callback
  they run as the threaded binding runs them, nested in the caller;
* the calls that block in the threaded binding — ``connect``, ``start``,
  ``stop``, ``close``, ``shutdown`` — end with ``net.run()`` when called
  from outside the network (never moving the clock), so their events have
  fired when they return; from a callback they return at once and the run
  they are in delivers the rest.  ``stop(grace)`` with clients still
  connected returns with them working: they are closed by the
  ``advance`` that reaches the end of the grace period, and STOPED follows.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from jfsocket.core import (
    ALL,
    Address,
    Backoff,
    EventTypes,
    Interface,
    InterfaceTable,
    Keepalive,
    SocketError,
    Stopped,
)
from jfsocket.core.interfaces import resolve_interfaces

from ._facade import Evts, ReceiverFacade, SenderFacade
from ._memnet import Host, Link, Network, TraceEntry
from ._memtcp import TcpClient, TcpServer, _Object, where
from ._sync_stream import EventQueue

__all__ = [
    "ALL",
    "Backoff",
    "CastReceiver",
    "CastSender",
    "EventTypes",
    "Host",
    "Keepalive",
    "Link",
    "Network",
    "SocketError",
    "TcpClient",
    "TcpServer",
    "TraceEntry",
]


class CastReceiver(ReceiverFacade, _Object):
    """Receives the virtual network's multicast datagrams on a port, for the groups joined."""

    def __init__(
        self,
        host: int | Address,
        evts: Evts | None = None,
        *,
        network: Network | Host | None = None,
        **options: Any,
    ) -> None:
        """The threaded ``CastReceiver``'s arguments, and where it lives (*network*)."""
        self._vhost = where(network)
        super().__init__(host, evts, **options)

    def _interface_table(self) -> InterfaceTable:
        return self._vhost.table

    def _init(self) -> None:
        self._attach(last=(Stopped,))

    def events(self, timeout: float | None = 0.0) -> EventQueue:
        """The typed events from now on, until STOPED; read them after running
        the network (``get`` waits *timeout* real seconds: none by default)."""
        return EventQueue(self._dispatcher, timeout)

    def start(self) -> None:
        """Bind and join the groups; STARTED has fired when this returns."""
        model = self._model
        ip, port = model.start()
        if not (self._vhost.owns(ip) or ipaddress.ip_address(ip).is_multicast):
            raise model.start_failed(OSError(errno.EADDRNOTAVAIL, f"{ip} is not ours"))
        model.joins()  # the virtual OS reads the memberships on each datagram
        self._vhost.receivers.append(self)
        self._push(model.listening((ip, port or self._vhost.port())))
        self._net.settle()

    def _datagram(self, payload: bytes, sender: Address, target: Address, at: Interface) -> None:
        """A datagram reached interface *at* of our host: ours if bound to its
        port and group, and a membership admits it."""
        model = self._model
        bound, port = model.host
        group = target[0]
        if not model.is_listening or port != target[1] or bound not in ("0.0.0.0", "::", group):
            return
        if not self._net.admits(self._vhost, model.memberships, group, sender[0], at):
            return
        self._push(model.receive_datagram(payload, sender, arrival=(at.index, group)))

    def stop(self) -> None:
        """Leave the groups and stop listening; STOPED has fired when this returns."""
        if self._model.stop() is None:
            return
        self._vhost.receivers.remove(self)
        self._push(self._model.stopped())
        self._net.settle()

    def _finish(self) -> None:
        self.stop()


class CastSender(SenderFacade, _Object):
    """Sends multicast datagrams on the virtual network; SENDED/SENDFAIL for each."""

    def __init__(
        self,
        evts: Evts | None = None,
        *,
        network: Network | Host | None = None,
        **options: Any,
    ) -> None:
        """The threaded ``CastSender``'s arguments, and where it lives (*network*)."""
        self._vhost = where(network)
        super().__init__(evts, **options)

    def _interface_table(self) -> InterfaceTable:
        return self._vhost.table

    def _init(self) -> None:
        self._attach()
        self._ports: dict[int, int] = {}  # IP version -> our port (a socket each)

    def _through(self, version: int) -> Interface:
        """The interface datagrams of IP *version* leave by."""
        spec = self._model.interface
        if spec is not None:
            chosen = resolve_interfaces(spec, version, self._vhost.table)[0].interface
            if chosen is not None:
                return chosen
        return self._vhost.default_interface(version)

    def send(self, remote: Address, data: Any) -> None:
        """Send *data* to ``(group, port)``; not a multicast group: 1004; longer
        than the network's ``max_datagram``: SENDFAIL (EMSGSIZE)."""
        model, net = self._model, self._net
        ticket, payload, target = model.send(remote, data)
        if len(payload) > net.max_datagram:
            error = OSError(errno.EMSGSIZE, "message too long")
            self._push(model.send_failed(ticket, error))
            return
        version = 6 if ":" in target[0] else 4
        through = self._through(version)
        port = self._ports.setdefault(version, self._vhost.port())
        address = through.first_address(version) or ("::" if version == 6 else "0.0.0.0")
        self._go(model.settle(ticket, len(payload), payload, self._dispatcher))
        net.multicast(
            self._vhost,
            through,
            (address, port),
            target,
            payload,
            ttl=model.ttl,
            loopback=model.loopback,
        )

    def close(self) -> None:
        """Release the virtual sockets (a later ``send`` has a new port)."""
        self._ports.clear()

    def _finish(self) -> None:
        self.close()


# The public names are this module's, wherever they are defined.
for _public in (TcpClient, TcpServer, Network, Host, Link, TraceEntry):
    _public.__module__ = __name__
