"""Event keys, binding rules, and the seed's positional arguments."""

from __future__ import annotations

import gc
import logging

import pytest
from jfsocket.core import (
    ACCEPTED_KEYS,
    CallbackRegistry,
    Connected,
    Disconnected,
    Event,
    EventTypes,
    Received,
    Role,
    SendFailed,
    Sent,
    Started,
    Stopped,
    callback_args,
    event_key,
    invoke,
)


def test_event_types_are_exactly_the_seeds() -> None:
    """Seven members with the seed's values and spellings; aliases share values."""
    assert {m.name: m.value for m in EventTypes} == {
        "STARTED": "onStarted",
        "STOPED": "onStoped",
        "CONNECTED": "onConnected",
        "DISCONNECT": "onDisconnect",
        "RECEIVED": "onReceived",
        "SENDED": "onSended",
        "SENDFAIL": "onSendFail",
    }
    assert EventTypes["STOPPED"] is EventTypes.STOPED
    assert EventTypes["SENT"] is EventTypes.SENDED


def test_accepted_keys_follow_the_spec_table() -> None:
    """Which class has which event (SPEC §2)."""
    e = EventTypes
    assert ACCEPTED_KEYS[Role.SERVER] == frozenset(EventTypes)
    assert ACCEPTED_KEYS[Role.CLIENT] == {
        e.CONNECTED,
        e.DISCONNECT,
        e.RECEIVED,
        e.SENDED,
        e.SENDFAIL,
    }
    assert ACCEPTED_KEYS[Role.RECEIVER] == {e.STARTED, e.STOPED, e.RECEIVED}
    assert ACCEPTED_KEYS[Role.SENDER] == {e.SENDED, e.SENDFAIL}


@pytest.mark.parametrize("role", list(Role))
def test_every_accepted_key_binds_by_member_and_by_string(role: Role) -> None:
    """The enum member and its string value are the same key."""
    for member in ACCEPTED_KEYS[role]:
        assert event_key(role, member) is member
        assert event_key(role, member.value) is member


@pytest.mark.parametrize("role", list(Role))
def test_every_unsupported_key_is_a_key_error_naming_it(role: Role) -> None:
    """Keys of other classes, unknown strings, names and None: KeyError."""
    others = [m for m in EventTypes if m not in ACCEPTED_KEYS[role]]
    for key in [*others, *(m.value for m in others), "onNothing", "RECEIVED", None, 3]:
        with pytest.raises(KeyError) as info:
            event_key(role, key)
        assert repr(key) in str(info.value)


def test_bind_replace_unbind() -> None:
    """Binding again replaces; binding None unbinds."""
    registry = CallbackRegistry(Role.CLIENT)

    def first(*args: object) -> None:
        pass

    def second(*args: object) -> None:
        pass

    registry.bind(EventTypes.RECEIVED, first)
    assert registry.lookup(EventTypes.RECEIVED) is first
    registry.bind("onReceived", second)
    assert registry.lookup(EventTypes.RECEIVED) is second
    registry.bind(EventTypes.RECEIVED, None)
    assert registry.lookup(EventTypes.RECEIVED) is None
    registry.bind(EventTypes.RECEIVED, None)  # unbinding twice is fine


def test_bind_rejects_what_is_not_callable_and_changes_nothing() -> None:
    """TypeError, and the old binding stays."""
    registry = CallbackRegistry(Role.SENDER)
    registry.bind(EventTypes.SENDED, print)
    with pytest.raises(TypeError, match="evt"):
        registry.bind(EventTypes.SENDED, "print")  # type: ignore[arg-type]
    assert registry.lookup(EventTypes.SENDED) is print


def test_bind_with_no_key_is_a_key_error() -> None:
    """``bind()`` with no key names no event."""
    with pytest.raises(KeyError):
        CallbackRegistry(Role.SERVER).bind()


def test_evts_mapping_is_checked_whole_before_binding() -> None:
    """A bad entry in ``evts`` raises and binds nothing."""
    with pytest.raises(KeyError):
        CallbackRegistry(Role.SENDER, {EventTypes.SENDED: print, "onReceived": print})
    with pytest.raises(TypeError, match="evt"):
        CallbackRegistry(Role.SENDER, {EventTypes.SENDED: 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="evts"):
        CallbackRegistry(Role.SENDER, [(EventTypes.SENDED, print)])  # type: ignore[arg-type]
    registry = CallbackRegistry(Role.SENDER, {"onSended": print, EventTypes.SENDFAIL: None})
    assert registry.lookup(EventTypes.SENDED) is print
    assert registry.lookup(EventTypes.SENDFAIL) is None


def test_children_inherit_and_may_override() -> None:
    """A server's clients see the server's callbacks, even ones bound later."""
    server = CallbackRegistry(Role.SERVER)
    client = server.child(Role.CLIENT)
    server.bind(EventTypes.RECEIVED, print)
    assert client.lookup(EventTypes.RECEIVED) is print
    client.bind(EventTypes.RECEIVED, repr)
    assert client.lookup(EventTypes.RECEIVED) is repr
    assert server.lookup(EventTypes.RECEIVED) is print
    with pytest.raises(KeyError):
        client.bind(EventTypes.STARTED, print)
    client.bind(EventTypes.RECEIVED, None)
    assert client.lookup(EventTypes.RECEIVED) is print
    with pytest.raises(ValueError, match="no children"):
        client.child(Role.CLIENT)


def test_a_server_does_not_keep_its_clients_registries() -> None:
    """A client's registry goes with the client: the server holds it weakly, and
    only once it binds a callback of its own (until then it shares the server's)."""
    server = CallbackRegistry(Role.SERVER)
    clients = [server.child(Role.CLIENT) for _ in range(4)]
    assert server._children is None and clients[0].resolved is server.resolved
    for client in clients[:3]:
        client.bind(EventTypes.SENDED, repr)
    assert len(server._children or ()) == 3
    del client, clients[1:3]
    gc.collect()  # CPython frees them at once; other Pythons may need this
    assert len(server._children or ()) == 1
    server.bind(EventTypes.RECEIVED, print)
    assert clients[0].lookup(EventTypes.RECEIVED) is print  # kept current
    assert clients[1].lookup(EventTypes.RECEIVED) is print  # shared
    assert clients[0].lookup(EventTypes.SENDED) is repr
    assert clients[1].lookup(EventTypes.SENDED) is None
    assert server.lookup(EventTypes.SENDED) is None


SRC = object()
HOST = ("127.0.0.1", 1)
REMOTE = ("127.0.0.1", 2)
ERR = ValueError("x")


@pytest.mark.parametrize(
    ("event", "args"),
    [
        (Started(source=SRC, host=HOST), (SRC,)),
        (Stopped(source=SRC), (SRC,)),
        (Connected(source=SRC, host=HOST, remote=REMOTE), (SRC, HOST, REMOTE)),
        (Disconnected(source=SRC, host=HOST, remote=REMOTE), (SRC, HOST, REMOTE)),
        (Received(source=SRC, data="hi"), (SRC, "hi")),
        (Received(source=SRC, data=b"hi", remote=REMOTE), (SRC, b"hi")),
        (Sent(source=SRC, data=bytearray(b"x")), (SRC, bytearray(b"x"))),
        (SendFailed(source=SRC, data="x", error=ERR), (SRC, "x", ERR)),
    ],
)
def test_seed_positional_arguments(event: object, args: tuple[object, ...]) -> None:
    """SPEC §2's argument table, in one function."""
    assert callback_args(event) == args  # type: ignore[arg-type]


def test_truncated_datagrams_are_not_handed_to_callbacks() -> None:
    """A cut datagram is not passed off as whole."""
    event = Received(source=SRC, data=b"cut", remote=REMOTE, truncated=True)
    assert callback_args(event) is None
    registry = CallbackRegistry(Role.RECEIVER, {EventTypes.RECEIVED: print})
    assert registry.calls([event]) == []


def test_calls_skips_unbound_events_and_keeps_order() -> None:
    """Only bound events produce calls, in event order."""
    seen: list[str] = []
    registry = CallbackRegistry(Role.CLIENT)
    registry.bind(EventTypes.SENDED, lambda c, d: seen.append(f"sent {d}"))
    registry.bind(EventTypes.RECEIVED, lambda c, d: seen.append(f"got {d}"))
    events: list[Event] = [
        Connected(source=SRC, host=HOST, remote=REMOTE),
        Received(source=SRC, data="a"),
        Sent(source=SRC, data="b"),
    ]
    for callback, args, event in registry.calls(list(events)):
        invoke(callback, args, event)
    assert seen == ["got a", "sent b"]


def test_a_raising_callback_is_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """invoke() logs on 'jfsocket' and returns None instead of raising."""

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    event = Received(source=SRC, data="x")
    with caplog.at_level(logging.ERROR, logger="jfsocket"):
        assert invoke(broken, (SRC, "x"), event) is None
    (record,) = caplog.records
    assert record.name == "jfsocket"
    assert "broken" in record.getMessage()
    assert "onReceived" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_invoke_returns_the_result_for_async_bindings() -> None:
    """An async callback's coroutine comes back to be awaited."""
    marker = object()
    assert invoke(lambda *a: marker, (), Stopped(source=SRC)) is marker
