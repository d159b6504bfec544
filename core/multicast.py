"""UDP multicast: a receiver's group membership and a sender's rules.

Rules of this module:

* ``groups`` is the receiver's configured membership, in join order; it
  survives ``stop``/``start`` (stop leaves the groups on the OS side, start
  joins them again);
* ``joinGroup``/``dropGroup`` are all-or-nothing: every address is checked
  (1004 not multicast, 1002 already joined or named twice, 1003 not joined)
  before anything changes; while listening, the binding applies the plan's OS
  changes and undoes the applied ones if one fails, then commits;
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
from .ledger import SendLedger

__all__ = [
    "MAX_DATAGRAM",
    "GroupChange",
    "MembershipPlan",
    "ReceiverModel",
    "ReceiverState",
    "SenderModel",
]

logger = logging.getLogger("jfsocket")

#: Largest UDP payload over IPv4.
MAX_DATAGRAM: Final = 65507


@attrs.frozen(kw_only=True)
class GroupChange:
    """One OS membership change for the binding to apply."""

    join: bool
    group: str
    interface: str

    def inverse(self) -> GroupChange:
        """The change that undoes this one."""
        return GroupChange(join=not self.join, group=self.group, interface=self.interface)


@attrs.frozen(kw_only=True)
class MembershipPlan:
    """A validated membership change, not yet applied."""

    #: Groups after the change.
    groups: tuple[str, ...]
    #: What the OS must do now (empty while the receiver is not listening).
    changes: tuple[GroupChange, ...]
    generation: int


class ReceiverState(Enum):
    """Where a receiver is in its life."""

    STOPPED = auto()
    STARTING = auto()
    LISTENING = auto()


def _family_of(ip: str) -> int:
    return ipaddress.ip_address(ip).version


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
        #: Local interface address on which groups are joined.
        self.interface = validate_ip(interface, name="interface")
        self.encoding = validate_encoding(encoding)
        self._recv_buffer = validate_recv_buffer(recv_buffer)
        self._version = _family_of(self.address[0])
        if self._version == 6 and self.interface == "0.0.0.0":
            self.interface = "::"  # the default "any interface", in the host's family
        if _family_of(self.interface) != self._version:
            raise ValueError(
                f"interface {self.interface} and host {self.address[0]} differ in IP version"
            )
        self._groups: list[str] = []
        self._generation = 0
        self._state = ReceiverState.STOPPED
        self._host: Address | None = None

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
        """A copy of the joined groups."""
        return list(self._groups)

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

    def _plan(self, groups: list[str], join: bool, new: list[str]) -> MembershipPlan:
        live = self._state is ReceiverState.LISTENING
        changes = (
            tuple(GroupChange(join=join, group=g, interface=self.interface) for g in groups)
            if live
            else ()
        )
        return MembershipPlan(groups=tuple(new), changes=changes, generation=self._generation)

    def plan_join(self, *ips: object) -> MembershipPlan:
        """``joinGroup(*ips)`` checked whole: 1004, then 1002; nothing changes yet."""
        groups = self._checked(ips)
        seen = set(self._groups)
        for group in groups:
            if group in seen:
                raise SocketError(
                    ErrorCode.ADDRESS_EXISTS, ValueError(f"{group} is already joined")
                )
            seen.add(group)
        return self._plan(groups, True, self._groups + groups)

    def plan_drop(self, *ips: object) -> MembershipPlan:
        """``dropGroup(*ips)`` checked whole: 1004, then 1003; nothing changes yet."""
        groups = self._checked(ips)
        remaining = list(self._groups)
        for group in groups:
            if group not in remaining:
                raise SocketError(ErrorCode.ADDRESS_NOT_FOUND, ValueError(f"{group} is not joined"))
            remaining.remove(group)
        return self._plan(groups, False, remaining)

    def commit(self, plan: MembershipPlan) -> None:
        """The plan's OS changes are applied (or there were none): adopt it."""
        if plan.generation != self._generation:
            raise LocalProtocolError("membership changed since this plan was made")
        self._groups = list(plan.groups)
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
        return tuple(
            GroupChange(join=True, group=g, interface=self.interface) for g in self._groups
        )

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
        return tuple(
            GroupChange(join=False, group=g, interface=self.interface) for g in self._groups
        )

    def stopped(self) -> list[Event]:
        """The socket is closed: STOPPED."""
        return [Stopped(source=self._source)]

    # -- data ------------------------------------------------------------------

    def receive_datagram(
        self, data: bytes, remote: Address, *, truncated: bool = False
    ) -> list[Event]:
        """One datagram: RECEIVED (flagged and logged if it was cut).

        *truncated*: the OS cut it at ``recv_buffer`` (MSG_TRUNC).  A binding
        that reads whole datagrams passes them as they are: one longer than
        ``recv_buffer`` is cut here, the same way.
        """
        if len(data) > self._recv_buffer:
            data = data[: self._recv_buffer]
            truncated = True
        if truncated:
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
        return [Received(source=self._source, data=payload, remote=remote, truncated=truncated)]

    def feed(
        self, data: bytes, sockaddr: object, queue: Dispatcher, *, truncated: bool = False
    ) -> bool:
        """:meth:`receive_datagram` from the OS's *sockaddr*, pushed onto *queue*:
        ``True`` if the caller must drain.  A whole datagram no stream sees goes
        to the callback as its arguments: no event is built, and its sender's
        address is not even normalised."""
        if truncated or len(data) > self._recv_buffer or queue.streamed:
            remote = normalize_sockaddr(sockaddr)
            return queue.push(self.receive_datagram(data, remote, truncated=truncated))
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
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise TypeError(f"ttl must be an int, not {type(ttl).__name__}")
        if not 0 <= ttl <= 255:
            raise ValueError(f"ttl must be in 0-255, got {ttl}")
        if not isinstance(loopback, bool):
            raise TypeError(f"loopback must be a bool, not {type(loopback).__name__}")
        self.ttl: int = ttl
        self.interface: str | None = (
            None if interface is None else validate_ip(interface, name="interface")
        )
        self.loopback: bool = loopback
        self.encoding = validate_encoding(encoding)
        self._ledger = SendLedger(source)
        #: Remotes already validated: parsing a group per datagram costs more than sending it.
        self._targets: dict[object, Address] = {}

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
        return self._ledger.open(data), payload, target

    def _check_remote(self, remote: object) -> Address:
        """Validate *remote* as ``(group, port)``; remember it (a sender sends to few)."""
        if not isinstance(remote, tuple) or len(remote) != 2:
            raise TypeError(f"remote must be a (group, port) tuple, got {remote!r}")
        group = parse_group(remote[0])
        port = validate_port(remote[1], name="remote[1]")
        if port == 0:
            raise ValueError("remote[1] must be a port in 1-65535, got 0")
        if self.interface is not None and _family_of(self.interface) != _family_of(group):
            raise SocketError(
                ErrorCode.NOT_MULTICAST,
                ValueError(f"{group} is not of the IP version of interface {self.interface}"),
            )
        if _plain_remote(remote):
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            self._targets[remote] = (group, port)
        return group, port

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
