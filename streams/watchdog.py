"""The stall watchdog: a worker that waits too long says what it waits for and exits.

Faust waits without a limit: a rebalance waits until every record taken is acked
(`Consumer.wait_empty`) and until a commit in progress has finished, and a worker stuck
there consumes nothing, with no error and no exit (faust-streaming issues 629 and 133;
citybrain issue 18). A stuck worker should be restarted, and seen.

The event loop marks the phases it enters and leaves (`begin`, `end`), and once a second
(`App`'s beat) the progress it makes in them (`progress`: recovery offsets read, records
acked). A thread checks the marks every second; when a phase has made no progress for
`limit` seconds, or the event loop itself has not beaten for that long, it logs an error
naming the phase and what is in flight (topic, partition and offset of each record not
acked), with every task's stack, leaves a record in the data folder, and ends the process
with `EXIT_STALLED`, so that its supervisor (systemd, Kubernetes, `citybrain chaos`)
starts it again. The next worker of the same app counts those records in
`citybrain_worker_stalls_total`; `citybrain_stall_wait_seconds` shows a wait as it grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mode.utils.tracebacks import format_task_stack

from citybrain.logs import get_logger
from citybrain.metrics import STALL_WAIT_SECONDS, STALLS

log = get_logger(__name__)

#: The exit status of a worker the watchdog stopped (EX_TEMPFAIL: "try again").
EXIT_STALLED = 75
#: The phase standing for the event loop itself (no beat for `limit` seconds).
LOOP = "event_loop"


@dataclass
class Wait:
    """A phase the worker is in: since when, and when it last made progress."""

    phase: str
    since: float
    progress_at: float
    mark: Any = None


@dataclass
class Stall:
    """A phase that made no progress for too long."""

    phase: str
    waited: float
    details: dict[str, Any] = field(default_factory=dict)


def overdue(waits: list[Wait], now: float, limit: float) -> Stall | None:
    """The phase that has waited longest without progress, if beyond `limit` (pure).

    The wait is not rounded: a stall is strictly over the limit, and so is what it reports
    (rounded to 0.1 s, 6.04 s over a 6 s limit read as 6.0, not over it)."""
    worst = max(waits, key=lambda w: now - w.progress_at, default=None)
    if worst is None or now - worst.progress_at <= limit:
        return None
    return Stall(worst.phase, now - worst.progress_at)


class Watchdog:
    """Phase marks kept by the event loop, checked by a thread (see the module doc)."""

    def __init__(
        self,
        limit: float,
        records_dir: Path | None = None,
        *,
        describe: Callable[[], dict[str, Any]] = dict,
        exit: Callable[[int], None] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.records_dir = records_dir
        self.describe = describe
        self.exit = exit
        self.clock = clock
        self.waits: dict[str, Wait] = {}
        self.beat_at = clock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stalled: Stall | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the event loop's side --------------------------------------------------------------
    def begin(self, phase: str) -> None:
        now = self.clock()
        self.waits[phase] = Wait(phase, now, now)

    def end(self, phase: str) -> None:
        self.waits.pop(phase, None)
        STALL_WAIT_SECONDS.labels(phase).set(0)

    def progress(self, phase: str, mark: Any) -> None:
        """A phase's progress marker (recovery offsets, records in flight): a new value
        restarts its clock."""
        wait = self.waits.get(phase)
        if wait is not None and mark != wait.mark:
            wait.mark = mark
            wait.progress_at = self.clock()

    def beat(self) -> None:
        self.beat_at = self.clock()

    # --- the thread's side ------------------------------------------------------------------
    def check(self) -> Stall | None:
        """The stall to act on now, if any (gauges updated on the way)."""
        now = self.clock()
        waits = list(self.waits.values())
        for wait in waits:
            STALL_WAIT_SECONDS.labels(wait.phase).set(round(now - wait.progress_at, 1))
        if self.loop is not None:
            waits.append(Wait(LOOP, self.beat_at, self.beat_at))
        return overdue(waits, now, self.limit)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch from a thread of its own (a daemon: it never keeps the process alive)."""
        self.loop = loop
        self.beat()
        if self.limit > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stall-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            stall = self.check()
            if stall is not None:
                self.fire(stall)
                return

    def fire(self, stall: Stall) -> None:
        """Log what the worker waits for, leave a record, exit with EXIT_STALLED."""
        with contextlib.suppress(Exception):
            stall.details = self.describe()
        self.stalled = stall
        log.error(
            "worker stalled: exiting so that it is restarted",
            phase=stall.phase,
            waited_s=stall.waited,
            limit_s=self.limit,
            exit_status=EXIT_STALLED,
            **stall.details,
        )
        if self.loop is not None:
            log.error("task stacks at the stall", tasks=task_stacks(self.loop))
        self._record(stall)
        _flush_logs()
        self.exit(EXIT_STALLED)

    def _record(self, stall: Stall) -> None:
        if self.records_dir is None:
            return
        with contextlib.suppress(OSError):
            self.records_dir.mkdir(parents=True, exist_ok=True)
            path = self.records_dir / f"stall-{os.getpid()}-{int(time.time() * 1000)}.json"
            path.write_text(
                json.dumps(
                    {"phase": stall.phase, "waited_s": stall.waited, "pid": os.getpid()}
                    | {k: v for k, v in stall.details.items() if k != "stacks"},
                    default=str,
                )
            )

    def count_previous(self) -> int:
        """Count (in `citybrain_worker_stalls_total`) and remove the records that stalled
        workers of this app left; how many there were."""
        if self.records_dir is None or not self.records_dir.is_dir():
            return 0
        found = 0
        for path in sorted(self.records_dir.glob("stall-*.json")):
            try:
                record = json.loads(path.read_text())
                path.unlink()
            except (OSError, ValueError):
                continue
            found += 1
            STALLS.labels(str(record.get("phase", "unknown"))).inc()
            log.warning("a previous worker of this app exited on a stall", **record)
        return found


def task_stacks(loop: asyncio.AbstractEventLoop, limit: int = 12) -> list[str]:
    """Each pending task of the loop and where it waits (read from another thread while
    the loop is stuck, so at worst slightly out of date)."""
    tasks: list[asyncio.Task[Any]] = []
    for _ in range(5):
        with contextlib.suppress(RuntimeError):  # the set changed while being read
            tasks = list(asyncio.all_tasks(loop))
            break
    stacks = []
    for task in tasks:
        with contextlib.suppress(Exception):
            stacks.append(format_task_stack(task, limit=limit))
    return stacks


def log_every_task() -> None:
    """Log every task of every event loop of the process (the worker's and its consumer
    thread's) with where it waits: what a worker that consumes nothing without stalling a
    watched phase is waiting for (`kill -USR2 <pid>`, `streams.runtime.Worker`)."""
    import gc

    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for index, loop in enumerate(loops):
        if not loop.is_closed():
            log.warning("tasks on signal", loop=index, tasks=task_stacks(loop, limit=20))
    _flush_logs()


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
