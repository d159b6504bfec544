"""UDP multicast: a receiver's group membership and a sender's rules.

Rules of this module:

* a membership is keyed ``(group, interface, source)``: the interface by its
  name (or the unspecified address, for the OS's choice), the source ``None``
  for any-source; ``memberships`` lists them in join order, ``groups`` their
  groups once each; they survive ``stop``/``start`` (stop leaves the groups on
  the OS side, start joins them again);
* ``joinGroup``/``dropGroup`` are all-or-nothing: every key is checked (1004
  not multicast, 1007 no such interface, 1002 already joined, named twice, or
  any-source mixed with source-specific on one group and interface, 1003 not
  joined) before anything changes; while listening, the binding applies the
  plan's OS changes and undoes the applied ones if one fails, then commits;
* an interface named by address, name or index is looked up in the host's
  table, which the binding reads when asked (:mod:`.interfaces`); a
  link-local IPv6 group (``ff02::/16``) must name one;
* a plan is valid only for the membership it was made from (a generation
  number, bumped by every commit, start, listening and stop), so a stale plan
  cannot be committed; changes committed while starting carry no OS change:
  the joins the binding applies are read (:meth:`ReceiverModel.joins`) after
  binding, right before :meth:`ReceiverModel.listening`;
* a datagram longer than ``recvBuffer`` is flagged ``truncated`` and logged,
  never passed off as whole;
* the sender validates group (1004), port, TTL 0-255 and payload size before
  anything is written.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import logging
from collections.abc import Sequence
from enum import Enum, auto
from typing import Final

import attrs

from .addresses import (
    normalize_sockaddr,
    parse_group,
    parse_groups,
    validate_ip,
    validate_port,
)
from .callbacks import SENT_SLOT
from .dispatch import Dispatcher
from .errors import ErrorCode, LocalProtocolError, OsContext, SocketError, translate_os_error
from .events import Address, Data, Event, Received, Started, Stopped
from .framing import (
    DEFAULT_RECV_BUFFER,
    encode_payload,
    validate_encoding,
    validate_recv_buffer,
)
from .interfaces import (
    ALL,
    NO_TABLE,
    Interface,
    InterfaceSpec,
    InterfaceTable,
    Resolved,
    resolve_interfaces,
    validate_interface_spec,
)
from .ledger import SendLedger
from .platforms import ANCILLARY_SIZE, MulticastOS, SocketOption, multicast_os
from .stats import Stats

__all__ = [
    "MAX_DATAGRAM",
    "GroupChange",
    "Membership",
    "MembershipPlan",
    "ReceiverModel",
    "ReceiverState",
    "SenderModel",
]

logger = logging.getLogger("jfsocket")

#: Largest UDP payload over IPv4.
MAX_DATAGRAM: Final = 65507


@attrs.frozen
class Membership:
    """One membership of a receiver: a group, on one interface, from one source."""

    group: str
    #: The interface's name, or the unspecified address (``'0.0.0.0'``,
    #: ``'::'``) where the OS picks it.
    interface: str
    #: The one sender accepted (source-specific multicast); ``None``: any.
    source: str | None = None


@attrs.frozen(kw_only=True)
class GroupChange:
    """One OS membership change for the binding to apply."""

    join: bool
    group: str
    #: The interface's name (or the unspecified address), for messages.
    interface: str
    #: IPv4: the interface's local address ``ip_mreq`` names it by.
    address: str
    #: The interface index (0: the OS picks).
    index: int = 0
    source: str | None = None

    def inverse(self) -> GroupChange:
        """The change that undoes this one."""
        return attrs.evolve(self, join=not self.join)

    def option(self, system: MulticastOS) -> SocketOption:
        """The ``setsockopt`` arguments that make this change on *system*."""
        return system.membership(self.join, self.group, self.address, self.index, self.source)

    def done_anyway(self, exc: BaseException) -> bool:
        """The OS refused this leave because the membership is gone already
        (its interface was removed, and the kernel dropped it then)."""
        return not self.join and isinstance(exc, OSError) and exc.errno in _GONE


@attrs.frozen(kw_only=True)
class MembershipPlan:
    """A validated membership change, not yet applied."""

    #: Memberships after the change, each with the join that makes it.
    members: tuple[tuple[Membership, GroupChange], ...]
    #: What the OS must do now (empty while the receiver is not listening).
    changes: tuple[GroupChange, ...]
    generation: int

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups after the change, each once."""
        return tuple(dict.fromkeys(m.group for m, _ in self.members))


def _validate_source(source: object, version: int) -> str | None:
    if source is None:
        return None
    if not isinstance(source, str):
        raise TypeError(f"source must be a str (a unicast address), not {type(source).__name__}")
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        raise ValueError(f"source must be a unicast IP address, got {source!r}") from None
    if (
        address.version != version
        or address.is_multicast
        or address.is_unspecified
        or address == _LIMITED_BROADCAST
    ):
        raise ValueError(
            f"source must be a unicast IPv{version} address (the group's family), got {source!r}"
        )
    return str(address)


#: What a leave answers when there is nothing left to leave.
_GONE: Final = frozenset({_errno.ENODEV, _errno.ENXIO, _errno.EADDRNOTAVAIL})

_LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")


def _unaddressed(target: Resolved, version: int) -> bool:
    """An IPv4 join or send through an interface with no IPv4 address, which
    a structure naming interfaces by address cannot express."""
    return version == 4 and target.interface is not None and target.address == "0.0.0.0"


def _no_ipv4(target: Resolved, what: str) -> SocketError:
    name = target.interface.name if target.interface is not None else target.address
    return SocketError(
        ErrorCode.ADDRESS_UNAVAILABLE,
        ValueError(f"interface {name!r} has no IPv4 address to {what} by on this OS"),
    )


def _link_scoped(group: str) -> bool:
    """An IPv6 group of interface-local (ffx1::) or link-local (ffx2::) scope."""
    packed = ipaddress.ip_address(group).packed
    return len(packed) == 16 and packed[1] & 0x0F in (1, 2)


class ReceiverState(Enum):
    """Where a receiver is in its life."""

    STOPPED = auto()
    STARTING = auto()
    LISTENING = auto()


def _family_of(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _describe(key: Membership) -> str:
    where = f"{key.group} on {key.interface}"
    return where if key.source is None else f"{where} from {key.source}"


class ReceiverModel:
    """The sans-I/O model of a multicast receiver."""

    def __init__(
        self,
        source: object,
        host: object,
        *,
        interface: object = "0.0.0.0",
        encoding: object = "utf-8",
        recv_buffer: object = DEFAULT_RECV_BUFFER,
        interfaces: InterfaceTable = NO_TABLE,
        system: MulticastOS | None = None,
    ) -> None:
        self._source = source
        if isinstance(host, tuple):
            if len(host) != 2:
                raise TypeError(f"host must be a port or an (ip, port) tuple, got {host!r}")
            self.address: Address = (
                validate_ip(host[0], name="host[0]"),
                validate_port(host[1], name="host[1]"),
            )
        else:
            self.address = ("0.0.0.0", validate_port(host, name="host"))
        self._version = _family_of(self.address[0])
        spec = validate_interface_spec(interface)
        if spec is ALL:
            raise ValueError("interface must name one interface (ALL is for joinGroup)")
        if spec == "0.0.0.0" and self._version == 6:
            spec = "::"  # the default "any interface", in the host's family
        if isinstance(spec, str) and _is_address(spec) and _family_of(spec) != self._version:
            raise ValueError(f"interface {spec} and host {self.address[0]} differ in IP version")
        #: Where groups are joined when ``joinGroup`` names no interface.
        self.interface: InterfaceSpec = spec
        self.encoding = validate_encoding(encoding)
        self._recv_buffer = validate_recv_buffer(recv_buffer)
        self._table = interfaces
        self._system = system if system is not None else multicast_os("linux", 8)
        #: Interfaces by index, for where datagrams arrived (refilled on a miss).
        self._by_index: dict[int, Interface] = {}
        self._members: dict[Membership, GroupChange] = {}
        self._generation = 0
        self._state = ReceiverState.STOPPED
        self._host: Address | None = None
        #: Datagrams delivered, their bytes (after any cut), and how many were cut.
        self.datagrams_in = 0
        self.bytes_in = 0
        self.truncated = 0

    @property
    def state(self) -> ReceiverState:
        """The current :class:`ReceiverState`."""
        return self._state

    @property
    def is_listening(self) -> bool:
        """The seed's ``isAlive``."""
        return self._state is ReceiverState.LISTENING

    @property
    def groups(self) -> list[str]:
        """The groups joined (on any interface), each once, in join order."""
        return list(dict.fromkeys(m.group for m in self._members))

    @property
    def memberships(self) -> list[Membership]:
        """Every membership, in join order."""
        return list(self._members)

    @property
    def host(self) -> Address:
        """The address bound once started, else the one asked for."""
        return self._host if self._host is not None else self.address

    @property
    def recv_buffer(self) -> int:
        """Most bytes of one datagram delivered (``recvBuffer``)."""
        return self._recv_buffer

    @recv_buffer.setter
    def recv_buffer(self, value: object) -> None:
        self._recv_buffer = validate_recv_buffer(value)

    def ancillary(self, queue: Dispatcher) -> int:
        """The ancillary buffer for a ``recvmsg`` made once the socket is
        readable: room for where the datagram arrived when a stream will see
        it, else none (no callback is told, and parsing it costs a tenth of
        the read).  A reader that blocks in ``recvmsg`` takes
        :data:`ANCILLARY_SIZE` always: a stream may open while it waits."""
        return ANCILLARY_SIZE if queue.streamed else 0

    @property
    def pktinfo(self) -> tuple[int, int] | None:
        """``(level, option)`` to set to 1 so that datagrams say where they arrived."""
        return self._system.pktinfo(self._version)

    # -- membership ------------------------------------------------------------

    def _checked(self, ips: Sequence[object]) -> list[str]:
        groups = parse_groups(ips)
        for group in groups:
            if _family_of(group) != self._version:
                raise SocketError(
                    ErrorCode.NOT_MULTICAST,
                    ValueError(
                        f"{group} is IPv{_family_of(group)}; this receiver is IPv{self._version}"
                    ),
                )
        return groups

    def _resolve(self, interface: object) -> list[Resolved]:
        spec = self.interface if interface is None else validate_interface_spec(interface)
        found = resolve_interfaces(spec, self._version, self._table)
        for resolved in found:
            if resolved.interface is not None:
                self._by_index[resolved.interface.index] = resolved.interface
        return found

    def _plan(
        self, changes: list[GroupChange], new: dict[Membership, GroupChange]
    ) -> MembershipPlan:
        live = self._state is ReceiverState.LISTENING
        return MembershipPlan(
            members=tuple(new.items()),
            changes=tuple(changes) if live else (),
            generation=self._generation,
        )

    def plan_join(
        self, *ips: object, interface: object = None, source: object = None
    ) -> MembershipPlan:
        """``joinGroup(*ips, interface=, source=)`` checked whole: 1004, the
        interface (1007), then 1002; nothing changes yet."""
        groups = self._checked(ips)
        origin = _validate_source(source, self._version)
        targets = self._resolve(interface)
        for target in targets:
            # Linux's ip_mreqn names the interface by index; every other
            # structure (and every SSM one) by its IPv4 address.
            if _unaddressed(target, self._version) and (
                origin is not None or not self._system.mreqn
            ):
                raise _no_ipv4(target, "join")
        new = dict(self._members)
        changes: list[GroupChange] = []
        for group in groups:
            for target in targets:
                if target.interface is None and _link_scoped(group):
                    raise ValueError(
                        f"interface: {group} is link-scoped; name the interface to join it on"
                    )
                key = Membership(group, target.key, origin)
                if key in new:
                    raise SocketError(
                        ErrorCode.ADDRESS_EXISTS,
                        ValueError(f"{_describe(key)} is already joined"),
                    )
                if any(
                    m.group == group
                    and m.interface == key.interface
                    and (m.source is None) != (origin is None)
                    for m in new
                ):
                    raise SocketError(
                        ErrorCode.ADDRESS_EXISTS,
                        ValueError(
                            f"{group} on {key.interface} is joined "
                            + ("from given sources" if origin is None else "from any source")
                            + "; any-source and source-specific joins do not mix"
                        ),
                    )
                change = GroupChange(
                    join=True,
                    group=group,
                    interface=target.key,
                    address=target.address,
                    index=target.index,
                    source=origin,
                )
                new[key] = change
                changes.append(change)
        return self._plan(changes, new)

    def plan_drop(
        self, *ips: object, interface: object = None, source: object = None
    ) -> MembershipPlan:
        """``dropGroup(*ips, interface=, source=)`` checked whole: 1004, then
        1003; :data:`ALL` leaves the groups on every interface."""
        groups = self._checked(ips)
        origin = _validate_source(source, self._version)
        new = dict(self._members)
        changes: list[GroupChange] = []
        for group in groups:
            if interface is ALL:
                keys = [m for m in new if m.group == group and m.source == origin]
            else:
                keys = [Membership(group, name, origin) for name in self._names(interface)]
            if not keys or any(k not in new for k in keys):
                missing = next((k for k in keys if k not in new), Membership(group, "ALL", origin))
                raise SocketError(
                    ErrorCode.ADDRESS_NOT_FOUND, ValueError(f"{_describe(missing)} is not joined")
                )
            for key in keys:
                changes.append(new.pop(key).inverse())
        return self._plan(changes, new)

    def _names(self, interface: object) -> list[str]:
        """The membership names *interface* stands for when leaving: a name
        already joined needs no table (the interface may be gone by now)."""
        spec = self.interface if interface is None else validate_interface_spec(interface)
        if isinstance(spec, str) and any(m.interface == spec for m in self._members):
            return [spec]
        return [r.key for r in resolve_interfaces(spec, self._version, self._table)]

    def commit(self, plan: MembershipPlan) -> None:
        """The plan's OS changes are applied (or there were none): adopt it."""
        if plan.generation != self._generation:
            raise LocalProtocolError("membership changed since this plan was made")
        self._members = dict(plan.members)
        self._generation += 1

    def membership_failed(self, exc: BaseException) -> SocketError:
        """The OS refused a change (already undone by the binding): the error to raise."""
        return SocketError(ErrorCode.ADDRESS_UNAVAILABLE, exc)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Address:
        """User ``start()``: the address to bind; 1000 unless STOPPED.

        Plans made before are stale from here on.  Once bound, the binding
        asks :meth:`joins` and applies them, then reports :meth:`listening`,
        with nothing in between that lets another change in.
        """
        if self._state is not ReceiverState.STOPPED:
            raise SocketError(ErrorCode.CONNECTION_EXISTS)
        self._state = ReceiverState.STARTING
        self._generation += 1
        return self.address

    def joins(self) -> tuple[GroupChange, ...]:
        """While starting: a join for every group configured now."""
        if self._state is not ReceiverState.STARTING:
            raise LocalProtocolError(f"joins in state {self._state.name}")
        return tuple(self._members.values())

    def start_failed(self, exc: BaseException) -> SocketError:
        """Binding or joining failed (the binding closed its socket): the error to raise."""
        if self._state is not ReceiverState.STARTING:
            raise LocalProtocolError(f"start_failed in state {self._state.name}")
        self._state = ReceiverState.STOPPED
        if isinstance(exc, SocketError):
            return exc
        return translate_os_error(OsContext.BIND, exc)

    def listening(self, host: Address) -> list[Event]:
        """Bound on *host* with every group joined: STARTED."""
        if self._state is not ReceiverState.STARTING:
            raise LocalProtocolError(f"listening in state {self._state.name}")
        self._state = ReceiverState.LISTENING
        self._host = host
        self._generation += 1  # plans made while stopped carry no OS changes
        return [Started(source=self._source, host=host)]

    def stop(self) -> tuple[GroupChange, ...] | None:
        """User ``stop()``: the drops to apply, or ``None`` when not listening."""
        if self._state is not ReceiverState.LISTENING:
            return None
        self._state = ReceiverState.STOPPED
        self._generation += 1
        return tuple(change.inverse() for change in self._members.values())

    def stopped(self) -> list[Event]:
        """The socket is closed: STOPPED."""
        return [Stopped(source=self._source)]

    def stats(self) -> Stats:
        """What this receiver has received so far."""
        return Stats(
            bytes_in=self.bytes_in, messages_in=self.datagrams_in, truncated=self.truncated
        )

    # -- data ------------------------------------------------------------------

    def receive_datagram(
        self,
        data: bytes,
        remote: Address,
        *,
        truncated: bool = False,
        ancdata: object = None,
        arrival: tuple[int, str] | None = None,
    ) -> list[Event]:
        """One datagram: RECEIVED (flagged and logged if it was cut).

        *truncated*: the OS cut it at ``recv_buffer`` (MSG_TRUNC).  A binding
        that reads whole datagrams passes them as they are: one longer than
        ``recv_buffer`` is cut here, the same way.  *ancdata*: ``recvmsg``'s
        ancillary data, which says where it arrived (see :attr:`pktinfo`);
        or *arrival*, ``(interface index, destination group)``, from a binding
        that knows it without asking the OS (the memory binding).
        """
        if len(data) > self._recv_buffer:
            data = data[: self._recv_buffer]
            truncated = True
        self.datagrams_in += 1
        self.bytes_in += len(data)
        if truncated:
            self.truncated += 1
            logger.warning(
                "datagram from %s:%d is longer than recvBuffer=%d and was cut; "
                "raise recvBuffer to receive it whole",
                remote[0],
                remote[1],
                self._recv_buffer,
            )
        payload: str | bytes = (
            data if self.encoding is None else data.decode(self.encoding, "surrogateescape")
        )
        if ancdata:
            arrival = self._system.arrival(ancdata)
        if arrival is None:
            return [Received(source=self._source, data=payload, remote=remote, truncated=truncated)]
        return [
            Received(
                source=self._source,
                data=payload,
                remote=remote,
                truncated=truncated,
                interface=self._interface_at(arrival[0]),
                group=arrival[1],
            )
        ]

    def _interface_at(self, index: int) -> Interface:
        """The interface with *index*: read the table again once for one not
        seen yet (a name is empty if the OS no longer lists it)."""
        found = self._by_index.get(index)
        if found is None:
            for interface in self._table():
                self._by_index[interface.index] = interface
            found = self._by_index.get(index)
            if found is None:
                found = self._by_index[index] = Interface(name="", index=index)
        return found

    def feed(
        self,
        data: bytes,
        sockaddr: object,
        queue: Dispatcher,
        *,
        truncated: bool = False,
        ancdata: object = None,
    ) -> bool:
        """:meth:`receive_datagram` from the OS's *sockaddr*, pushed onto *queue*:
        ``True`` if the caller must drain.  A whole datagram no stream sees goes
        to the callback as its arguments: no event is built, and its sender's
        address is not even normalised."""
        if truncated or len(data) > self._recv_buffer or queue.streamed:
            remote = normalize_sockaddr(sockaddr)
            return queue.push(
                self.receive_datagram(data, remote, truncated=truncated, ancdata=ancdata)
            )
        self.datagrams_in += 1
        self.bytes_in += len(data)
        encoding = self.encoding
        if encoding is None:
            return queue.received(self._source, [data])
        return queue.received(self._source, [data.decode(encoding, "surrogateescape")])


#: How many validated remotes a sender remembers.
_TARGETS_KEPT: Final = 256


def _plain_remote(remote: object) -> bool:
    """A ``(str, int)`` tuple: hashable, and its port not a bool equal to an int."""
    return (
        type(remote) is tuple
        and len(remote) == 2
        and type(remote[0]) is str
        and type(remote[1]) is int
    )


class SenderModel:
    """The sans-I/O model of a multicast sender."""

    def __init__(
        self,
        source: object,
        *,
        ttl: object = 1,
        interface: object = None,
        loopback: object = True,
        encoding: object = "utf-8",
        interfaces: InterfaceTable = NO_TABLE,
        system: MulticastOS | None = None,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise TypeError(f"ttl must be an int, not {type(ttl).__name__}")
        if not 0 <= ttl <= 255:
            raise ValueError(f"ttl must be in 0-255, got {ttl}")
        if not isinstance(loopback, bool):
            raise TypeError(f"loopback must be a bool, not {type(loopback).__name__}")
        self.ttl: int = ttl
        spec = None if interface is None else validate_interface_spec(interface)
        if spec is ALL:
            raise ValueError("interface must name one interface (a sender sends through one)")
        #: The interface datagrams leave by, as given (``None``: the OS's choice).
        self.interface: InterfaceSpec | None = spec
        self._system = system if system is not None else multicast_os("linux", 8)
        self._through: Resolved | None = None
        if spec is not None and spec not in (0, "0.0.0.0", "::"):
            version = 6 if isinstance(spec, str) and ":" in spec else 4
            (self._through,) = resolve_interfaces(spec, version, interfaces)
        self.loopback: bool = loopback
        self.encoding = validate_encoding(encoding)
        self._ledger = SendLedger(source)
        #: Remotes already validated: parsing a group per datagram costs more than sending it.
        self._targets: dict[object, Address] = {}

    def interface_option(self, version: int) -> SocketOption | None:
        """The option that sends IP *version* datagrams through :attr:`interface`
        (``None``: leave it to the OS)."""
        through = self._through
        if through is None:
            return None
        address = through.address
        if version == 4 and ":" in address:  # named by its IPv6 address: its IPv4 one
            interface = through.interface
            address = (interface.first_address(4) if interface else None) or "0.0.0.0"
        # Only Linux's ip_mreqn names an interface without an IPv4 address (by index).
        if version == 4 and address == "0.0.0.0" and through.interface and not self._system.mreqn:
            raise _no_ipv4(through, "send")
        return self._system.multicast_if(version, address, through.index)

    def send(self, remote: object, data: Data) -> tuple[int, bytes, Address]:
        """User ``send(remote, data)``: ``(ticket, payload, (group, port))``."""
        target = self._targets.get(remote) if _plain_remote(remote) else None
        if target is None:
            target = self._check_remote(remote)
        payload = encode_payload(data, self.encoding)
        if len(payload) > MAX_DATAGRAM:
            raise ValueError(
                f"data is {len(payload)} bytes; a datagram holds at most {MAX_DATAGRAM}"
            )
        return self._ledger.open(data, len(payload)), payload, target

    def _check_remote(self, remote: object) -> Address:
        """Validate *remote* as ``(group, port)``; remember it (a sender sends to few)."""
        if not isinstance(remote, tuple) or len(remote) != 2:
            raise TypeError(f"remote must be a (group, port) tuple, got {remote!r}")
        group = parse_group(remote[0])
        port = validate_port(remote[1], name="remote[1]")
        if port == 0:
            raise ValueError("remote[1] must be a port in 1-65535, got 0")
        spec = self.interface
        if isinstance(spec, str) and _is_address(spec) and _family_of(spec) != _family_of(group):
            raise SocketError(
                ErrorCode.NOT_MULTICAST,
                ValueError(f"{group} is not of the IP version of interface {spec}"),
            )
        self.interface_option(_family_of(group))  # 1007 now, before a send is accepted
        if _plain_remote(remote):
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            self._targets[remote] = (group, port)
        return group, port

    def stats(self) -> Stats:
        """What this sender has sent so far."""
        ledger = self._ledger
        return Stats(
            bytes_out=ledger.sent_bytes,
            messages_out=ledger.sent_count,
            sends_failed=ledger.failed_count,
        )

    def sent(self, ticket: int) -> list[Event]:
        """The datagram went out: SENDED."""
        return list(self._ledger.sent(ticket))

    def settle(self, ticket: int, count: int, payload: bytes, queue: Dispatcher) -> bool:
        """:meth:`written`, pushed onto *queue*: ``True`` if the caller must drain.
        A SENDED nobody would see (no callback, no stream) is not made."""
        if count == len(payload) and queue.quiet(SENT_SLOT):
            self._ledger.settle(ticket)
            return False
        return queue.push(self.written(ticket, count, payload))

    def written(self, ticket: int, count: int, payload: bytes) -> list[Event]:
        """``sendto`` returned *count* for *payload*: SENDED if it took all of it,
        else SENDFAIL (a datagram is never sent in part)."""
        if count == len(payload):
            return list(self._ledger.sent(ticket))
        error = OSError(_errno.EMSGSIZE, f"only {count} of {len(payload)} bytes sent")
        return list(self._ledger.failed(ticket, error))

    def send_failed(self, ticket: int, exc: BaseException) -> list[Event]:
        """It did not: SENDFAIL."""
        return list(self._ledger.failed(ticket, exc))
