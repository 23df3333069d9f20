"""Maintenance yields to the report path (pure: the pool's lanes, no database): a step waits
while a report holds a connection and until the path was quiet, never forever."""

from __future__ import annotations

import asyncio
import threading
import time

from citybrain.agents.maintenance.agent import yielding
from citybrain.streams.db import Lanes


def test_a_step_runs_at_once_when_reports_are_quiet() -> None:
    assert yielding(Lanes(bulk_max=1), quiet=0.0) < 0.05


def test_a_step_waits_for_the_report_path_then_its_quiet_time() -> None:
    lanes = Lanes(bulk_max=1)
    lanes.report_wait()
    asyncio.run(lanes.report_started(got=True))  # a report holds a connection
    done = threading.Timer(0.2, lanes.report_done)  # and gives it back 0.2 s later
    done.start()
    waited = yielding(lanes, quiet=0.1, most=5.0)
    assert 0.3 - 0.02 <= waited < 2.0
    done.join()


def test_a_busy_report_path_does_not_hold_a_step_forever() -> None:
    lanes = Lanes(bulk_max=1)
    lanes.report_wait()  # waits, and never gets one
    started = time.monotonic()
    assert yielding(lanes, quiet=0.1, most=0.2) >= 0.2
    assert time.monotonic() - started < 1.0
