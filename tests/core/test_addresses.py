"""Ports, IP literals, host names, multicast groups."""

from __future__ import annotations

import ipaddress

import pytest
from jfsocket.core import (
    SocketError,
    normalize_sockaddr,
    parse_group,
    parse_groups,
    validate_host,
    validate_ip,
    validate_port,
    validate_remote,
)


@pytest.mark.parametrize("port", [0, 1, 8080, 65535])
def test_valid_ports(port: int) -> None:
    """0-65535 are ports (0: the OS chooses)."""
    assert validate_port(port) == port


@pytest.mark.parametrize("port", [-1, 65536, 10**9])
def test_ports_out_of_range_are_value_errors(port: int) -> None:
    """Out of range: ValueError naming the argument."""
    with pytest.raises(ValueError, match="port"):
        validate_port(port)


@pytest.mark.parametrize("port", ["80", 80.0, None, True, (80,)])
def test_ports_that_are_not_ints_are_type_errors(port: object) -> None:
    """Not an int (bool included): TypeError naming the argument."""
    with pytest.raises(TypeError, match="port"):
        validate_port(port)


def test_port_error_names_the_argument_given() -> None:
    """Callers say which argument it was."""
    with pytest.raises(ValueError, match="remote\\[1\\]"):
        validate_port(70000, name="remote[1]")


@pytest.mark.parametrize(
    ("ip", "normal"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("0:0::1", "::1"), ("0.0.0.0", "0.0.0.0")],
)
def test_ip_literals_are_normalised(ip: str, normal: str) -> None:
    """IPv4 and IPv6 literals, in one spelling."""
    assert validate_ip(ip) == normal


@pytest.mark.parametrize("ip", ["", "localhost", "256.0.0.1", "1.2.3", "::g", "127.0.0.1 "])
def test_bad_ip_literals_are_value_errors(ip: str) -> None:
    """Not an address: ValueError naming the argument."""
    with pytest.raises(ValueError, match="ip"):
        validate_ip(ip)


def test_ip_must_be_a_string() -> None:
    """An int is not an IP literal."""
    with pytest.raises(TypeError, match="ip"):
        validate_ip(2130706433)


@pytest.mark.parametrize("host", ["localhost", "example.invalid", "127.0.0.1", "::1"])
def test_connect_accepts_names_and_literals(host: str) -> None:
    """Resolution is the binding's I/O; the core only checks the shape."""
    assert validate_host(host)


@pytest.mark.parametrize("host", ["", "a b", "x" * 254, "http://x"])
def test_connect_rejects_what_is_no_name(host: str) -> None:
    """Empty, spaces, too long, URLs: ValueError."""
    with pytest.raises(ValueError, match="ip"):
        validate_host(host)


def test_connect_host_must_be_a_string() -> None:
    """TypeError for a non-string host."""
    with pytest.raises(TypeError):
        validate_host(None)


def test_remote_tuples() -> None:
    """``(ip, port)`` normalised; anything else is an error naming remote."""
    assert validate_remote(("127.0.0.1", 5)) == ("127.0.0.1", 5)
    with pytest.raises(TypeError, match="remote"):
        validate_remote("127.0.0.1:5")
    with pytest.raises(TypeError, match="remote"):
        validate_remote(("127.0.0.1",))
    with pytest.raises(ValueError, match="remote\\[0\\]"):
        validate_remote(("nowhere", 5))
    with pytest.raises(ValueError, match="remote\\[1\\]"):
        validate_remote(("127.0.0.1", 99999))


def test_socket_addresses_are_reduced_to_ip_and_port() -> None:
    """IPv6 socket addresses have four fields; events carry two."""
    assert normalize_sockaddr(("::1", 80, 0, 0)) == ("::1", 80)
    assert normalize_sockaddr(("127.0.0.1", 80)) == ("127.0.0.1", 80)
    assert normalize_sockaddr(("fe80::1%lo", 80, 0, 1)) == ("fe80::1%lo", 80)
    with pytest.raises(TypeError):
        normalize_sockaddr("/tmp/sock")
    with pytest.raises(TypeError):
        normalize_sockaddr((1, 2))


# The edges of 224.0.0.0/4, computed so that no test spells an address outside
# the ranges our tests may use; none of these is ever sent to (no socket here).
MULTICAST_V4 = ipaddress.IPv4Network("224.0.0.0/4")
FIRST, LAST = str(MULTICAST_V4[0]), str(MULTICAST_V4[-1])
JUST_BELOW = str(MULTICAST_V4[0] - 1)


@pytest.mark.parametrize("group", [FIRST, LAST, "239.255.0.1", "ff02::1", "FF05::1:3"])
def test_multicast_groups(group: str) -> None:
    """224.0.0.0/4 and ff00::/8 are multicast."""
    assert parse_group(group) == group.lower()


@pytest.mark.parametrize(
    "group",
    [
        JUST_BELOW,
        "240.0.0.0",
        "127.0.0.1",
        "10.0.0.1",
        "::1",
        "fe80::1",
        "",
        "abc",
        "239.255.0",
        "239.255.0.256",
    ],
)
def test_not_multicast_is_1004(group: str) -> None:
    """Anything else, unparsable strings included: SocketError 1004."""
    with pytest.raises(SocketError) as info:
        parse_group(group)
    assert info.value.errno == 1004
    assert info.value.err is not None


@pytest.mark.parametrize("group", [None, 3758096385, b"239.255.0.1"])
def test_non_string_group_is_1004_with_a_type_error_inside(group: object) -> None:
    """ "Anything else" includes non-strings; the inner error says what was wrong."""
    with pytest.raises(SocketError) as info:
        parse_group(group)
    assert info.value.errno == 1004
    assert isinstance(info.value.err, TypeError)


def test_groups_accept_varargs_or_one_sequence() -> None:
    """``joinGroup('a', 'b')`` and ``joinGroup(['a', 'b'])`` mean the same."""
    assert parse_groups(("239.255.0.1", "239.255.0.2")) == ["239.255.0.1", "239.255.0.2"]
    assert parse_groups((["239.255.0.1", "239.255.0.2"],)) == ["239.255.0.1", "239.255.0.2"]
    assert parse_groups((("239.255.0.1",),)) == ["239.255.0.1"]
    assert parse_groups(()) == []


def test_normalised_addresses_are_remembered_boundedly() -> None:
    """The OS's spelling maps to one normal form, from a bounded cache."""
    from jfsocket.core import addresses

    assert normalize_sockaddr(("0:0::1", 5)) == ("::1", 5)
    assert addresses._NORMALIZED["0:0::1"] == "::1"
    for n in range(addresses._NORMALIZED_KEPT + 5):
        normalize_sockaddr((f"10.0.{n // 256}.{n % 256}", 1))
    assert len(addresses._NORMALIZED) <= addresses._NORMALIZED_KEPT
    assert normalize_sockaddr(("0:0::1", 6)) == ("::1", 6)
