import random
from datetime import UTC, datetime, timedelta

import pytest

from citybrain.dispatch.outbox import (
    Delivery,
    Outcome,
    Verdict,
    attempt_record,
    classify,
    delivery_rank,
    destination_kind,
    due,
    record_attempt,
    retry_after_seconds,
    retry_delay,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class TopOfRange(random.Random):
    """Full jitter pinned to the ceiling, so delays are deterministic."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _delivery(**changes: object) -> Delivery:
    fields: dict[str, object] = {
        "delivery_id": "dl-1",
        "dispatch_id": "d-1",
        "destination": "webhook:water-utility",
        "created_at": T0,
        "max_attempts": 5,
    }
    fields.update(changes)
    return Delivery(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (200, "sent"),
        (201, "sent"),
        (204, "sent"),
        (299, "sent"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (429, "retry"),
        (408, "retry"),
        (Outcome.timeout("read timed out after 15s"), "retry"),
        (Outcome.connection_error("connection refused"), "retry"),
        (Outcome.rejected("message too large"), "fail"),
        (400, "fail"),
        (401, "fail"),
        (403, "fail"),
        (404, "fail"),
        (410, "fail"),
        (422, "fail"),
        (301, "fail"),
        (302, "fail"),
        (100, "fail"),
        (Outcome.http(503, retry_after_s=30), "retry"),
    ],
)
def test_classify(outcome: Outcome | int, verdict: Verdict) -> None:
    assert classify(outcome) == verdict


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"status": 200, "error_kind": "timeout"}, {"status": 99}, {"status": 600}],
)
def test_outcome_is_a_status_or_an_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Outcome(**kwargs)  # type: ignore[arg-type]


def test_three_server_errors_then_success() -> None:
    d = _delivery()
    rng = TopOfRange()
    now = T0
    delays = []
    for status in (500, 500, 500):
        d = record_attempt(d, status, now, rng=rng, base_s=2.0, cap_s=600.0)
        assert d.status == "failed"
        assert d.last_error == "HTTP 500"
        assert d.next_attempt_at is not None
        delays.append((d.next_attempt_at - now).total_seconds())
        assert due([d], now) == []
        now = d.next_attempt_at
        assert due([d], now) == [d]
    d = record_attempt(d, 200, now, rng=rng)
    assert d.status == "sent"
    assert d.attempts == 4
    assert d.sent_at == now
    assert d.next_attempt_at is None
    assert d.last_error is None
    assert delays == [2.0, 4.0, 8.0]


def test_jittered_delays_stay_under_the_growing_ceiling() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (20, 600.0)]:
        d = _delivery(attempts=attempt - 1, max_attempts=30, status="failed")
        after = record_attempt(d, 503, T0, rng=rng)
        assert after.next_attempt_at is not None
        assert T0 <= after.next_attempt_at <= T0 + timedelta(seconds=ceiling)


def test_not_found_goes_dead_at_once() -> None:
    d = record_attempt(_delivery(), Outcome.http(404, detail="no such endpoint"), T0)
    assert d.status == "dead"
    assert d.attempts == 1
    assert d.last_error == "HTTP 404: no such endpoint"
    assert d.next_attempt_at is None
    assert due([d], T0 + timedelta(days=1)) == []


def test_last_attempt_failing_goes_dead() -> None:
    d = _delivery(max_attempts=3)
    now = T0
    for _ in range(2):
        d = record_attempt(d, Outcome.timeout(), now)
        assert d.status == "failed"
        assert d.next_attempt_at is not None
        now = d.next_attempt_at
    d = record_attempt(d, Outcome.timeout("no answer in 15s"), now)
    assert d.status == "dead"
    assert d.attempts == 3
    assert d.last_error == "timeout: no answer in 15s"
    assert d.next_attempt_at is None


def test_single_attempt_delivery_goes_dead_on_a_retryable_error() -> None:
    assert record_attempt(_delivery(max_attempts=1), 503, T0).status == "dead"


@pytest.mark.parametrize("status", ["sent", "dead"])
def test_finished_deliveries_take_no_more_attempts(status: str) -> None:
    d = _delivery(status=status, attempts=1)
    with pytest.raises(ValueError):
        record_attempt(d, 200, T0)


@pytest.mark.parametrize(
    ("outcome", "delay_s"),
    [
        (Outcome.http(429, retry_after_s=120), 120.0),
        (Outcome.http(503, retry_after_s=45), 45.0),
        (Outcome.http(503, retry_after_s=86_400), 600.0),  # capped
        (Outcome.http(429, retry_after_s=-3), 0.0),
        (Outcome.http(500, retry_after_s=120), 2.0),  # only 429 and 503 carry it
        (Outcome.http(429), 2.0),  # absent: backoff
    ],
)
def test_retry_after_is_honoured(outcome: Outcome, delay_s: float) -> None:
    d = record_attempt(_delivery(), outcome, T0, rng=TopOfRange(), base_s=2.0, cap_s=600.0)
    assert d.status == "failed"
    assert d.next_attempt_at == T0 + timedelta(seconds=delay_s)
    assert retry_delay(1, outcome, rng=TopOfRange(), base_s=2.0, cap_s=600.0) == delay_s


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sat, 01 Mar 2025 08:01:30 GMT", 90.0),
        ("Sat, 01 Mar 2025 07:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, T0) == seconds


def test_due_picks_open_deliveries_whose_time_has_come() -> None:
    fresh = _delivery(delivery_id="a-pending", created_at=T0 + timedelta(seconds=5))
    ready = _delivery(
        delivery_id="b-ready", status="failed", attempts=1, next_attempt_at=T0 - timedelta(1)
    )
    on_time = _delivery(delivery_id="c-on-time", status="failed", attempts=1, next_attempt_at=T0)
    later = _delivery(
        delivery_id="d-later", status="failed", attempts=1, next_attempt_at=T0 + timedelta(1)
    )
    sent = _delivery(delivery_id="e-sent", status="sent", attempts=1, sent_at=T0)
    dead = _delivery(delivery_id="f-dead", status="dead", attempts=5)
    now = T0 + timedelta(seconds=10)
    picked = due([dead, later, fresh, sent, on_time, ready], now)
    assert [d.delivery_id for d in picked] == ["b-ready", "c-on-time", "a-pending"]
    assert due([fresh], T0) == [fresh]  # pending without next_attempt_at is due at once


def test_attempt_record_for_the_log() -> None:
    before = _delivery()
    outcome = Outcome.http(503, detail="maintenance")
    after = record_attempt(before, outcome, T0 + timedelta(seconds=1), rng=TopOfRange())
    attempt = attempt_record(after, outcome, at=T0, duration_ms=812)
    assert attempt.delivery_id == "dl-1"
    assert attempt.number == 1
    assert attempt.outcome == "retry"
    assert attempt.status_code == 503
    assert attempt.error == "HTTP 503: maintenance"
    assert attempt.delivery_status == "failed"
    assert attempt.next_attempt_at == after.next_attempt_at
    fields = attempt.log_fields()
    assert fields["attempt"] == 1
    assert fields["at"] == "2025-03-01T08:00:00+00:00"
    assert fields["duration_ms"] == 812

    sent = record_attempt(after, 200, T0 + timedelta(seconds=5))
    ok = attempt_record(sent, 200, at=T0 + timedelta(seconds=5), duration_ms=40)
    assert (ok.number, ok.outcome, ok.error, ok.delivery_status) == (2, "sent", None, "sent")
    assert ok.log_fields()["next_attempt_at"] is None

    timeout = attempt_record(after, Outcome.timeout(), at=T0, duration_ms=15_000)
    assert (timeout.status_code, timeout.error) == (None, "timeout")


@pytest.mark.parametrize(
    ("destination", "kind"),
    [("kafka:dispatch.water.v1", "kafka"), ("webhook:water-utility", "webhook")],
)
def test_destination_kind(destination: str, kind: str) -> None:
    assert destination_kind(destination) == kind


@pytest.mark.parametrize("destination", ["water", "kafka:", "sms:13800000000", ""])
def test_bad_destination_rejected(destination: str) -> None:
    with pytest.raises(ValueError):
        _delivery(destination=destination)


@pytest.mark.parametrize(
    "changes",
    [{"status": "queued"}, {"max_attempts": 0}, {"attempts": -1}, {"attempts": 6}],
)
def test_invalid_delivery_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _delivery(**changes)


@pytest.mark.parametrize(
    ("kind", "priority", "rank"),
    [
        ("task.created", 1, 0),
        ("task.urged", 1, 0),
        ("task.escalated", 1, 0),
        ("task.updated", 1, 1),
        ("task.reminder", 1, 2),
        ("task.created", 2, 3),
        ("task.cancelled", 4, 11),
        ("task.something-new", 1, 2),  # unknown: last of its priority
        ("task.created", 0, 0),  # out of range: clamped
        ("task.created", 9, 9),
    ],
)
def test_delivery_rank(kind: str, priority: int, rank: int) -> None:
    assert delivery_rank(kind, priority) == rank


def test_priority_comes_before_kind() -> None:
    assert delivery_rank("task.reminder", 1) < delivery_rank("task.created", 2)
