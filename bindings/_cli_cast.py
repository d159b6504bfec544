"""``jfsocket cast listen|send`` and ``cast probe send|listen``: multicast
tools on every runtime (the probe's accounting is :mod:`._probe`'s)."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jfsocket.bindings import _probe, threaded
from jfsocket.core import (
    MAX_DATAGRAM,
    Address,
    EventTypes,
    Received,
    StreamEvent,
    parse_group,
    validate_ip,
    validate_recv_buffer,
)

if TYPE_CHECKING:
    pass

__all__ = ["add_cast_commands"]
from ._cli_base import (
    _E,
    _PORT,
    _REMOTE_PORT,
    _SENDER_KEYS,
    Common,
    Printer,
    _async_runtime,
    _at_least,
    _chain,
    _checked,
    _integer,
    _interface,
    _ip_version,
    _seconds,
    _show,
    _ttl,
    _until_interrupted,
)

# -- multicast -------------------------------------------------------------------


#: How often a listener waiting for datagrams looks at its clock (threaded: and at signals).
_TICK = 0.2
#: Called with each datagram's event, and with None at least every _TICK seconds: True ends.
_Handle = Callable[[Received | None], bool]


class _Awaited:
    """A stop signal as an :class:`_Event`, for :meth:`_AsyncRuntime.unless`."""

    def __init__(self, wait: Callable[[], Awaitable[object]]) -> None:
        self._wait = wait

    def set(self) -> None: ...

    def is_set(self) -> bool:
        return False

    def wait(self) -> Awaitable[object]:
        return self._wait()


def _receiver_host(args: argparse.Namespace) -> int | Address:
    """Where a listener binds: ``PORT`` (every IPv4 address) or ``('::', PORT)`` for IPv6
    groups; groups of both families, or an --interface or --source of the other, is usage."""
    versions = {_ip_version(group) for group in args.groups}
    if len(versions) > 1:
        args.usage_error("the groups mix IPv4 and IPv6; one listener takes one family")
    (version,) = versions
    for option in ("interface", "source"):
        value = getattr(args, option)
        if _ip_version(value) not in (None, version):
            args.usage_error(f"--{option} {value} is not IPv{version}, as the groups are")
    return ("::", args.port) if version == 6 else args.port


def _receive(
    args: argparse.Namespace, printer: Printer, handle: _Handle, encoding: str | None
) -> None:
    """Join ``args.groups`` on ``args.port`` and hand every datagram to *handle*,
    until it says done, the receiver stops, or SIGINT/SIGTERM."""
    options = {
        "evts": printer.callbacks("receiver", (_E.STARTED, _E.STOPED)),
        "interface": "0.0.0.0" if args.interface is None else args.interface,
        "encoding": encoding,
        "recv_buffer": args.recv_buffer,
    }
    host = _receiver_host(args)

    def listening(receiver: Any) -> None:
        on = "" if args.interface is None else f" on {args.interface}"
        source = "" if args.source is None else f" from {args.source}"
        printer.line(
            "receiver", "LISTENING", f"{_show(receiver.host)} {receiver.groups}{on}{source}"
        )

    if args.runtime != "threaded":
        runtime = _async_runtime(args)

        async def listen() -> None:
            async with (
                runtime.stop_signals() as signalled,
                runtime.CastReceiver(host, **options) as receiver,
            ):
                stream: AsyncIterator[StreamEvent] = receiver.events()
                receiver.joinGroup(*args.groups, source=args.source)
                listening(receiver)

                async def consume() -> None:
                    while True:
                        try:
                            event = await runtime.within(_TICK, anext(stream))
                        except TimeoutError:
                            event = None
                        except StopAsyncIteration:
                            return
                        if (event is None or isinstance(event, Received)) and handle(event):
                            return

                await runtime.unless(_Awaited(signalled), consume)

        runtime.run(listen)
        return
    with _until_interrupted(), threaded.CastReceiver(host, **options) as receiver:
        events = receiver.events(timeout=_TICK)
        receiver.joinGroup(*args.groups, source=args.source)
        receiver.start()
        listening(receiver)
        while True:
            try:
                event = events.get()
            except TimeoutError:
                event = None
            except StopIteration:
                return
            if (event is None or isinstance(event, Received)) and handle(event):
                return


def _cmd_cast_listen(args: argparse.Namespace, printer: Printer) -> int:
    def show(event: Received | None) -> bool:
        if event is not None and not event.truncated:  # a cut one: the warning says so
            where = f"  from {_show(event.remote)}"
            if event.group is not None:
                where += f" to {event.group}"
            if event.interface is not None:
                where += f" on {event.interface.name or event.interface.index}"
            printer.line("receiver", "RECEIVED", _show(event.data) + where)
        return False

    _receive(args, printer, show, args.encoding)
    return 0


def _cmd_probe_listen(args: argparse.Namespace, printer: Printer) -> int:
    """Tally probe datagrams; a report line per source at the end (and ``--every``)."""
    tally = _probe.ProbeTally()
    start = time.monotonic()
    report_at = start + (args.every or float("inf"))

    def count(event: Received | None) -> bool:
        nonlocal report_at
        now = time.monotonic()
        if event is not None and event.remote is not None:
            assert isinstance(event.data, bytes)  # no encoding
            tally.feed(event.data, event.remote, event.interface, time.time())
        if args.duration is not None:
            done = now - start >= float(args.duration)
        elif args.count is not None:
            done = tally.probes >= int(args.count)
        else:
            done = tally.finished
        if now >= report_at and not done:  # (when done, the REPORT lines follow)
            report_at = now + args.every
            for line in tally.lines():
                printer.line("probe", "PROGRESS", line)
        return done

    _receive(args, printer, count, None)
    for line in tally.lines():
        printer.line("probe", "REPORT", line)
    return 0


def _cmd_cast_send(args: argparse.Namespace, printer: Printer) -> int:
    evts = printer.callbacks("sender", _SENDER_KEYS)
    failed: list[object] = []
    evts[_E.SENDFAIL] = _chain(evts[_E.SENDFAIL], lambda *a: failed.append(a[1]))
    target: Address = (args.group, args.port)
    options = {"ttl": args.ttl, "interface": args.interface, "encoding": args.encoding}
    # Bytes as given on the command line (os.fsencode undoes argv's decoding).
    messages = [m if args.encoding else os.fsencode(m) for m in args.messages]
    if args.runtime != "threaded":
        runtime = _async_runtime(args)

        async def send() -> None:
            async with runtime.CastSender(evts=evts, **options) as sender:
                for message in messages:
                    await sender.send(target, message)

        runtime.run(send)
    else:
        with threaded.CastSender(evts=evts, **options) as sender:
            for message in messages:
                sender.send(target, message)
    return _send_status(len(failed), len(messages))


def _send_status(failed: int, sent: int) -> int:
    """0, or 1 after a line saying how many datagrams failed."""
    if failed:
        print(f"jfsocket: {failed} of {sent} datagrams failed (SENDFAIL)", file=sys.stderr)
        return 1
    return 0


def _cmd_probe_send(args: argparse.Namespace, printer: Printer) -> int:
    """Send ``--count`` numbered datagrams, one every ``--interval`` seconds."""
    try:
        run = _probe.ProbeRun(random.getrandbits(64), args.count, frozenset(args.gaps), args.size)
    except ValueError as exc:
        args.usage_error(str(exc))
    failed: list[object] = []

    def send_failed(sender: object, data: bytes, error: object) -> None:
        failed.append(error)  # a datagram's bytes say little: its number says which
        probe = _probe.decode(data)
        number = probe.sequence if probe else "?"
        printer.line("sender", "SENDFAIL", f"number {number}  {_show(error)}")

    target: Address = (args.group, args.port)
    options = {"ttl": args.ttl, "interface": args.interface, "encoding": None}
    evts: dict[EventTypes | str, Any] = {_E.SENDFAIL: send_failed}
    printer.line("probe", "SENDING", run.describe(target))
    sent = 0
    start = time.monotonic()
    if args.runtime != "threaded":
        runtime = _async_runtime(args)

        async def send() -> None:
            nonlocal sent, start
            async with runtime.CastSender(evts=evts, **options) as sender:
                start = time.monotonic()  # the runtime is up: the first is due now
                for sequence, due in run.schedule(args.interval):
                    await runtime.sleep(start + due - time.monotonic())
                    await sender.send(target, run.datagram(sequence, time.time()))
                    sent += 1

        runtime.run(send)
    else:
        with _until_interrupted(), threaded.CastSender(evts=evts, **options) as sender:
            start = time.monotonic()
            for sequence, due in run.schedule(args.interval):
                time.sleep(max(0.0, start + due - time.monotonic()))
                sender.send(target, run.datagram(sequence, time.time()))
                sent += 1
    done = f"{sent - len(failed)} of {sent}" if failed else str(sent)
    printer.line("probe", "SENT", f"{done} datagrams in {time.monotonic() - start:.3f} s")
    return _send_status(len(failed), sent)


def add_cast_commands(commands: Any, common: Common) -> None:
    """``cast listen``, ``cast send`` and ``cast probe send|listen`` on *commands*."""
    cast = commands.add_parser("cast", help="UDP multicast")
    cast_commands = cast.add_subparsers(dest="cast_command", required=True, metavar="COMMAND")

    def listener(p: argparse.ArgumentParser) -> None:
        p.add_argument("port", type=_PORT, help="port to listen on")
        p.add_argument(
            "groups", nargs="+", type=_checked(parse_group), metavar="GROUP",
            help="multicast groups to join, all IPv4 or all IPv6",
        )  # fmt: skip
        p.add_argument(
            "--interface",
            type=_checked(_interface),
            default=None,
            help="interface to join on: an address on it, its name or its index "
            "(default: the system's choice)",
        )
        p.add_argument(
            "--source",
            type=_checked(validate_ip),
            default=None,
            metavar="ADDRESS",
            help="take datagrams from this sender only (source-specific multicast)",
        )

    def sender(p: argparse.ArgumentParser) -> None:
        p.add_argument("group", type=_checked(parse_group), help="multicast group")
        p.add_argument("port", type=_REMOTE_PORT, help="port")

    def sending(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--interface",
            type=_checked(_interface),
            default=None,
            help="interface to send through: an address on it, its name or its index "
            "(default: the system's)",
        )
        p.add_argument(
            "--ttl",
            type=_checked(_ttl, _integer),
            default=1,
            help="hops the datagram may cross (0: this host only; default 1)",
        )

    listen = cast_commands.add_parser("listen", help="join groups and print datagrams")
    listener(listen)
    listen.add_argument(
        "--recv-buffer",
        type=_checked(validate_recv_buffer, _integer),
        default=MAX_DATAGRAM,
        metavar="N",
        help=f"the most bytes of a datagram taken (default {MAX_DATAGRAM}: any whole datagram)",
    )
    common(listen)
    listen.set_defaults(handler=_cmd_cast_listen)
    send = cast_commands.add_parser("send", help="send datagrams to a group")
    sender(send)
    send.add_argument("messages", nargs="+", metavar="MESSAGE", help="one datagram each")
    sending(send)
    common(send)
    send.set_defaults(handler=_cmd_cast_send)

    probe = cast_commands.add_parser(
        "probe",
        help="is multicast arriving? numbered datagrams, and what was lost",
        description="`probe send` sends numbered datagrams; `probe listen` reports, per "
        "sender, how many were received, lost, duplicated and reordered, and on which "
        "interface they arrived. Lost means missing below the highest number seen: those "
        "after it cannot be known lost.",
    )
    probe_commands = probe.add_subparsers(dest="probe_command", required=True, metavar="COMMAND")
    probe_send = probe_commands.add_parser("send", help="send numbered datagrams to a group")
    sender(probe_send)
    probe_send.add_argument(
        "--count",
        type=_at_least(1, _probe.MAX_COUNT),
        default=10,
        metavar="N",
        help="how many sequence numbers (1 to N) the run has (default 10)",
    )
    probe_send.add_argument(
        "--interval",
        type=_checked(_seconds),
        default=0.1,
        metavar="SECONDS",
        help="time between datagrams (default 0.1)",
    )
    probe_send.add_argument(
        "--size",
        type=_at_least(_probe.HEADER_SIZE, MAX_DATAGRAM),
        default=_probe.HEADER_SIZE,
        metavar="BYTES",
        help=f"bytes per datagram (default and least {_probe.HEADER_SIZE}: the header)",
    )
    probe_send.add_argument(
        "--gap",
        type=_at_least(1, _probe.MAX_COUNT),
        action="append",
        default=[],
        dest="gaps",
        metavar="K",
        help="skip sequence number K, which the listener must report lost (repeatable)",
    )
    sending(probe_send)
    common(probe_send, data=False)
    probe_send.set_defaults(handler=_cmd_probe_send)
    probe_listen = probe_commands.add_parser(
        "listen",
        help="count probe datagrams; report per sender",
        description="Join the groups and count probe datagrams; at the end print a REPORT "
        "line per sender (address and session). Ends when every sender heard has sent its "
        "last datagram, after --duration or --count, or on Ctrl-C.",
    )
    listener(probe_listen)
    until = probe_listen.add_mutually_exclusive_group()
    until.add_argument(
        "--duration",
        type=_checked(_seconds),
        default=None,
        metavar="SECONDS",
        help="listen this long (default: until each sender's last datagram has arrived)",
    )
    until.add_argument(
        "--count",
        type=_at_least(1, _probe.MAX_COUNT),
        default=None,
        metavar="N",
        help="stop after N probe datagrams",
    )
    probe_listen.add_argument(
        "--every",
        type=_checked(_seconds),
        default=None,
        metavar="SECONDS",
        help="print the report so far (PROGRESS lines) this often (default, 0: never)",
    )
    common(probe_listen, data=False)
    probe_listen.set_defaults(handler=_cmd_probe_listen, recv_buffer=MAX_DATAGRAM)
