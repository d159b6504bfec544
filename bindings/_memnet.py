"""The in-process network of the memory binding: hosts, a virtual clock, links, faults.

Nothing here decides anything about the protocol: it is the fake OS and wire
that :mod:`jfsocket.bindings.memory` reads from and writes to, as the other
bindings use the kernel.  Its rules:

* one queue of tasks ordered by ``(virtual time, order of scheduling)``:
  :meth:`Network.run` runs every task that is due, those they schedule for
  now included; :meth:`Network.advance` moves the clock, running each task at
  its time; nothing runs otherwise, so a test is a deterministic function of
  what it does (randomness comes from ``Network(seed=...)``);
* a TCP connection is a pair of :class:`VirtualSocket`; each direction holds
  the bytes written and not yet read, at most ``window`` of them (a peer that
  is stalled, or cut off by a partition, makes the writer wait, as a full
  socket buffer would); bytes arrive after the link's latency, in order,
  in reads of at most ``segment`` bytes;
* a multicast datagram is copied to every listening receiver of every host
  on the sending interface's link (and, with ``loopback``, of the sending
  host), each copy lost, duplicated or delayed past later ones as the link's
  settings and the seeded random source say.
"""

from __future__ import annotations

import errno
import heapq
import ipaddress
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
from jfsocket.core import MAX_DATAGRAM, Address, Interface, StreamEvent

from ._memsock import VirtualSocket

if TYPE_CHECKING:
    from . import memory

__all__ = ["Host", "Link", "Network", "TraceEntry"]

#: Bytes one direction of a connection holds, written and not yet read: about
#: what a loopback connection's two socket buffers hold on Linux.
DEFAULT_WINDOW: Final = 16 << 20
_EPHEMERAL: Final = 49152


@attrs.frozen(kw_only=True)
class Link:
    """How datagrams and bytes fare between two hosts (or on one)."""

    #: Seconds from write to arrival.
    latency: float = 0.0
    #: Probability that a datagram copy is lost.
    loss: float = 0.0
    #: Probability that a datagram copy arrives twice.
    duplicate: float = 0.0
    #: Probability that a datagram copy is held back by ``reorder_delay``
    #: seconds, so that later ones overtake it.
    reorder: float = 0.0
    reorder_delay: float = 0.001


@attrs.frozen(kw_only=True)
class TraceEntry:
    """One event of one object, as its core produced it (``net.trace``)."""

    time: float
    #: The object's name in the network (``'TcpClient#2'``...), stable across runs.
    name: str
    event: StreamEvent

    def __str__(self) -> str:
        event = self.event
        fields = ", ".join(
            f"{a.name}={_brief(getattr(event, a.name))}"
            for a in attrs.fields(type(event))
            if a.name != "source" and getattr(event, a.name) not in (None, False)
        )
        return f"{self.time:.6f} {self.name} {type(event).__name__}({fields})"


def _brief(value: object) -> str:
    if isinstance(value, BaseException):
        return type(value).__name__ + (f"[{value.errno}]" if hasattr(value, "errno") else "")
    if isinstance(value, Interface):
        return value.name
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Host:
    """A virtual host: its interfaces, and the ports its objects use."""

    def __init__(self, net: Network, name: str) -> None:
        self.network = net
        self.name = name
        self.interfaces: list[Interface] = []
        self._links: dict[str, str] = {}  # interface name -> link name
        self.listeners: list[Any] = []  # the binding's listening servers
        self.receivers: list[Any] = []  # the binding's listening receivers
        self._ports = itertools.count(_EPHEMERAL)
        self.interface("lo", "127.0.0.1", "::1", loopback=True)

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.addresses}>"

    def interface(
        self,
        name: str,
        *addresses: str,
        link: str = "lan",
        up: bool = True,
        multicast: bool = True,
        loopback: bool = False,
    ) -> Interface:
        """Declare an interface with *addresses*, attached to *link* (hosts on one
        link hear each other's multicast; ``lo`` is the host's own)."""
        if any(i.name == name for i in self.interfaces):
            raise ValueError(f"{self.name} already has an interface {name!r}")
        normal = tuple(str(ipaddress.ip_address(a)) for a in addresses)
        for address in normal:
            owner = self.network._owners.get(address)
            if owner is not None and not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"{address} is already an address of {owner.name}")
        record = Interface(
            name=name,
            index=len(self.interfaces) + 1,
            addresses=normal,
            up=up,
            multicast=multicast,
            loopback=loopback,
        )
        self.interfaces.append(record)
        self._links[name] = f"lo@{self.name}" if loopback else link
        for address in normal:
            if not ipaddress.ip_address(address).is_loopback:
                self.network._owners[address] = self
        return record

    def table(self) -> Sequence[Interface]:
        """The interface table (what the core's ``interfaces=`` reads)."""
        return tuple(self.interfaces)

    def link_name(self, interface: Interface) -> str:
        """The link *interface* is attached to."""
        return self._links[interface.name]

    @property
    def addresses(self) -> list[str]:
        """Every address of every interface."""
        return [a for i in self.interfaces for a in i.addresses]

    def owns(self, ip: str) -> bool:
        """*ip* is one of ours (or the unspecified address)."""
        return ip in ("0.0.0.0", "::") or ip in self.addresses

    def default_interface(self, version: int) -> Interface:
        """Where the OS's choice goes: the first up, multicast interface of the
        family that is not loopback, else loopback."""
        usable = [i for i in self.interfaces if i.up and i.multicast and i.has_family(version)]
        return next(
            (i for i in usable if not i.loopback), usable[0] if usable else self.interfaces[0]
        )

    def source_for(self, ip: str) -> str:
        """Our address a connection to *ip* comes from."""
        version = ipaddress.ip_address(ip).version
        if ip in self.addresses:
            return ip
        return self.default_interface(version).first_address(version) or ip

    def port(self) -> int:
        """A fresh ephemeral port."""
        return next(self._ports)

    # Constructors of the binding's objects, living on this host.
    def TcpServer(self, *args: Any, **kwargs: Any) -> memory.TcpServer:
        """``memory.TcpServer(..., network=this host)``."""
        from . import memory  # the classes live there; this module is their network

        return memory.TcpServer(*args, network=self, **kwargs)

    def TcpClient(self, *args: Any, **kwargs: Any) -> memory.TcpClient:
        """``memory.TcpClient(..., network=this host)``."""
        from . import memory  # the classes live there; this module is their network

        return memory.TcpClient(*args, network=self, **kwargs)

    def CastReceiver(self, *args: Any, **kwargs: Any) -> memory.CastReceiver:
        """``memory.CastReceiver(..., network=this host)``."""
        from . import memory  # the classes live there; this module is their network

        return memory.CastReceiver(*args, network=self, **kwargs)

    def CastSender(self, *args: Any, **kwargs: Any) -> memory.CastSender:
        """``memory.CastSender(..., network=this host)``."""
        from . import memory  # the classes live there; this module is their network

        return memory.CastSender(*args, network=self, **kwargs)


class Network:
    """An in-process network with a virtual clock (see the module docstring).

    *seed* seeds the random source of every fault and of reconnect jitter;
    *latency*, *loss*, *duplicate*, *reorder* and *reorder_delay* are the
    default :class:`Link` between any two hosts (and on one); *max_datagram*
    is the longest datagram a sender may send; *window* the bytes one
    direction of a connection holds unread before writes wait; *segment*
    the most bytes one read delivers (``None``: what arrived at once).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        reorder_delay: float = 0.001,
        max_datagram: int = MAX_DATAGRAM,
        window: int = DEFAULT_WINDOW,
        segment: int | None = None,
    ) -> None:
        #: The seeded random source of every fault (and of reconnect jitter).
        self.random = random.Random(seed)
        self.default_link = Link(
            latency=latency,
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
            reorder_delay=reorder_delay,
        )
        #: Longest datagram a sender may send (longer: SENDFAIL, EMSGSIZE).
        self.max_datagram = max_datagram
        #: Bytes one direction of a connection holds unread before writes wait.
        self.window = window
        #: Most bytes one read delivers (``None``: whatever arrived at once).
        self.segment = segment
        #: Every event of every object, in the order the cores produced them.
        self.trace: list[TraceEntry] = []
        self._now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._running = False
        self._links: dict[frozenset[str], Link] = {}
        self._cuts: set[frozenset[str]] = set()
        self._owners: dict[str, Host] = {}
        self._hosts: dict[str, Host] = {}
        self._names: dict[int, str] = {}
        self._kinds: dict[str, itertools.count[int]] = {}
        self._sockets: dict[VirtualSocket, None] = {}
        #: Where objects made with ``network=net`` (a Network) live: loopback only.
        self.localhost = self.host("localhost")

    # -- clock and tasks ---------------------------------------------------------------

    @property
    def now(self) -> float:
        """The virtual clock, in seconds from the network's creation."""
        return self._now

    @property
    def running(self) -> bool:
        """Inside :meth:`run` or :meth:`advance` (a callback is running, or a task)."""
        return self._running

    def at(self, when: float, task: Callable[[], None]) -> None:
        """Run *task* at virtual time *when* (now, if that has passed)."""
        heapq.heappush(self._queue, (max(when, self._now), next(self._order), task))

    def soon(self, task: Callable[[], None]) -> None:
        """Run *task* now, after the tasks already due."""
        self.at(self._now, task)

    def next_time(self) -> float | None:
        """When the next task is due (``None``: nothing is scheduled)."""
        return self._queue[0][0] if self._queue else None

    def due(self) -> bool:
        """Something is due now: :meth:`run` would do something."""
        return bool(self._queue) and self._queue[0][0] <= self._now

    def run(self) -> None:
        """Run every task that is due now (and those they make due now).
        The clock does not move."""
        self._run_until(self._now)

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* forward, running each task at its time."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._run_until(self._now + seconds)

    def _run_until(self, end: float) -> None:
        if self._running:
            raise RuntimeError("the network is already running (called from a callback?)")
        self._running = True
        try:
            queue = self._queue
            while queue and queue[0][0] <= end:
                when, _, task = heapq.heappop(queue)
                self._now = when
                task()
            self._now = end
        finally:
            self._running = False

    def settle(self) -> None:
        """:meth:`run`, unless running already (a blocking call from a callback
        leaves its rest to the run it is in)."""
        if not self._running:
            self.run()

    # -- hosts, links, faults ----------------------------------------------------------

    def host(self, name: str, *addresses: str, link: str = "lan") -> Host:
        """The host called *name*, made on first use with an ``eth0`` holding
        *addresses* on *link* (declare more with :meth:`Host.interface`)."""
        found = self._hosts.get(name)
        if found is not None:
            if addresses:
                raise ValueError(f"host {name!r} exists already")
            return found
        made = self._hosts[name] = Host(self, name)
        if addresses:
            made.interface("eth0", *addresses, link=link)
        return made

    @property
    def hosts(self) -> list[Host]:
        """Every host, in the order they were made."""
        return list(self._hosts.values())

    def host_of(self, ip: str) -> Host | None:
        """The host that has address *ip* (loopback ones: none in particular)."""
        return self._owners.get(ip)

    def resolve(self, name: str) -> str | None:
        """Virtual name lookup: an IP as it is; a host's name to its first address."""
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            pass
        host = self._hosts.get(name)
        if host is None:
            return None
        outside = [a for a in host.addresses if not ipaddress.ip_address(a).is_loopback]
        return (outside or host.addresses)[0]

    def link(self, a: Host, b: Host, **settings: Any) -> Link:
        """Set how things fare between hosts *a* and *b* (both ways): any field of
        :class:`Link`; the rest stay the network's defaults."""
        made = attrs.evolve(self.default_link, **settings)
        self._links[frozenset((a.name, b.name))] = made
        return made

    def link_of(self, a: Host, b: Host) -> Link:
        """The settings between *a* and *b*."""
        return self._links.get(frozenset((a.name, b.name)), self.default_link)

    def partition(self, a: Host, b: Host) -> None:
        """Cut *a* off from *b*: bytes between them wait, datagrams are lost,
        connects time out, until :meth:`heal`."""
        self._cuts.add(frozenset((a.name, b.name)))

    def heal(self, a: Host | None = None, b: Host | None = None) -> None:
        """Undo :meth:`partition` of *a* and *b* (no arguments: every one)."""
        if a is None or b is None:
            self._cuts.clear()
        else:
            self._cuts.discard(frozenset((a.name, b.name)))
        for sock in list(self._sockets):
            sock._schedule()

    def partitioned(self, a: Host, b: Host) -> bool:
        """*a* and *b* cannot reach each other."""
        return a is not b and frozenset((a.name, b.name)) in self._cuts

    def _socket_of(self, client: Any) -> VirtualSocket:
        sock = getattr(client, "_sock", None)
        if not isinstance(sock, VirtualSocket):
            raise ValueError(f"{client!r} is not connected on this network")
        return sock

    def reset(self, client: Any) -> None:
        """Reset *client*'s connection, as a middlebox would: both ends get an RST now."""
        sock = self._socket_of(client)
        peer = sock.peer
        for end in (sock, peer):
            if end is not None and not end.closed:
                end._inbox.clear()
                end.unread = 0
                end._inbox.append((self._now, None))
                end._schedule()

    def stall(self, client: Any) -> None:
        """*client*'s peer stops reading: what *client* sends waits, once ``window``
        bytes are unread (so its ``send_timeout`` and ``max_pending`` act)."""
        peer = self._socket_of(client).peer
        if peer is not None:
            peer.stalled = True

    def resume(self, client: Any) -> None:
        """*client*'s peer reads again (after :meth:`stall`)."""
        peer = self._socket_of(client).peer
        if peer is not None:
            peer.stalled = False
            peer._schedule()

    def in_flight(self, client: Any) -> int:
        """Bytes *client* has written that its peer has not read yet."""
        peer = self._socket_of(client).peer
        return peer.unread if peer is not None else 0

    # -- connections -------------------------------------------------------------------

    def connect(self, source: Host, name: str, port: int) -> VirtualSocket:
        """Dial ``(name, port)`` from *source*: our end of the new connection, its
        other end handed to the listening server; ``OSError`` as an OS's connect."""
        ip = self.resolve(name)
        if ip is None:
            raise OSError(errno.ENOENT, f"{name!r} does not resolve")
        local = ipaddress.ip_address(ip).is_loopback or ip in source.addresses
        target = source if local else self.host_of(ip)
        if target is None:
            raise OSError(errno.EHOSTUNREACH, "no route to host")
        if self.partitioned(source, target):
            raise TimeoutError(errno.ETIMEDOUT, "connection timed out (partitioned)")
        listener = next((s for s in target.listeners if s._takes(ip, port)), None)
        if listener is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
        ours = VirtualSocket(self, source, (source.source_for(ip), source.port()), (ip, port))
        theirs = VirtualSocket(self, target, (ip, port), ours.address)
        ours.peer, theirs.peer = theirs, ours
        self._sockets[ours] = self._sockets[theirs] = None
        if not listener._accept(theirs):
            ours.close()
            theirs.close()
            raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
        return ours

    # -- datagrams ---------------------------------------------------------------------

    def admits(
        self, host: Host, memberships: Iterable[Any], group: str, sender: str, at: Interface
    ) -> bool:
        """A socket of *host* with *memberships* takes a datagram to *group* from
        *sender* that arrived on *at* (a join on the OS's choice is one on the
        host's default interface), as the OS's filter decides."""
        version = 6 if ":" in group else 4
        default = host.default_interface(version).name
        for member in memberships:
            if member.group != group or member.source not in (None, sender):
                continue
            name = default if member.interface in ("0.0.0.0", "::") else member.interface
            if name == at.name:
                return True
        return False

    def multicast(
        self,
        source: Host,
        through: Interface,
        sender: Address,
        target: Address,
        payload: bytes,
        *,
        ttl: int,
        loopback: bool,
    ) -> None:
        """Send one datagram from *sender* out of *through* on host *source*."""
        link = source.link_name(through)
        for host in self._hosts.values():
            if host is source:
                if not loopback:
                    continue
                arrivals = [through]
            else:
                if ttl < 1 or self.partitioned(source, host):
                    continue
                arrivals = [i for i in host.interfaces if i.up and host.link_name(i) == link]
            settings = self.link_of(source, host)
            for interface in arrivals:
                for delay in self._copies(settings):
                    self.at(
                        self._now + delay,
                        _Arrival(host, interface, sender, target, payload),
                    )

    def _copies(self, link: Link) -> list[float]:
        """The delays of the copies of one datagram that arrive (none: lost)."""
        draw = self.random.random
        if link.loss and draw() < link.loss:
            return []
        copies = 2 if link.duplicate and draw() < link.duplicate else 1
        delays = []
        for _ in range(copies):
            late = link.reorder and draw() < link.reorder
            delays.append(link.latency + (link.reorder_delay if late else 0.0))
        return delays

    # -- objects and the trace ---------------------------------------------------------

    def TcpServer(self, *args: Any, **kwargs: Any) -> memory.TcpServer:
        """``memory.TcpServer(..., network=net)``: on :attr:`localhost`."""
        from . import memory

        return memory.TcpServer(*args, network=self.localhost, **kwargs)

    def TcpClient(self, *args: Any, **kwargs: Any) -> memory.TcpClient:
        """``memory.TcpClient(..., network=net)``: on :attr:`localhost`."""
        from . import memory

        return memory.TcpClient(*args, network=self.localhost, **kwargs)

    def CastReceiver(self, *args: Any, **kwargs: Any) -> memory.CastReceiver:
        """``memory.CastReceiver(..., network=net)``: on :attr:`localhost`."""
        from . import memory

        return memory.CastReceiver(*args, network=self.localhost, **kwargs)

    def CastSender(self, *args: Any, **kwargs: Any) -> memory.CastSender:
        """``memory.CastSender(..., network=net)``: on :attr:`localhost`."""
        from . import memory

        return memory.CastSender(*args, network=self.localhost, **kwargs)

    def name(self, obj: object) -> str:
        """*obj*'s name in the trace, given when it joined the network."""
        return self._names.get(id(obj), f"?{type(obj).__name__}")

    def register(self, obj: object) -> str:
        """Name *obj* (``Kind#n``, in the order objects are made)."""
        kind = type(obj).__name__
        counter = self._kinds.setdefault(kind, itertools.count(1))
        name = self._names[id(obj)] = f"{kind}#{next(counter)}"
        return name

    def record(self, name: str, events: Sequence[StreamEvent]) -> None:
        """Append *events* of the object called *name* to :attr:`trace`."""
        now = self._now
        self.trace.extend(TraceEntry(time=now, name=name, event=e) for e in events)

    def trace_lines(self) -> list[str]:
        """:attr:`trace` as text, one line an event (compare runs with it)."""
        return [str(entry) for entry in self.trace]


class _Arrival:
    """One datagram copy reaching *interface* of *host*: every listening
    receiver there whose memberships take it gets it."""

    __slots__ = ("host", "interface", "payload", "sender", "target")

    def __init__(
        self, host: Host, interface: Interface, sender: Address, target: Address, payload: bytes
    ) -> None:
        self.host = host
        self.interface = interface
        self.sender = sender
        self.target = target
        self.payload = payload

    def __call__(self) -> None:
        for receiver in list(self.host.receivers):
            receiver._datagram(self.payload, self.sender, self.target, self.interface)
