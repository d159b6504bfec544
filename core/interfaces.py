"""Network interfaces: the host's table as the binding saw it, and naming one.

Rules of this module:

* the binding reads the host's interfaces (I/O) and hands them over as
  :class:`Interface` records; everything decided about them is decided here,
  so it is tested on made-up tables;
* an interface is named by an address on it, its name (``'eth0'``), its index,
  or :data:`ALL`; the unspecified address (``'0.0.0.0'``, ``'::'``) and index 0
  mean "the one the OS picks" and need no table;
* a name, index or address the table does not have is :class:`SocketError`
  1007, a value of another type ``TypeError`` naming the argument;
* :data:`ALL` is every interface that is up, multicast-capable and has an
  address of the family asked for; none of them is 1007 too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Final, TypeAlias

import attrs

from .errors import ErrorCode, SocketError

__all__ = [
    "ALL",
    "NO_TABLE",
    "AllInterfaces",
    "Interface",
    "InterfaceSpec",
    "InterfaceTable",
    "Resolved",
    "resolve_interfaces",
    "validate_interface_spec",
]


class AllInterfaces(Enum):
    """The type of :data:`ALL`."""

    ALL = "ALL"

    def __repr__(self) -> str:
        return "ALL"


#: Every up, multicast-capable interface with an address of the group's family.
ALL: Final = AllInterfaces.ALL


@attrs.frozen(kw_only=True)
class Interface:
    """One network interface of the host, as the binding read it."""

    name: str
    #: The OS's interface index (never 0).
    index: int
    #: Its unicast addresses, IPv4 and IPv6, normalised as ``str(ip_address(...))``
    #: (no ``%scope``): the binding makes them so.
    addresses: tuple[str, ...] = ()
    up: bool = True
    multicast: bool = True
    loopback: bool = False

    def has_family(self, version: int) -> bool:
        """It has an address of IP *version* (4 or 6)."""
        return any((":" in a) == (version == 6) for a in self.addresses)

    def first_address(self, version: int) -> str | None:
        """Its first address of IP *version*, if any."""
        return next((a for a in self.addresses if (":" in a) == (version == 6)), None)


#: What names an interface: an address, a name, an index, or ALL.
InterfaceSpec: TypeAlias = str | int | AllInterfaces
#: Reads the host's interfaces (the binding's; called only when a name needs it).
InterfaceTable: TypeAlias = Callable[[], Sequence[Interface]]


def _no_table() -> Sequence[Interface]:
    return ()


NO_TABLE: Final[InterfaceTable] = _no_table


@attrs.frozen
class Resolved:
    """An interface named: the record (``None``: the OS's choice) and, for
    IPv4, the local address a join or a sender names it by."""

    interface: Interface | None
    address: str

    @property
    def key(self) -> str:
        """How a membership names it: the interface's name, or the unspecified
        address for the OS's choice."""
        return self.interface.name if self.interface is not None else self.address

    @property
    def index(self) -> int:
        """Its index; 0 for the OS's choice."""
        return self.interface.index if self.interface is not None else 0


def validate_interface_spec(spec: object, *, name: str = "interface") -> InterfaceSpec:
    """*spec* if it can name an interface (type and form only), normalised."""
    if spec is ALL:
        return ALL
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise TypeError(
            f"{name} must be an address, an interface name, an index or ALL, "
            f"not {type(spec).__name__}"
        )
    if isinstance(spec, int):
        if spec < 0:
            raise ValueError(f"{name} must be an interface index >= 0, got {spec}")
        return spec
    if not spec:
        raise ValueError(f"{name} must not be empty")
    try:
        return str(ipaddress.ip_address(spec.partition("%")[0]))
    except ValueError:
        return spec  # a name; whether the host has it is known only from its table


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _unspecified(version: int) -> str:
    return "::" if version == 6 else "0.0.0.0"


def _unknown(spec: object, why: str) -> SocketError:
    return SocketError(ErrorCode.ADDRESS_UNAVAILABLE, ValueError(f"interface {spec!r} {why}"))


def resolve_interfaces(spec: InterfaceSpec, version: int, table: InterfaceTable) -> list[Resolved]:
    """The interfaces *spec* (validated) names for IP *version*; 1007 if none."""
    if spec == 0 or spec == "0.0.0.0" or spec == "::":
        return [Resolved(None, _unspecified(version))]
    interfaces = table()
    if spec is ALL:
        chosen = [
            Resolved(i, i.first_address(version) or _unspecified(version))
            for i in interfaces
            if i.up and i.multicast and i.has_family(version)
        ]
        if not chosen:
            raise _unknown(
                ALL, f"names none: no interface is up, multicast-capable and IPv{version}"
            )
        return chosen
    if isinstance(spec, int):
        found = next((i for i in interfaces if i.index == spec), None)
        if found is None:
            raise _unknown(spec, "is not an interface index of this host")
        return [Resolved(found, found.first_address(version) or _unspecified(version))]
    if _is_ip(spec):
        found = next((i for i in interfaces if spec in i.addresses), None)
        if found is None and not any(i.addresses for i in interfaces):
            # A host whose addresses the binding cannot read: the OS is told
            # the address, which must then be of the family joined.
            if (":" in spec) != (version == 6):
                raise ValueError(f"interface {spec} is not an IPv{version} address")
            return [Resolved(None, spec)]
        if found is None:
            raise _unknown(spec, "is not an address of any interface of this host")
        own = spec if (":" in spec) == (version == 6) else None
        return [Resolved(found, own or found.first_address(version) or _unspecified(version))]
    found = next((i for i in interfaces if i.name == spec), None)
    if found is None:
        raise _unknown(spec, "is not an interface of this host")
    return [Resolved(found, found.first_address(version) or _unspecified(version))]
