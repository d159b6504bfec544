"""Time as an input: the options that set deadlines, and the backoff policy.

The core never reads a clock.  Models with deadlines take ``now`` (seconds,
from whatever monotonic clock the binding's runtime keeps) on the inputs that
start or reset one, report the next deadline with ``timer()`` and what is due
with ``handle_timer(now)`` (aioquic's shape).  This module holds what those
models share: validated durations, :class:`Keepalive` and :class:`Backoff` (attrs classes,
frozen; like the events, this module is not compiled).
"""

from __future__ import annotations

import logging
import math
from typing import Final

import attrs

from .errors import ErrorCode
from .events import GaveUp, Notice, Reconnecting

logger = logging.getLogger("jfsocket")

__all__ = [
    "DEFAULT_MAX_PENDING",
    "Backoff",
    "Keepalive",
    "Redialer",
    "validate_keepalive",
    "validate_max_pending",
    "validate_reconnect",
    "validate_timeout",
]

#: Bytes a connection may hold accepted and unwritten before it is a slow consumer.
DEFAULT_MAX_PENDING: Final = 4 << 20


def validate_timeout(value: object, name: str) -> float | None:
    """*value* as a duration in seconds (``None``: no deadline); *name* names it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    seconds = float(value)
    if not seconds > 0 or math.isinf(seconds):  # also NaN
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return seconds


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def validate_max_pending(value: object) -> int:
    """``max_pending``: a positive number of bytes."""
    return _count(value, "max_pending")


def _seconds(value: object, name: str) -> float:
    seconds = validate_timeout(value, name)
    if seconds is None:
        raise TypeError(f"{name} must be a number of seconds, not None")
    return seconds


# Named converters: mypy's attrs plugin reads only named functions.
def _idle(value: object) -> float:
    return _seconds(value, "idle")


def _interval(value: object) -> float:
    return _seconds(value, "interval")


def _probes(value: object) -> int:
    return _count(value, "count")


def _initial(value: object) -> float:
    return _seconds(value, "initial")


def _maximum(value: object) -> float:
    return _seconds(value, "maximum")


def _reset_after(value: object) -> float:
    return _seconds(value, "reset_after")


@attrs.frozen
class Keepalive:
    """The OS's TCP keepalive: probe after *idle* seconds without traffic,
    every *interval* seconds, and give up after *count* unanswered probes
    (the peer is then reported gone: DISCONNECT)."""

    idle: float = attrs.field(default=60.0, converter=_idle)
    interval: float = attrs.field(default=10.0, converter=_interval)
    count: int = attrs.field(default=5, converter=_probes)

    def whole_seconds(self) -> tuple[int, int, int]:
        """``(idle, interval, count)`` as the OS options take them (whole seconds, at least 1)."""
        return max(1, math.ceil(self.idle)), max(1, math.ceil(self.interval)), self.count


def validate_keepalive(value: object) -> Keepalive | None:
    """``keepalive``: ``False``/``None`` (off), ``True`` (the defaults) or a :class:`Keepalive`."""
    if value is None or value is False:
        return None
    if value is True:
        return Keepalive()
    if isinstance(value, Keepalive):
        return value
    raise TypeError(f"keepalive must be a bool or a Keepalive, not {type(value).__name__}")


def _factor(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"factor must be a number, not {type(value).__name__}")
    if not 1.0 <= value < math.inf:
        raise ValueError(f"factor must be at least 1, got {value!r}")
    return float(value)


def _jitter(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"jitter must be a number, not {type(value).__name__}")
    if not 0.0 <= value < 1.0:  # 1 could make a delay of 0: a hot redial loop
        raise ValueError(f"jitter must be at least 0 and less than 1, got {value!r}")
    return float(value)


def _attempts(value: object) -> int | None:
    return None if value is None else _count(value, "attempts")


@attrs.frozen
class Backoff:
    """How a client waits between reconnect attempts: jittered exponential backoff.

    Try *n* (from 1) waits ``initial * factor ** (n - 1)``, scaled by a factor
    drawn from ``[1 - jitter, 1 + jitter]``, never more than *maximum*;
    *attempts* bounds the tries (``None``: no bound); a connection that
    lasted *reset_after* seconds starts the count afresh.
    """

    initial: float = attrs.field(default=0.5, converter=_initial)
    maximum: float = attrs.field(default=30.0, converter=_maximum)
    factor: float = attrs.field(default=2.0, converter=_factor)
    jitter: float = attrs.field(default=0.5, converter=_jitter)
    attempts: int | None = attrs.field(default=None, converter=_attempts)
    reset_after: float = attrs.field(default=10.0, converter=_reset_after)

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise ValueError(
                f"maximum ({self.maximum}) must not be less than initial ({self.initial})"
            )

    def delay(self, attempt: int, random: float) -> float:
        """The wait before try *attempt* (from 1); *random* is uniform in [0, 1)
        (an input: the binding draws it, a test chooses it)."""
        try:
            base = min(self.maximum, self.initial * self.factor ** (attempt - 1))
        except OverflowError:  # far past the maximum
            base = self.maximum
        return min(self.maximum, base * (1.0 - self.jitter + 2.0 * self.jitter * random))


def validate_reconnect(value: object) -> Backoff | None:
    """``reconnect``: ``None``/``False`` (off), ``True`` (the defaults) or a :class:`Backoff`."""
    if value is None or value is False:
        return None
    if value is True:
        return Backoff()
    if isinstance(value, Backoff):
        return value
    raise TypeError(f"reconnect must be a bool or a Backoff, not {type(value).__name__}")


class Redialer:
    """When a client with ``reconnect`` dials again, and when it gives up.

    Inputs: :meth:`connected` (a connection is up), :meth:`lost` (one the user
    did not close ended, or a redial failed), :meth:`stop` (the user closed);
    outputs: the notices to publish, and :meth:`timer` / :meth:`handle_timer`
    for when to dial.  The random draw for the jitter is an input too.
    """

    __slots__ = (
        "_at",
        "_attempt",
        "_backoff",
        "_down",
        "_since",
        "_source",
        "active",
        "reconnects",
    )

    def __init__(self, source: object, backoff: Backoff) -> None:
        self._source = source
        self._backoff = backoff
        self._attempt = 0  # tries since the last connection that lasted
        self._since: float | None = None  # when the current connection came up
        self._at: float | None = None  # when to dial next
        #: Still redialing (``False`` once closed by the user, or given up).
        self.active = True
        self._down = False  # a connection was lost and none has come up since
        #: Connections made again after one was lost (statistics).
        self.reconnects = 0

    def connected(self, now: float) -> None:
        """A connection is up (a redial's, or the first)."""
        if self._down:
            self.reconnects += 1
            self._down = False
        self.active = True
        self._since = now
        self._at = None

    def lost(
        self, now: float, random: float, error: BaseException | None, asked: bool = False
    ) -> list[Notice]:
        """The connection ended (the user *asked* for it: no more dialing), or a
        redial failed: ``Reconnecting`` (dial again at :meth:`timer`), or ``GaveUp``."""
        if asked:
            self.stop()
        if not self.active:
            return []
        self._down = True
        since = self._since
        if since is not None and now - since >= self._backoff.reset_after:
            self._attempt = 0  # it lasted: start the count afresh
        self._since = None
        attempts = self._backoff.attempts
        if attempts is not None and self._attempt >= attempts:
            self.active = False
            self._at = None
            logger.warning("%r: gave up reconnecting after %d tries", self._source, self._attempt)
            return [GaveUp(source=self._source, attempts=self._attempt, error=error)]
        self._attempt += 1
        delay = self._backoff.delay(self._attempt, random)
        self._at = now + delay
        logger.info("%r: reconnecting in %.3g s (try %d)", self._source, delay, self._attempt)
        return [Reconnecting(source=self._source, attempt=self._attempt, delay=delay, error=error)]

    def failed(self, now: float, random: float, error: BaseException) -> list[Notice]:
        """A redial raised *error* (a ``SocketError``): try again later (as
        :meth:`lost`), unless the user connected meanwhile (1000): then stop."""
        if getattr(error, "errno", None) == ErrorCode.CONNECTION_EXISTS:
            self.stop()
            return []
        return self.lost(now, random, getattr(error, "err", None) or error)

    def stop(self) -> None:
        """The user closed the client: no more dialing."""
        self.active = False
        self._down = False
        self._at = None

    def timer(self) -> float | None:
        """When to dial next (``None``: not waiting to)."""
        return self._at if self.active else None

    def handle_timer(self, now: float) -> bool:
        """``True`` if it is time to dial (once per :meth:`lost`)."""
        at = self._at
        if not self.active or at is None or now < at:
            return False
        self._at = None
        return True
