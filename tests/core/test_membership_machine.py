"""A hypothesis state machine over :class:`ReceiverModel`'s group membership.

Random ``joinGroup``/``dropGroup`` plans (valid groups from a small pool, so
that they collide, mixed with non-multicast addresses, garbage strings and
non-strings), commits of fresh and stale plans, and start/listening/stop,
checked against a model: the group list, the error codes, the OS-side
membership the binding would hold, and all-or-nothing failure.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from jfsocket.core import (
    Address,
    GroupChange,
    LocalProtocolError,
    MembershipPlan,
    ReceiverModel,
    ReceiverState,
    SocketError,
    Started,
    Stopped,
)

R = ReceiverState
INTERFACE = "127.0.0.1"
POOL = [f"239.255.0.{i}" for i in range(1, 6)]

_VALID = st.sampled_from(POOL)
#: The address just below 224.0.0.0/4 (computed: our tests spell no outside address).
JUST_BELOW_MULTICAST = str(ipaddress.IPv4Network("224.0.0.0/4")[0] - 1)
_NOT_MULTICAST = st.sampled_from(
    [
        *["127.0.0.1", "10.0.0.1", JUST_BELOW_MULTICAST, "240.0.0.1", "255.255.255.255", "0.0.0.0"],
        *["::1", "ff02::1", "ff15::239:255:0:1"],  # IPv6, multicast or not: wrong family here
    ]
)
_GARBAGE = st.one_of(
    st.sampled_from(["", "239.255.0", "239.255.0.256", " 239.255.0.1", "239.255.0.1/32", "x"]),
    st.text(max_size=8),
)
_NON_STRINGS = st.one_of(
    st.integers(),
    st.none(),
    st.floats(allow_nan=False),
    st.sampled_from([b"239.255.0.1", ipaddress.IPv4Address("239.255.0.1")]),
    st.builds(object),
)
_BAD = st.one_of(_NOT_MULTICAST, _GARBAGE, _NON_STRINGS)
#: Groups from the pool: valid entries, but they collide with each other and
#: with the groups already joined.
_CLEAN = st.lists(_VALID, max_size=4)
#: The same with one bad entry somewhere: 1004 must win over 1002/1003.
_TAINTED = st.tuples(_CLEAN, _BAD, st.integers(0, 4)).map(
    lambda parts: [*parts[0][: parts[2]], parts[1], *parts[0][parts[2] :]]
)
_ENTRIES = st.one_of(_CLEAN, _TAINTED, st.lists(st.one_of(_VALID, _BAD), max_size=4))
_FORMS = st.sampled_from(["star", "list", "tuple"])
_HOSTS = st.tuples(st.just("0.0.0.0"), st.integers(1, 65535))


def _group(entry: object) -> str | None:
    """The normalised group *entry* names for an IPv4 receiver, or ``None`` (1004)."""
    if not isinstance(entry, str):
        return None
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if address.version != 4 or not address.is_multicast:
        return None
    return str(address)


@dataclass(frozen=True)
class _Planned:
    """A plan the receiver returned, with what the model knew when it was made."""

    plan: MembershipPlan
    join: bool
    groups: tuple[str, ...]
    #: The model's membership version when the plan was made.
    version: int


@settings(max_examples=150, stateful_step_count=40, deadline=None)
class MembershipMachine(RuleBasedStateMachine):
    """Plans, commits and lifecycle of one IPv4 receiver, against a model."""

    plans: Bundle[_Planned] = Bundle("plans")

    def __init__(self) -> None:
        super().__init__()
        self.source = object()
        self.receiver = ReceiverModel(self.source, 5000, interface=INTERFACE)
        #: Configured groups, in join order.
        self.groups: list[str] = []
        self.state = R.STOPPED
        #: Bumped whenever a plan made before becomes stale: a commit, going
        #: live (listening) and going dead (stop).
        self.version = 0
        #: Groups the binding holds joined on the OS side.
        self.os_joined: set[str] = set()

    @initialize(groups=st.lists(_VALID, unique=True, max_size=3))
    def configure(self, groups: list[str]) -> None:
        """Maybe begin with some groups configured (while stopped)."""
        if groups:
            self.receiver.commit(self.receiver.plan_join(*groups))
            self.groups = list(groups)
            self.version += 1

    # -- helpers ---------------------------------------------------------------

    def _unchanged_after(self, code: int, call_args: tuple[object, ...], join: bool) -> None:
        """The plan call raises SocketError *code* and changes nothing."""
        receiver = self.receiver
        method = receiver.plan_join if join else receiver.plan_drop
        before = (receiver.groups, receiver.state)
        with pytest.raises(SocketError) as info:
            method(*call_args)
        assert info.value.errno == code, (info.value, call_args)
        assert (receiver.groups, receiver.state) == before

    def _plan(
        self, join: bool, entries: list[object], form: str, commit: bool
    ) -> MultipleResults[_Planned]:
        """joinGroup/dropGroup(*entries) in the call *form*: the plan or the right code."""
        call_args: tuple[object, ...] = (
            tuple(entries)
            if form == "star"
            else (list(entries) if form == "list" else tuple(entries),)
        )
        named = [_group(entry) for entry in entries]
        if None in named:
            self._unchanged_after(1004, call_args, join)
            return multiple()
        groups = [group for group in named if group is not None]
        after = list(self.groups)
        for group in groups:
            if join:
                if group in after:
                    self._unchanged_after(1002, call_args, join)
                    return multiple()
                after.append(group)
            else:
                if group not in after:
                    self._unchanged_after(1003, call_args, join)
                    return multiple()
                after.remove(group)

        receiver = self.receiver
        plan = receiver.plan_join(*call_args) if join else receiver.plan_drop(*call_args)
        assert receiver.groups == self.groups, "a plan changes nothing until committed"
        assert plan.groups == tuple(after)
        live = self.state is R.LISTENING
        assert bool(plan.changes) == (live and bool(groups))
        if live:
            assert plan.changes == tuple(
                GroupChange(join=join, group=group, interface=INTERFACE, address=INTERFACE)
                for group in groups
            )
        planned = _Planned(plan=plan, join=join, groups=tuple(groups), version=self.version)
        if commit:
            self._commit(planned)
        return multiple(planned)

    def _commit(self, planned: _Planned) -> None:
        """Commit *planned*: adopted if nothing changed since it was made, else refused."""
        receiver = self.receiver
        if planned.version != self.version:
            before = (receiver.groups, receiver.state)
            with pytest.raises(LocalProtocolError):
                receiver.commit(planned.plan)
            assert (receiver.groups, receiver.state) == before
            return
        receiver.commit(planned.plan)
        for group in planned.groups:
            if planned.join:
                self.groups.append(group)
            else:
                self.groups.remove(group)
        self.version += 1
        for change in planned.plan.changes:  # the binding applied them before committing
            if change.join:
                assert change.group not in self.os_joined
                self.os_joined.add(change.group)
            else:
                self.os_joined.remove(change.group)

    # -- membership ------------------------------------------------------------

    @rule(target=plans, entries=_ENTRIES, form=_FORMS, commit=st.booleans())
    def plan_join(
        self, entries: list[object], form: str, commit: bool
    ) -> MultipleResults[_Planned]:
        """joinGroup: 1004 for any bad entry, then 1002; else a plan (maybe committed)."""
        return self._plan(True, entries, form, commit)

    @rule(target=plans, entries=_ENTRIES, form=_FORMS, commit=st.booleans())
    def plan_drop(
        self, entries: list[object], form: str, commit: bool
    ) -> MultipleResults[_Planned]:
        """dropGroup: 1004 for any bad entry, then 1003; else a plan (maybe committed)."""
        return self._plan(False, entries, form, commit)

    @precondition(lambda self: len(self.groups) < len(POOL))
    @rule(target=plans, data=st.data(), form=_FORMS, commit=st.booleans())
    def plan_join_fresh(
        self, data: st.DataObject, form: str, commit: bool
    ) -> MultipleResults[_Planned]:
        """joinGroup of some groups not joined yet (the valid case, made frequent)."""
        fresh = [group for group in POOL if group not in self.groups]
        entries: list[object] = list(
            data.draw(st.lists(st.sampled_from(fresh), unique=True, min_size=1))
        )
        return self._plan(True, entries, form, commit)

    @precondition(lambda self: bool(self.groups))
    @rule(target=plans, data=st.data(), form=_FORMS, commit=st.booleans())
    def plan_drop_joined(
        self, data: st.DataObject, form: str, commit: bool
    ) -> MultipleResults[_Planned]:
        """dropGroup of some joined groups (the valid case, made frequent)."""
        entries: list[object] = list(
            data.draw(st.lists(st.sampled_from(self.groups), unique=True, min_size=1))
        )
        return self._plan(False, entries, form, commit)

    @rule(planned=plans)
    def commit(self, planned: _Planned) -> None:
        """Commit a plan made earlier: fresh ones are adopted, stale ones refused."""
        self._commit(planned)

    # -- lifecycle -------------------------------------------------------------

    @rule()
    def start(self) -> None:
        """start(): a join per configured group, or 1000 unless STOPPED."""
        receiver = self.receiver
        if self.state is not R.STOPPED:
            before = (receiver.groups, receiver.state)
            with pytest.raises(SocketError) as info:
                receiver.start()
            assert info.value.errno == 1000
            assert (receiver.groups, receiver.state) == before
            return
        assert receiver.start() == receiver.address
        self.state = R.STARTING
        self.version += 1

    @rule(host=_HOSTS)
    def listening(self, host: Address) -> None:
        """listening(host): STARTED, with every group of start() joined."""
        receiver = self.receiver
        if self.state is not R.STARTING:
            before = (receiver.groups, receiver.state)
            with pytest.raises(LocalProtocolError):
                receiver.listening(host)
            assert (receiver.groups, receiver.state) == before
            return
        joins = receiver.joins()  # what a binding applies right before listening()
        assert joins == tuple(
            GroupChange(join=True, group=group, interface=INTERFACE, address=INTERFACE)
            for group in self.groups
        )
        assert receiver.listening(host) == [Started(source=self.source, host=host)]
        assert receiver.host == host
        self.os_joined = {change.group for change in joins}
        self.state = R.LISTENING
        self.version += 1

    @rule(exc=st.sampled_from([PermissionError, OSError]).map(lambda kind: kind("denied")))
    def start_failed(self, exc: OSError) -> None:
        """Binding or joining failed: back to STOPPED with the error to raise."""
        receiver = self.receiver
        if self.state is not R.STARTING:
            before = (receiver.groups, receiver.state)
            with pytest.raises(LocalProtocolError):
                receiver.start_failed(exc)
            assert (receiver.groups, receiver.state) == before
            return
        error = receiver.start_failed(exc)
        assert isinstance(error, SocketError)
        assert error.err is exc
        self.state = R.STOPPED

    @rule()
    def stop(self) -> None:
        """stop(): a drop per group when listening (groups survive), else None."""
        receiver = self.receiver
        drops = receiver.stop()
        if self.state is not R.LISTENING:
            assert drops is None
            return
        assert drops == tuple(
            GroupChange(join=False, group=group, interface=INTERFACE, address=INTERFACE)
            for group in self.groups
        )
        for change in drops:
            self.os_joined.remove(change.group)
        self.state = R.STOPPED
        self.version += 1

    @rule()
    def stopped(self) -> None:
        """stopped(): STOPPED, and nothing else changes."""
        assert self.receiver.stopped() == [Stopped(source=self.source)]

    # -- invariants --------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        """Groups (in order) and state agree with the model."""
        assert self.receiver.groups == self.groups
        assert len(set(self.groups)) == len(self.groups)
        assert self.receiver.state is self.state
        assert self.receiver.is_listening is (self.state is R.LISTENING)

    @invariant()
    def os_membership_matches(self) -> None:
        """Listening, the OS holds exactly the groups; otherwise none."""
        if self.state is R.LISTENING:
            assert self.os_joined == set(self.groups)
        else:
            assert not self.os_joined


TestMembershipMachine = MembershipMachine.TestCase


@pytest.mark.parametrize("join", [True, False], ids=["join", "drop"])
@pytest.mark.parametrize(
    "plan_before_start", [True, False], ids=["planned-stopped", "planned-starting"]
)
def test_commit_while_starting(join: bool, plan_before_start: bool) -> None:
    """A change committed between start() and listening() reaches the OS, or is refused."""
    receiver = ReceiverModel(object(), 5000, interface=INTERFACE)
    if not join:
        receiver.commit(receiver.plan_join(POOL[0]))

    def make() -> MembershipPlan:
        return receiver.plan_join(POOL[1]) if join else receiver.plan_drop(POOL[0])

    plan = make() if plan_before_start else None
    receiver.start()
    try:
        if plan is None:
            plan = make()
        receiver.commit(plan)
    except (LocalProtocolError, SocketError):
        assert plan_before_start  # only a plan older than start() is refused
        return
    assert plan.changes == ()
    os_joined = {change.group for change in receiver.joins()}
    receiver.listening(("0.0.0.0", 5000))
    assert set(receiver.groups) == os_joined
