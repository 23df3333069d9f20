"""The outbox's delivery state machine: what one attempt does to a delivery (pure).

A delivery is one dispatch sent to one destination (`kafka:<topic>` or
`webhook:<endpoint-name>`). It starts `pending`. Each attempt ends in one of three ways:
`sent` (2xx or the broker acknowledged it); `failed` with a `next_attempt_at` (5xx, 429,
408, timeout or connection error: retried with exponential backoff and full jitter, or
after the receiver's Retry-After); or `dead` (a permanent failure such as another 4xx, or
the last allowed attempt failed). Dead deliveries go to the dead-letter queue for a person
to look at. Each attempt produces an `Attempt` record, to be logged and stored.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, get_args

from citybrain.backoff import backoff_delay

__all__ = [
    "DEFAULT_BASE_S",
    "DEFAULT_CAP_S",
    "DEFAULT_MAX_ATTEMPTS",
    "KIND_RANK",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "ErrorKind",
    "Outcome",
    "Verdict",
    "attempt_record",
    "classify",
    "delivery_rank",
    "destination_kind",
    "due",
    "record_attempt",
    "retry_after_seconds",
    "retry_delay",
]

DeliveryStatus = Literal["pending", "sent", "failed", "dead"]
Verdict = Literal["sent", "retry", "fail"]
ErrorKind = Literal["timeout", "connection", "rejected"]
DestinationKind = Literal["kafka", "webhook", "wecom", "dingtalk", "feishu", "email"]

DEFAULT_MAX_ATTEMPTS = 14  # about 28 minutes of retries on average (see the settings)
DEFAULT_BASE_S = 2.0  # backoff ceilings: 2 s, 4 s, 8 s, ... up to the cap
DEFAULT_CAP_S = 600.0

_RETRYABLE_STATUS = frozenset({408, 429})
_RETRY_AFTER_STATUS = frozenset({429, 503})
_RETRYABLE_ERRORS: frozenset[ErrorKind] = frozenset({"timeout", "connection"})
_OPEN: frozenset[DeliveryStatus] = frozenset({"pending", "failed"})


@dataclass(frozen=True)
class Outcome:
    """What one attempt got back: an HTTP status, or an error with no response.

    `error_kind` is `timeout`, `connection` (refused, reset, DNS) or `rejected` (a
    destination without HTTP, such as Kafka, refused the message permanently: too large,
    not authorised). `retry_after_s` is the receiver's Retry-After, in seconds.
    """

    status: int | None = None
    error_kind: ErrorKind | None = None
    detail: str = ""
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if (self.status is None) == (self.error_kind is None):
            raise ValueError("an outcome is either an HTTP status or an error kind")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"HTTP status out of range: {self.status}")
        if self.error_kind is not None and self.error_kind not in get_args(ErrorKind):
            raise ValueError(f"unknown error kind: {self.error_kind!r}")

    @classmethod
    def http(cls, status: int, retry_after_s: float | None = None, detail: str = "") -> Outcome:
        """A response arrived with this status."""
        return cls(status=status, retry_after_s=retry_after_s, detail=detail)

    @classmethod
    def timeout(cls, detail: str = "") -> Outcome:
        """No response within the request timeout."""
        return cls(error_kind="timeout", detail=detail)

    @classmethod
    def connection_error(cls, detail: str = "") -> Outcome:
        """The request could not be sent or the connection broke."""
        return cls(error_kind="connection", detail=detail)

    @classmethod
    def rejected(cls, detail: str = "") -> Outcome:
        """A non-HTTP destination refused the message for good."""
        return cls(error_kind="rejected", detail=detail)

    def describe(self) -> str:
        """A short text for `last_error` and the logs, e.g. `HTTP 503: busy`."""
        head = f"HTTP {self.status}" if self.status is not None else str(self.error_kind)
        return f"{head}: {self.detail}" if self.detail else head


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One dispatch on its way to one destination."""

    delivery_id: str
    dispatch_id: str
    destination: str  # "kafka:dispatch.water.v1" or "webhook:<endpoint-name>"
    status: DeliveryStatus = "pending"
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    last_error: str | None = None
    next_attempt_at: datetime | None = None  # None while pending: due at once
    created_at: datetime
    sent_at: datetime | None = None

    def __post_init__(self) -> None:
        destination_kind(self.destination)
        if self.status not in get_args(DeliveryStatus):
            raise ValueError(f"unknown delivery status: {self.status!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.attempts <= self.max_attempts:
            raise ValueError("attempts must be between 0 and max_attempts")


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as logged and stored."""

    delivery_id: str
    destination: str
    number: int  # 1-based
    at: datetime
    outcome: Verdict
    status_code: int | None
    error: str | None
    duration_ms: int
    delivery_status: DeliveryStatus  # the delivery's status after this attempt
    next_attempt_at: datetime | None

    def log_fields(self) -> dict[str, object]:
        """Key-value pairs for a structured log line."""
        return {
            "delivery_id": self.delivery_id,
            "destination": self.destination,
            "attempt": self.number,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "delivery_status": self.delivery_status,
            "next_attempt_at": (
                self.next_attempt_at.isoformat() if self.next_attempt_at is not None else None
            ),
        }


def destination_kind(destination: str) -> DestinationKind:
    """The kind of `<kind>:<name>`: kafka:<topic>, webhook:<endpoint>, wecom:<robot>,
    dingtalk:<robot>, feishu:<robot> or email:<mailbox>."""
    kind, sep, name = destination.partition(":")
    kinds = get_args(DestinationKind)
    if not sep or not name or kind not in kinds:
        raise ValueError(
            f"destination must be <kind>:<name> with kind one of {', '.join(kinds)}:"
            f" {destination!r}"
        )
    return kind  # type: ignore[return-value]


def classify(outcome: Outcome | int) -> Verdict:
    """`sent` for 2xx; `retry` for 5xx, 429, 408, timeouts and connection errors; else `fail`.

    A bare int is an HTTP status. 3xx counts as a permanent failure: redirects are not
    followed, the endpoint's URL must be fixed instead.
    """
    result = Outcome.http(outcome) if isinstance(outcome, int) else outcome
    if result.error_kind is not None:
        return "retry" if result.error_kind in _RETRYABLE_ERRORS else "fail"
    status = result.status
    assert status is not None
    if 200 <= status <= 299:
        return "sent"
    if status >= 500 or status in _RETRYABLE_STATUS:
        return "retry"
    return "fail"


def retry_delay(
    attempt: int,
    outcome: Outcome,
    rng: random.Random | None = None,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    The receiver's Retry-After (on 429 and 503), capped at `cap_s`, when given; otherwise
    exponential backoff with full jitter.
    """
    if outcome.retry_after_s is not None and outcome.status in _RETRY_AFTER_STATUS:
        return min(cap_s, max(0.0, outcome.retry_after_s))
    return backoff_delay(attempt, base=base_s, cap=cap_s, rng=rng)


def record_attempt(
    delivery: Delivery,
    outcome: Outcome | int,
    now: datetime,
    rng: random.Random | None = None,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> Delivery:
    """The delivery after one more attempt, which ended at `now` with `outcome`."""
    if delivery.status not in _OPEN:
        raise ValueError(f"delivery {delivery.delivery_id} is already {delivery.status}")
    result = Outcome.http(outcome) if isinstance(outcome, int) else outcome
    attempts = delivery.attempts + 1
    verdict = classify(result)
    if verdict == "sent":
        return replace(
            delivery,
            status="sent",
            attempts=attempts,
            last_error=None,
            next_attempt_at=None,
            sent_at=now,
        )
    if verdict == "fail" or attempts >= delivery.max_attempts:
        return replace(
            delivery,
            status="dead",
            attempts=attempts,
            last_error=result.describe(),
            next_attempt_at=None,
        )
    delay = retry_delay(attempts, result, rng=rng, base_s=base_s, cap_s=cap_s)
    return replace(
        delivery,
        status="failed",
        attempts=attempts,
        last_error=result.describe(),
        next_attempt_at=now + timedelta(seconds=delay),
    )


def attempt_record(
    after: Delivery, outcome: Outcome | int, at: datetime, duration_ms: int
) -> Attempt:
    """The `Attempt` to log, given the delivery as `record_attempt` returned it."""
    result = Outcome.http(outcome) if isinstance(outcome, int) else outcome
    verdict = classify(result)
    return Attempt(
        delivery_id=after.delivery_id,
        destination=after.destination,
        number=after.attempts,
        at=at,
        outcome=verdict,
        status_code=result.status,
        error=None if verdict == "sent" else result.describe(),
        duration_ms=duration_ms,
        delivery_status=after.status,
        next_attempt_at=after.next_attempt_at,
    )


def due(deliveries: Iterable[Delivery], now: datetime) -> list[Delivery]:
    """Pending or failed deliveries whose next attempt is at or before `now`, oldest first."""
    ready = [
        d
        for d in deliveries
        if d.status in _OPEN and (d.next_attempt_at is None or d.next_attempt_at <= now)
    ]
    return sorted(
        ready, key=lambda d: (d.next_attempt_at or d.created_at, d.created_at, d.delivery_id)
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header value in seconds: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


#: what a department must act on first: new, urged, escalated or reopened work, then
#: changes to it, then reminders and cancellations
KIND_RANK: dict[str, int] = {
    "task.created": 0,
    "task.urged": 0,
    "task.escalated": 0,
    "task.reopened": 0,
    "task.updated": 1,
    "task.reminder": 2,
    "task.cancelled": 2,
}


def delivery_rank(kind: str, priority: int) -> int:
    """A delivery's place in the outbox (lower goes first): the task's priority (1, the
    most urgent, to 4) first, then the kind (`KIND_RANK`; an unknown kind goes last of its
    priority)."""
    return (min(4, max(1, priority)) - 1) * 3 + KIND_RANK.get(kind, 2)
