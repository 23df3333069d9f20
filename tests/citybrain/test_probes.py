"""The probes' decisions (pure): which check failed and why, timeouts, liveness from the
stall watchdog's verdict. The checks are plain coroutines: no Kafka, no database."""

from __future__ import annotations

import asyncio
import time

import pytest

from citybrain.probes import Check, Verdict, liveness, readiness


async def answers() -> None:
    return None


async def refused() -> None:
    raise ConnectionRefusedError("connection refused")


async def hangs() -> None:
    await asyncio.sleep(30)


CASES: list[tuple[dict[str, Check], bool, list[str], dict[str, str]]] = [
    # checks, ready, failed, a fragment of each failed check's result
    ({"database": answers, "kafka": answers}, True, [], {}),
    (
        {"database": refused, "kafka": answers},
        False,
        ["database"],
        {"database": "ConnectionRefusedError: connection refused"},
    ),
    ({"database": answers, "kafka": hangs}, False, ["kafka"], {"kafka": "no answer within 0.2s"}),
    (
        {"database": hangs, "kafka": refused},
        False,
        ["database", "kafka"],
        {"database": "no answer within", "kafka": "ConnectionRefusedError"},
    ),
    ({}, True, [], {}),  # nothing to wait for
]


@pytest.mark.parametrize(("checks", "ready", "failed", "why"), CASES)
def test_readiness_names_the_checks_that_failed_and_why(
    checks: dict[str, Check], ready: bool, failed: list[str], why: dict[str, str]
) -> None:
    verdict = asyncio.run(readiness(checks, timeout=0.2))
    assert verdict.ok is ready
    assert verdict.status_code == (200 if ready else 503)
    assert verdict.failed == failed
    assert list(verdict.checks) == list(checks)
    for name, fragment in why.items():
        assert fragment in verdict.checks[name]
    assert verdict.body() == {
        "status": "ready" if ready else "not ready",
        "checks": verdict.checks,
    }


def test_checks_run_side_by_side_so_a_probe_takes_one_timeout_not_their_sum() -> None:
    started = time.monotonic()
    verdict = asyncio.run(readiness({"a": hangs, "b": hangs, "c": hangs}, timeout=0.3))
    assert verdict.failed == ["a", "b", "c"]
    assert time.monotonic() - started < 0.9


def test_a_long_error_is_cut_so_the_body_stays_small() -> None:
    async def verbose() -> None:
        raise RuntimeError("x" * 1000)

    verdict = asyncio.run(readiness({"database": verbose}))
    assert len(verdict.checks["database"]) == 200


@pytest.mark.parametrize(
    ("stalled", "limit", "code", "checks"),
    [
        (None, 60.0, 200, {"event_loop": "ok", "watchdog": "ok"}),
        (None, 0.0, 200, {"event_loop": "ok"}),  # the watchdog is off
        (
            ("wait_empty", 73.5),
            60.0,
            503,
            {
                "event_loop": "ok",
                "watchdog": "stalled in wait_empty: 73.5s without progress (limit 60s)",
            },
        ),
    ],
)
def test_liveness_fails_only_on_a_stall_the_watchdog_names(
    stalled: tuple[str, float] | None, limit: float, code: int, checks: dict[str, str]
) -> None:
    verdict = liveness(stalled, limit)
    assert verdict.status_code == code
    assert verdict.checks == checks
    assert verdict.body()["status"] == ("alive" if code == 200 else "stalled")


def test_a_verdict_with_every_check_ok_is_ready() -> None:
    assert Verdict({"a": "ok"}).ok and not Verdict({"a": "ok", "b": "down"}).ok
