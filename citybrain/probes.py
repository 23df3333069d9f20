"""Liveness and readiness as data: named checks run side by side, each bounded by a
timeout, give a verdict that says which failed and why (200 or 503 and a JSON body).

No Kafka, database or web framework here: the API (`citybrain.api.ops`) and the worker
(`streams.health`) pass in their checks and serve the verdict, so the probes' decisions
are tested without services. A probe never hangs: a check that does not answer within
its timeout fails as "no answer within Ns".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: a dependency check: returns when the dependency answers, raises when it does not
Check = Callable[[], Awaitable[object]]
#: seconds each readiness check may take (a Kubernetes probe's timeout is longer)
READY_TIMEOUT_S = 3.0
OK = "ok"


@dataclass(frozen=True)
class Verdict:
    """What a probe answers: each check's result (`ok` or why not) and whether all passed."""

    checks: dict[str, str]
    good: str = "ready"
    bad: str = "not ready"

    @property
    def ok(self) -> bool:
        return all(result == OK for result in self.checks.values())

    @property
    def status_code(self) -> int:
        return 200 if self.ok else 503

    @property
    def failed(self) -> list[str]:
        """The checks that did not pass, in the order they were given."""
        return [name for name, result in self.checks.items() if result != OK]

    def body(self) -> dict[str, Any]:
        return {"status": self.good if self.ok else self.bad, "checks": dict(self.checks)}


async def outcome(check: Check, timeout: float) -> str:
    """`ok`, or why the check failed: its error, or no answer within `timeout`."""
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return OK


async def readiness(checks: Mapping[str, Check], timeout: float = READY_TIMEOUT_S) -> Verdict:
    """Run every check at once (so a probe takes at most `timeout`, not their sum)."""
    results = await asyncio.gather(*(outcome(check, timeout) for check in checks.values()))
    return Verdict(dict(zip(checks, results, strict=True)))


def liveness(stalled: tuple[str, float] | None, limit: float) -> Verdict:
    """The process answers (this runs on its event loop, so it does); not alive when the
    stall watchdog names a phase that has waited without progress beyond `limit` seconds
    (`stalled`: the phase and its wait), as it does just before it ends the process. With
    the watchdog off (`limit` 0) only the event loop is checked."""
    checks = {"event_loop": OK}
    if limit > 0:
        checks["watchdog"] = (
            OK
            if stalled is None
            else f"stalled in {stalled[0]}: {stalled[1]:g}s without progress (limit {limit:g}s)"
        )
    return Verdict(checks, good="alive", bad="stalled")
