"""The scenarios: each runs one kind of fault against the real stack the settings name and
returns a dataclass of figures. Counts and durations are parameters, so `citybrain chaos`
runs them at full size and `tests/faults/` small.

All use the traffic of `citybrain_tools.chaos.traffic` (unique-id smoke alarms) and workers in a
fresh consumer group started at the current end of every topic."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options
from citybrain.streams.watchdog import EXIT_STALLED
from citybrain_tools import kafka
from citybrain_tools.chaos import faults, traffic
from citybrain_tools.chaos.delivered import delivered
from citybrain_tools.chaos.side import SideTraffic

Progress = Callable[[str], None]


def stderr_progress(line: str) -> None:
    print(f"[chaos] {line}", file=sys.stderr, flush=True)


def _quiet(line: str) -> None:
    pass


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


class Sampler:
    """Samples the run's stored-row count every `interval` s in a thread (the last value
    is kept while the database is away)."""

    def __init__(self, settings: Settings, run: str, interval: float = 0.5) -> None:
        self.settings, self.run, self.interval = settings, run, interval
        self.samples: list[tuple[float, int]] = []
        self.last = 0
        self._stop = threading.Event()
        self.t0 = time.monotonic()

    def start(self) -> Sampler:
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # the database may be the fault under test
                self.last = traffic.stored_count(self.settings, self.run)
            self.samples.append((time.monotonic() - self.t0, self.last))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def longest_stall(self, since: float = 0.0, until: float | None = None) -> float:
        """The longest time between two increases of the count, within [since, until]."""
        last_change, longest, previous = None, 0.0, None
        for t, n in self.samples:
            if t < since or (until is not None and t > until):
                continue
            if previous is None or n != previous:
                if last_change is not None:
                    longest = max(longest, t - last_change)
                last_change, previous = t, n
        return round(longest, 1)


def _wait_progress(sampler: Sampler, above: int, timeout: float) -> float | None:
    """Seconds until the stored count exceeds `above`, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sampler.last > above:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


@dataclass
class Common:
    """Figures every traffic scenario reports."""

    events: int = 0
    lost: int = 0
    constraint_duplicate_rows: int = 0  # 0 by the events table's primary key
    duplicate_dispatches: int = 0  # tasks beyond one per site and department (database)
    # what the departments received (their Kafka topics), where duplicates can happen
    task_messages: int = 0
    duplicate_tasks: int = 0  # task.created twice for one incident and department
    redelivered_messages: int = 0  # the same message id again on a department's topic
    split_incidents: int = 0
    incidents: int = 0
    dispatches: int = 0
    seconds: float = 0.0
    settled: bool = False

    def fill(self, got: traffic.Landed, expected: int) -> None:
        self.events = expected
        self.lost = got.lost(expected)
        self.constraint_duplicate_rows = got.constraint_duplicate_rows
        self.duplicate_dispatches = got.duplicate_dispatches
        self.split_incidents = got.split_sites
        self.incidents = got.incidents
        self.dispatches = got.dispatches

    #: A scenario passes when these figures are 0 and these flags hold (fields or
    #: properties); each scenario adds its own.
    MUST_BE_ZERO: ClassVar[tuple[str, ...]] = (
        "lost",
        "constraint_duplicate_rows",
        "duplicate_dispatches",
        "duplicate_tasks",
        "redelivered_messages",
        "split_incidents",
    )
    MUST_HOLD: ClassVar[tuple[str, ...]] = ("settled",)

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in self.MUST_BE_ZERO) and all(
            getattr(self, name) for name in self.MUST_HOLD
        )


@dataclass
class WorkerKills(Common):
    kills: int = 0
    recovery_p50_s: float | None = None
    recovery_p99_s: float | None = None
    recoveries_s: list[float] = field(default_factory=list)


@dataclass
class BrokerKill(Common):
    # the fault, proven (faults.kill_broker raises otherwise): the killed pid was gone and
    # the port refused connections; the broker came back as another process
    broker_killed_pid: int = 0
    broker_new_pid: int = 0
    broker_down_s: float = 0.0
    MUST_HOLD = (*Common.MUST_HOLD, "broker_replaced")

    @property
    def broker_replaced(self) -> bool:
        return 0 < self.broker_killed_pid != self.broker_new_pid > 0

    copies_on_events_topic: int = 0
    duplicates_absorbed: int = 0
    stall_s: float = 0.0
    worker_restarts: int = 0


@dataclass
class DatabaseStop(Common):
    database_refused: bool = False  # proven: the database refused connections once stopped
    database_down_s: float = 0.0
    MUST_HOLD = (*Common.MUST_HOLD, "database_refused")
    peak_lag: int = 0
    catch_up_s: float | None = None


@dataclass
class Rebalances(Common):
    cycles: int = 0
    joins: int = 0  # seen: the group stable with two members
    leaves: int = 0
    settle_s: float | None = None  # from the last leave until every record had landed
    stall_exits: int = 0  # workers the stall watchdog ended (each restarted)
    other_exits: int = 0  # workers that exited on their own otherwise
    side_sent: int = 0  # pings, hotline calls and task acknowledgements sent
    side_lost: int = 0
    side_error: str | None = None  # the side traffic stopped early: its counts prove less
    side: dict[str, int] = field(default_factory=dict)
    unconsumed_partitions: int = 0
    unconsumed: list[str] = field(default_factory=list)
    alarms_to_the_end: bool = False  # the alarms still flowed at the last leave

    MUST_BE_ZERO = (
        *Common.MUST_BE_ZERO,
        "unconsumed_partitions",
        "stall_exits",
        "other_exits",
        "side_lost",
    )
    MUST_HOLD = (*Common.MUST_HOLD, "every_cycle", "side_whole", "alarms_to_the_end")

    @property
    def every_cycle(self) -> bool:
        return self.joins == self.leaves == self.cycles

    @property
    def side_whole(self) -> bool:
        """The side traffic ran to the end (else its counts are of fewer records)."""
        return self.side_error is None


def _finish(
    result: Common,
    settings: Settings,
    run: str,
    expected: int,
    per_site: int,
    started: float,
    timeout: float,
) -> None:
    result.settled = traffic.wait_until(
        traffic.settled(settings, run, expected, per_site), timeout, 1.0
    )
    got = traffic.landed(settings, run, per_site)
    result.fill(got, expected)
    # the department topics from a minute before the run started (no earlier run's messages)
    since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - started + 60)
    sent = delivered(settings, got.incident_ids, since)
    result.task_messages = sent.messages
    result.duplicate_tasks = sent.duplicate_tasks
    result.redelivered_messages = sent.redelivered
    result.seconds = round(time.monotonic() - started, 1)


def _log_dir(settings: Settings) -> Path:
    return Path(settings.log_dir or settings.data_dir / "log") / "chaos"


# --- 1. kill -9 a worker again and again -------------------------------------------------------
@dataclass
class _Flow:
    """A scenario's traffic: its run id, its workers (one started), the paced producer and
    the sampler of what landed."""

    run: str
    workers: faults.Workers
    worker: faults.Worker
    paced: traffic.Paced
    sampler: Sampler
    started: float


@contextlib.contextmanager
def _flowing(
    settings: Settings,
    events: int,
    rate: float,
    per_site: int,
    *,
    supervise: bool = False,
    **env: str,
) -> Iterator[_Flow]:
    """A fresh consumer group with one worker (`env` added to its environment) and
    `events` unique events flowing at `rate`/s; every worker of the group is stopped on the
    way out."""
    run = traffic.new_run_id()
    workers = faults.Workers(settings, _log_dir(settings), supervise=supervise, **env)
    started = time.monotonic()
    try:
        worker = workers.start()
        paced = traffic.Paced(settings, traffic.TOPIC, traffic.records(run, events, per_site), rate)
        paced.start()
        sampler = Sampler(settings, run).start()
        yield _Flow(run, workers, worker, paced, sampler, started)
    finally:
        workers.stop_all()


def worker_kills(
    settings: Settings,
    events: int = 100_000,
    rate: float = 1000.0,
    every: tuple[float, float] = (10.0, 30.0),
    per_site: int = 100,
    max_kills: int = 100,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> WorkerKills:
    """kill -9 the worker every `every` seconds (uniform) while `events` unique events flow
    at `rate`/s; a new worker is started at once. Recovery: from the kill until the next
    new row."""
    result = WorkerKills()
    with _flowing(settings, events, rate, per_site) as f:
        worker, sampler = f.worker, f.sampler
        rng = random.Random()  # noqa: S311 - kill timing, not cryptography
        while result.kills < max_kills and time.monotonic() - f.started < timeout:
            time.sleep(rng.uniform(*every))
            if f.paced.done.is_set() and sampler.last >= events:
                break
            if not worker.alive():  # it exited by itself: not a kill of ours
                progress("the worker had exited; starting another")
                worker = f.workers.start()
                continue
            worker.kill()  # raises unless the pid is gone
            killed = time.monotonic()
            result.kills += 1
            worker = f.workers.start()
            time.sleep(0.3)  # a commit sent just before the kill may still land
            before = traffic.stored_count(settings, f.run)
            took = _wait_progress(sampler, before, 180.0)
            took = None if took is None else time.monotonic() - killed
            if took is not None:
                result.recoveries_s.append(round(took, 2))
            progress(f"kill {result.kills}: stored {before}/{events}, recovered in {took} s")
        sampler.stop()
        _finish(result, settings, f.run, events, per_site, f.started, timeout)
    result.recovery_p50_s = percentile(result.recoveries_s, 0.5)
    result.recovery_p99_s = percentile(result.recoveries_s, 0.99)
    return result


# --- 2. hard-kill the broker ---------------------------------------------------------------------
def events_topic_copies(settings: Settings, run: str, start: dict[Any, int]) -> int:
    """Messages of the run on events.v1 written after `start` offsets."""
    needle = f'"device_id":"CH{run}-'.encode()
    needle2 = f'"device_id": "CH{run}-'.encode()
    return sum(
        1
        for m in kafka.messages_after(settings, ["events.v1"], start)
        if needle in m.value or needle2 in m.value
    )


def _until_stored(
    f: _Flow, worker: faults.Worker, events: int, timeout: float, progress: Progress
) -> int:
    """Wait until the traffic is sent and `events` rows are stored (at most `timeout` s),
    starting the worker again whenever it exited; how many times it was started."""
    restarts = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            restarts += 1
            progress("worker exited; starting another")
            worker = f.workers.start()
        if f.paced.done.is_set() and f.sampler.last >= events:
            break
        time.sleep(1)
    return restarts


def broker_kill(
    settings: Settings,
    events: int = 20_000,
    rate: float = 500.0,
    kill_after: float = 15.0,
    down_for: float = 20.0,
    per_site: int = 100,
    timeout: float = 600.0,
    progress: Progress = _quiet,
) -> BrokerKill:
    """SIGKILL the broker `kill_after` s into the traffic, start it again `down_for` s
    later. A worker that died meanwhile is started again (counted)."""
    result = BrokerKill()
    ends = kafka.end_offsets(settings, ["events.v1"])
    with _flowing(settings, events, rate, per_site) as f:
        worker, sampler = f.worker, f.sampler
        time.sleep(kill_after)
        progress(f"broker kill -9 (stored {sampler.last}/{events})")
        killed_at = time.monotonic() - sampler.t0
        result.broker_killed_pid = faults.kill_broker(settings)
        time.sleep(down_for)
        result.broker_new_pid = faults.start_broker(settings, result.broker_killed_pid)
        result.broker_down_s = round(time.monotonic() - sampler.t0 - killed_at, 1)
        progress(f"broker back after {result.broker_down_s} s")
        result.worker_restarts += _until_stored(f, worker, events, timeout, progress)
        sampler.stop()
        _finish(result, settings, f.run, events, per_site, f.started, timeout)
        result.stall_s = sampler.longest_stall(since=killed_at)
        result.copies_on_events_topic = events_topic_copies(settings, f.run, ends)
        result.duplicates_absorbed = max(0, result.copies_on_events_topic - events)
    return result


# --- 3. stop PostgreSQL --------------------------------------------------------------------------
def database_stop(
    settings: Settings,
    events: int = 30_000,
    rate: float = 300.0,
    stop_after: float = 15.0,
    down_for: float = 60.0,
    per_site: int = 100,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> DatabaseStop:
    """Stop PostgreSQL (immediate) `stop_after` s into the traffic, for `down_for` s.
    Lag: records sent minus rows stored; catch-up: from the restart until everything sent
    by then is stored."""
    result = DatabaseStop()
    with _flowing(settings, events, rate, per_site) as f:
        paced, sampler = f.paced, f.sampler
        lag_stop = threading.Event()

        def watch_lag() -> None:
            while not lag_stop.is_set():
                result.peak_lag = max(result.peak_lag, paced.sent - sampler.last)
                lag_stop.wait(0.5)

        threading.Thread(target=watch_lag, daemon=True).start()
        time.sleep(stop_after)
        progress(f"PostgreSQL stop (stored {sampler.last}/{events})")
        t_stop = time.monotonic()
        faults.stop_postgres(settings)
        result.database_refused = True  # stop_postgres raises when it still answers
        time.sleep(down_for)
        faults.start_postgres(settings)
        back = time.monotonic()
        result.database_down_s = round(back - t_stop, 1)
        target = paced.sent
        progress(f"PostgreSQL back after {result.database_down_s} s; {target} sent")
        if traffic.wait_until(lambda: sampler.last >= target, timeout, 0.2):
            result.catch_up_s = round(time.monotonic() - back, 1)
        lag_stop.set()
        sampler.stop()
        _finish(result, settings, f.run, events, per_site, f.started, timeout)
    return result


# --- 4. rebalances -------------------------------------------------------------------------------
FLOW_TOPICS = ("raw.iot.smoke-alarm", "events.v1", "correlate.v1", "incidents.v1")


def unconsumed_partitions(settings: Settings, group: str) -> list[str]:
    """Partitions of the topics the traffic flows through whose committed offset for the
    group is behind their end."""
    ends = kafka.end_offsets(settings, FLOW_TOPICS)
    done = {tp: offset or 0 for tp, offset in kafka.committed(settings, group, ends).items()}
    return [
        f"{tp.topic}[{tp.partition}] {done[tp]}<{end}" for tp, end in ends.items() if done[tp] < end
    ]


def group_members(settings: Settings, group: str) -> int | None:
    """Members of a consumer group with partitions assigned, once it is stable (None while
    it is rebalancing)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_list, **kafka_python_options(settings)
    )
    try:
        # kafka-python 3 names it describe_groups, 2 describe_consumer_groups
        describe = getattr(admin, "describe_groups", None) or admin.describe_consumer_groups
        found: Any = describe([group])
        info = found[group] if isinstance(found, dict) else found[0]
        state = info["group_state"] if isinstance(info, dict) else info.state
        members = info["members"] if isinstance(info, dict) else info.members
        if state != "Stable":
            return None
        return len(members)
    finally:
        admin.close()


def _wait_members(settings: Settings, group: str, count: int, timeout: float) -> bool:
    return traffic.wait_until(lambda: group_members(settings, group) == count, timeout, 0.5)


def rebalances(
    settings: Settings,
    events: int = 30_000,
    rate: float = 300.0,
    period: float = 30.0,
    cycles: int = 3,
    per_site: int = 100,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> Rebalances:
    """One worker stays; a second joins and leaves (clean stop) every `period` s, `cycles`
    times (a join or leave counts once the group is stable with the new member count),
    while smoke alarms flow and, on the other topics the stages read, pings, hotline calls
    and the departments' acknowledgements of the tasks (`citybrain_tools.chaos.side`). The
    alarms flow until the last leave (`events` is the most sent: a run whose cycles outlast
    them fails, `alarms_to_the_end`). Workers run supervised: one that exits (the stall
    watchdog's exit status or any other) is started again and counted, and fails the
    scenario."""
    result = Rebalances(cycles=cycles)
    with _flowing(settings, events, rate, per_site, supervise=True) as f:
        workers, sampler = f.workers, f.sampler
        side = SideTraffic(settings, f.run).start()
        try:
            for cycle in range(cycles):
                time.sleep(period)
                second = workers.start()
                # a cycle counts once the group has really changed: both members assigned
                if _wait_members(settings, workers.app_id, 2, timeout=max(60.0, 3 * period)):
                    result.joins += 1
                progress(f"cycle {cycle + 1}: second worker joins (stored {sampler.last}/{events})")
                time.sleep(period)
                second.stop()
                if _wait_members(settings, workers.app_id, 1, timeout=max(60.0, 3 * period)):
                    result.leaves += 1
                progress(
                    f"cycle {cycle + 1}: second worker leaves (stored {sampler.last}/{events})"
                )
            last_leave = time.monotonic()
            result.alarms_to_the_end = not f.paced.done.is_set()
        finally:
            sent = f.paced.stop()  # the alarms end with the cycles
            progress(f"the alarms stop with the cycles: {sent} sent")
            # the side traffic acknowledges each task as it appears: it stops once every
            # alarm is stored, every incident has its tasks and none waits for its ack
            landed = traffic.settled(settings, f.run, sent, per_site)
            traffic.wait_until(lambda: landed() and side.acknowledged_all(), timeout, 0.5)
            side.stop()
        sampler.stop()
        _finish(result, settings, f.run, sent, per_site, f.started, timeout)
        behind: list[str] = []

        def caught_up() -> bool:
            nonlocal behind
            behind = unconsumed_partitions(settings, workers.app_id)
            return not behind

        traffic.wait_until(lambda: side.landed().lost == 0, 90.0, 0.5)
        if result.settled:
            result.settle_s = round(time.monotonic() - last_leave, 1)
        side_landed = side.landed()  # an error here is the scenario's, not a count of 0
        traffic.wait_until(caught_up, 90.0, 1.0)
        result.unconsumed = behind
        result.unconsumed_partitions = len(behind)
        result.side = side_landed.figures()
        result.side_sent = sum(side_landed.sent.values())
        result.side_lost = side_landed.lost
        result.side_error = side.error
        if side.error:
            progress(f"side traffic error: {side.error}")
        result.stall_exits = workers.stall_exits
        result.other_exits = len(workers.exits) - workers.stall_exits
        for log_path, status in workers.exits:
            progress(f"worker exited with status {status} and was restarted (log {log_path})")
    return result


# --- 6. hostile input ----------------------------------------------------------------------------
@dataclass
class Poison(Common):
    corpus: int = 0
    pills: int = 0
    dead_letters: int = 0
    without_dead_letter: int = 0  # corpus records and pills with no dead letter of theirs
    wrong_reason: int = 0
    missing: list[str] = field(default_factory=list)
    good_behind: int = 0
    good_behind_stored: int = 0
    worker_alive: bool = False

    MUST_BE_ZERO = (*Common.MUST_BE_ZERO, "without_dead_letter", "wrong_reason")
    MUST_HOLD = (*Common.MUST_HOLD, "worker_alive", "every_good_behind_stored")

    @property
    def every_good_behind_stored(self) -> bool:
        return self.good_behind_stored == self.good_behind


def _first_incident_message(settings: Settings, run: str, start: dict[Any, int]) -> Any:
    import orjson

    for m in list(kafka.messages_after(settings, ["incidents.v1"], start)):
        if f"CH{run}-".encode() in m.value:
            return orjson.loads(m.value)
    return None


def poison(
    settings: Settings,
    good: int = 40,
    per_site: int = 10,
    timeout: float = 240.0,
    progress: Progress = _quiet,
) -> Poison:
    """The bad-input corpus and a poison pill for each stage, with good events before and
    behind them: every bad record becomes a dead letter with its reason, the worker goes
    on, and the good events behind are stored, correlated and dispatched."""
    from citybrain_tools.chaos import poison as hostile

    result = Poison()
    run = traffic.new_run_id()
    dlqs = sorted(
        {f"{hostile.raw_topics()[feed]}.dlq" for feed, _, _ in hostile.raw_corpus()}
        | {"events.v1.dlq", "correlate.v1.dlq", "incidents.v1.dlq", "dispatch.status.v1.dlq"}
    )
    workers = faults.Workers(settings, _log_dir(settings))
    started = time.monotonic()
    try:
        worker = workers.start()
        dl_start = kafka.end_offsets(settings, dlqs)
        inc_start = kafka.end_offsets(settings, ["incidents.v1"])
        items = traffic.records(run, 2 * good, per_site)
        traffic.produce(settings, traffic.TOPIC, items[:good])
        traffic.wait_until(traffic.settled(settings, run, good, per_site), timeout)
        progress("good events before the pills are in; sending the corpus and the pills")
        pills = hostile.pills(run, _first_incident_message(settings, run, inc_start))
        from kafka import KafkaProducer

        p = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_list,
            **kafka_python_options(settings),
            acks="all",
            max_request_size=4_000_000,
        )
        corpus_at: dict[tuple[str, int, int], str] = {}
        raw_topic = hostile.raw_topics()
        for feed, raw, reason in hostile.raw_corpus():
            meta = p.send(raw_topic[feed], key=f"bad-{run}".encode(), value=raw).get(30)
            corpus_at[(meta.topic, meta.partition, meta.offset)] = reason
        for pill in pills:
            p.send(pill.topic, key=b"city", value=pill.value, headers=list(pill.headers)).get(30)
        p.close()
        result.corpus, result.pills = len(corpus_at), len(pills)
        # good events behind the bad ones, on the same topics' partitions
        traffic.produce(settings, traffic.TOPIC, items[good:])
        result.good_behind = good
        _finish(result, settings, run, 2 * good, per_site, started, timeout)
        result.good_behind_stored = result.events - result.lost - good
        progress("reading the dead letters")

        def letters() -> list[Any]:
            return list(kafka.messages_after(settings, dlqs, dl_start))

        found: list[Any] = []

        def all_found() -> bool:
            nonlocal found
            found = letters()
            return len(found) >= len(corpus_at) + len(pills)

        traffic.wait_until(all_found, 60.0, 2.0)
        result.dead_letters = len(found)
        for where, reason in corpus_at.items():
            mine = [
                dict(m.headers)
                for m in found
                if (
                    dict(m.headers).get("dlq.original.topic", b"").decode(),
                    int(dict(m.headers).get("dlq.original.partition", b"-1")),
                    int(dict(m.headers).get("dlq.original.offset", b"-1")),
                )
                == where
            ]
            if not mine:
                result.without_dead_letter += 1
                result.missing.append(f"corpus {reason} at {where}")
            elif not any(h.get("dlq.reason") == reason.encode() for h in mine):
                result.wrong_reason += 1
                result.missing.append(f"corpus {reason}: got {mine[0].get('dlq.reason')!r}")
        for pill in pills:
            mine = [
                dict(m.headers)
                for m in found
                if m.topic == pill.dlq and m.value and pill.marker.encode() in m.value
            ]
            if not mine:
                result.without_dead_letter += 1
                result.missing.append(f"pill {pill.name} ({pill.stage})")
            elif not any(
                h.get("dlq.reason") == pill.reason.encode()
                and h.get("dlq.stage") == pill.stage.encode()
                for h in mine
            ):
                result.wrong_reason += 1
                result.missing.append(f"pill {pill.name}: got {mine[0].get('dlq.reason')!r}")
        result.worker_alive = worker.alive()
    finally:
        workers.stop_all()
    return result


# --- 7. the webhook receiver down ----------------------------------------------------------------
@dataclass
class WebhookOutage(Common):
    receiver_down_s: float = 0.0
    webhook_messages: int = 0  # outbox rows for the webhook
    delivered: int = 0  # distinct webhook-ids accepted
    undelivered: int = 0
    duplicate_deliveries: int = 0  # accepted deliveries beyond one per webhook-id
    dead: int = 0
    bad_signatures: int = 0
    drained_after_s: float | None = None

    MUST_BE_ZERO = (
        *Common.MUST_BE_ZERO,
        "undelivered",
        "duplicate_deliveries",
        "bad_signatures",
    )


def _webhook_rows(settings: Settings, run: str) -> list[tuple[str, str]]:
    with traffic._conn(settings) as conn:
        rows = conn.execute(
            "SELECT DISTINCT o.message_id, o.status FROM dispatch_outbox o"
            " JOIN dispatches d ON d.dispatch_id = o.dispatch_id"
            " JOIN incident_reports r ON r.incident_id = d.incident_id"
            " WHERE r.event_id LIKE %s AND o.destination LIKE 'webhook:%%'",
            (f"smoke-alarm:CH{run}-%",),
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def webhook_outage(
    settings: Settings,
    events: int = 200,
    per_site: int = 10,
    down_for: float = 300.0,
    timeout: float = 600.0,
    progress: Progress = _quiet,
) -> WebhookOutage:
    """The fire department's webhook receiver is down while tasks are made and for
    `down_for` s in all, then back: every task message reaches it, once per webhook-id.
    Retries are set so that they outlast the outage (the default 8 attempts with a 2 s
    base give up after about 4 minutes)."""
    from citybrain.dispatch.routing import DEPARTMENTS_FILE, ROUTES_FILE
    from citybrain.dispatch.webhooks import generate_secret
    from citybrain_tools.chaos.receiver import Receiver

    result = WebhookOutage()
    run = traffic.new_run_id()
    secret = generate_secret()
    receiver = Receiver(secret)
    log_dir = _log_dir(settings)
    log_dir.mkdir(parents=True, exist_ok=True)
    departments = log_dir / f"departments-{run}.yaml"
    departments.write_text(
        DEPARTMENTS_FILE.read_text(encoding="utf-8").replace(
            "https://119-dispatch.fire.example/citybrain/tasks",
            f"http://127.0.0.1:{receiver.port}/hook",
        ),
        encoding="utf-8",
    )
    workers = faults.Workers(
        settings,
        log_dir,
        CITYBRAIN_DEPARTMENTS_FILE=str(departments),
        CITYBRAIN_ROUTES_FILE=str(ROUTES_FILE),
        CITYBRAIN_WEBHOOK_FIRE=secret,
        CITYBRAIN_DELIVERY_MAX_ATTEMPTS="60",
        CITYBRAIN_DELIVERY_BACKOFF_BASE="1",
        CITYBRAIN_DELIVERY_BACKOFF_CAP=str(max(2.0, min(30.0, down_for / 10))),
        CITYBRAIN_DELIVERY_INTERVAL="0.5",
    )
    started = time.monotonic()
    try:
        workers.start()
        went_down = time.monotonic()  # down from the start: no receiver yet
        traffic.produce(settings, traffic.TOPIC, traffic.records(run, events, per_site))
        progress(f"receiver down; {events} events sent")
        time.sleep(max(0.0, down_for - (time.monotonic() - went_down)))
        receiver.up()
        back = time.monotonic()
        result.receiver_down_s = round(back - went_down, 1)
        progress(f"receiver back after {result.receiver_down_s} s")
        _finish(result, settings, run, events, per_site, started, timeout)

        def drained() -> bool:
            rows = _webhook_rows(settings, run)
            return bool(rows) and all(s in ("sent", "dead") for _, s in rows)

        if traffic.wait_until(drained, timeout, 1.0):
            result.drained_after_s = round(time.monotonic() - back, 1)
        time.sleep(2)  # a delivery answered just now is counted
        rows = _webhook_rows(settings, run)
        expected = {m for m, _ in rows}
        result.webhook_messages = len(expected)
        result.dead = sum(1 for _, s in rows if s == "dead")
        with receiver.lock:
            accepted = dict(receiver.accepted)
            result.bad_signatures = receiver.bad_signatures
        result.delivered = len(expected & set(accepted))
        result.undelivered = len(expected - set(accepted))
        result.duplicate_deliveries = sum(n - 1 for m, n in accepted.items() if m in expected)
    finally:
        workers.stop_all()
        receiver.down()
    return result


# --- 5. a slow event under agent concurrency, then kill -9 --------------------------------------
@dataclass
class SlowEventKill(Common):
    concurrency: int = 0
    slow_seconds: float = 0.0
    slow_event_processed: bool = False
    slow_partition: int | None = None  # of events.v1
    slow_offset: int | None = None
    committed_before_kill: int | None = None  # the group's, on the slow event's partition
    committed_past_slow: bool = False  # the commit that the restart resumed from passed it
    stored_before_kill: int = 0
    killed_during_sleep: bool = False

    MUST_HOLD = (*Common.MUST_HOLD, "slow_event_processed", "killed_during_sleep")


def smoke_event_id(value: bytes) -> str:
    """The event id normalize gives a raw smoke alarm of `traffic` (the feed's id fields)."""
    import orjson

    from citybrain.feeds.normalize import event_id_for

    doc = orjson.loads(value)
    return event_id_for("smoke-alarm", [doc["deviceSerial"], doc["alarmTime"], doc["alarmType"]])


def _log_lines(worker: faults.Worker, text: str) -> list[dict[str, Any]]:
    """The worker's JSON log lines that contain `text`, parsed."""
    import orjson

    found = []
    for line in worker.log_tail(2_000_000).splitlines():
        if text in line:
            with contextlib.suppress(ValueError):
                found.append(orjson.loads(line))
    return found


def _slow_event_logged(worker: faults.Worker) -> dict[str, Any] | None:
    """The persist stage's fault-injection line (the slow event's place), once logged."""
    found = _log_lines(worker, "fault injection: slow event")
    return found[0] if found else None


def stored_event(settings: Settings, event_id: str) -> bool:
    with traffic._conn(settings) as conn:
        row = conn.execute("SELECT 1 FROM events WHERE event_id = %s LIMIT 1", (event_id,))
        return row.fetchone() is not None


def slow_event_then_kill(
    settings: Settings,
    events: int = 5000,
    concurrency: int = 3,
    slow_seconds: float = 90.0,
    commit_wait: float = 5.0,
    per_site: int = 100,
    timeout: float = 600.0,
    progress: Progress = _quiet,
) -> SlowEventKill:
    """The persist stage runs `concurrency` actors; the first event of the run sleeps
    `slow_seconds` in it (the fault-injection hook) while the others, sent after it (the
    first `per_site` share its partition of events.v1), are stored by the other actors and
    their offsets acked and committed (all but one: the sleeping actor holds the event it
    took next until its batch is done). The worker is killed (-9) during the sleep and
    started again without the hook: the slow event must be stored (Faust's rule committed
    past it: faust-streaming issue 606; `streams.transport.Consumer` does not)."""
    from kafka import TopicPartition

    result = SlowEventKill(concurrency=concurrency, slow_seconds=slow_seconds)
    run = traffic.new_run_id()
    items = traffic.records(run, events, per_site)
    slow_id = smoke_event_id(items[0][1])
    workers = faults.Workers(
        settings, _log_dir(settings), CITYBRAIN_PERSIST_CONCURRENCY=str(concurrency)
    )
    started = time.monotonic()
    try:
        worker = workers.start(
            CITYBRAIN_FAULT_SLOW_EVENT_ID=slow_id, CITYBRAIN_FAULT_SLOW_SECONDS=str(slow_seconds)
        )
        traffic.produce(settings, traffic.TOPIC, items[:1])
        logged: dict[str, Any] | None = None

        def sleeping() -> bool:
            nonlocal logged
            logged = _slow_event_logged(worker)
            return logged is not None

        if not traffic.wait_until(sleeping, 180.0, 0.5) or logged is None:
            raise RuntimeError(f"the slow event never reached persist: {worker.log_tail()}")
        slept_at = time.monotonic()
        result.slow_partition, result.slow_offset = int(logged["partition"]), int(logged["offset"])
        progress(
            f"slow event at events.v1[{result.slow_partition}]@{result.slow_offset} sleeps"
            f" {slow_seconds} s; sending {events - 1} more"
        )
        traffic.produce(settings, traffic.TOPIC, items[1:])
        # all but the slow event and the one the sleeping actor took next: `take_ready`'s
        # drainer holds it until the actor's batch is done
        later = events - 2
        if not traffic.wait_until(
            lambda: traffic.stored_count(settings, run) >= later, slow_seconds, 0.5
        ):
            progress("the later events were not all stored during the sleep")
        time.sleep(commit_wait)  # their offsets acked, and committed (every second)
        result.stored_before_kill = traffic.stored_count(settings, run)
        result.killed_during_sleep = (
            time.monotonic() - slept_at < slow_seconds
            and not stored_event(settings, slow_id)
            and result.stored_before_kill >= later
        )
        worker.kill()
        slow_tp = TopicPartition("events.v1", result.slow_partition)
        result.committed_before_kill = kafka.committed(settings, workers.app_id, [slow_tp])[slow_tp]
        result.committed_past_slow = (
            result.committed_before_kill is not None
            and result.committed_before_kill > result.slow_offset
        )
        progress(
            f"kill -9 with {result.stored_before_kill}/{events} stored; events.v1"
            f"[{result.slow_partition}] committed {result.committed_before_kill}"
            f" (slow event at {result.slow_offset}); restarting without the slow hook"
        )
        workers.start()
        _finish(result, settings, run, events, per_site, started, timeout)
        result.slow_event_processed = stored_event(settings, slow_id)
    finally:
        workers.stop_all()
    return result


# --- 8. a worker stuck in a rebalance: the stall watchdog ------------------------------------
@dataclass
class StalledRebalance(Common):
    stall_timeout: float = 0.0
    slow_record: str = ""  # the record whose batch sleeps: events.v1[partition]@offset
    exit_status: int | None = None  # of the stuck worker
    waited_s: float | None = None  # as its stall log says
    #: per partition, the oldest record in flight its stall log names
    waited_for: list[str] = field(default_factory=list)
    counted_after_restart: bool = False  # the next worker of the app counted the stall

    MUST_HOLD = (
        *Common.MUST_HOLD,
        "exited_stalled",
        "names_slow_partition",
        "counted_after_restart",
    )

    @property
    def exited_stalled(self) -> bool:
        return self.exit_status == EXIT_STALLED

    @property
    def names_slow_partition(self) -> bool:
        """The stall log names the sleeping record's partition, at or before its offset."""
        partition, _, offset = self.slow_record.partition("@")
        return any(
            w.startswith(partition + "@") and int(w.rpartition("@")[2]) <= int(offset)
            for w in self.waited_for
        )


def stalled_rebalance(
    settings: Settings,
    events: int = 200,
    stall_timeout: float = 10.0,
    slow_seconds: float = 600.0,
    per_site: int = 20,
    timeout: float = 300.0,
    progress: Progress = _quiet,
) -> StalledRebalance:
    """A worker's persist batch sleeps (the fault hook) when a second worker joins: its
    revocation waits for that batch. Past `stall_timeout` s without progress, the stall
    watchdog must log the record it waits for and end the worker with EXIT_STALLED; started
    again (without the hook), the worker counts the stall, and every event is stored."""
    result = StalledRebalance(stall_timeout=stall_timeout)
    run = traffic.new_run_id()
    items = traffic.records(run, events, per_site)
    slow_id = smoke_event_id(items[0][1])
    calm = {"CITYBRAIN_STALL_TIMEOUT": "60"}
    workers = faults.Workers(settings, _log_dir(settings))
    started = time.monotonic()
    try:
        stuck = workers.start(
            CITYBRAIN_STALL_TIMEOUT=str(stall_timeout),
            CITYBRAIN_FAULT_SLOW_EVENT_ID=slow_id,
            CITYBRAIN_FAULT_SLOW_SECONDS=str(slow_seconds),
        )
        traffic.produce(settings, traffic.TOPIC, items)
        logged: list[dict[str, Any]] = []

        def sleeping() -> bool:
            logged[:] = _log_lines(stuck, "fault injection: slow event")
            return bool(logged)

        if not traffic.wait_until(sleeping, 180.0, 0.5):
            raise RuntimeError(f"the slow event never reached persist: {stuck.log_tail()}")
        result.slow_record = f"events.v1[{logged[0]['partition']}]@{logged[0]['offset']}"
        progress(f"{result.slow_record} sleeps in persist; a second worker joins")
        workers.start(**calm)
        assert stuck.proc is not None
        try:
            result.exit_status = stuck.proc.wait(stall_timeout + 120)
        except subprocess.TimeoutExpired:
            progress("the stuck worker did not exit")
        stalls = _log_lines(stuck, "worker stalled")
        if stalls:
            result.waited_s = stalls[0].get("waited_s")
            result.waited_for = [r.split(" ")[0] for r in stalls[0].get("in_flight", [])]
        progress(f"exit status {result.exit_status} after {result.waited_s} s; starting it again")
        again = workers.start(**calm)
        result.counted_after_restart = traffic.wait_until(
            lambda: bool(_log_lines(again, "a previous worker of this app exited on a stall")),
            120.0,
            0.5,
        )
        _finish(result, settings, run, events, per_site, started, timeout)
    finally:
        workers.stop_all()
    return result


# --- the MQTT bridge killed again and again (citybrain_tools.chaos.bridge) -------------------
@dataclass
class BridgeKill(Common):
    published: int = 0  # QoS 1 messages the MQTT broker acknowledged to the publisher
    publish_error: str | None = None  # the publisher stopped early: its counts prove less
    kills: int = 0  # kill -9 of the bridge, each proven (the pid gone) and restarted
    killed_pids: list[int] = field(default_factory=list)
    on_raw_topic: int = 0  # the run's records written to the raw topic, every copy
    missing_on_raw_topic: int = 0  # published messages never written to the raw topic
    repeats: int = 0  # copies beyond the first: a kill between Kafka's ack and the PUBACK
    repeated_messages: int = 0  # messages written more than once
    event_rows: int = 0  # events rows of the run: one per message whatever the repeats

    MUST_BE_ZERO = (*Common.MUST_BE_ZERO, "missing_on_raw_topic")
    MUST_HOLD = (*Common.MUST_HOLD, "killed", "publisher_whole", "repeats_absorbed")

    @property
    def killed(self) -> bool:
        return self.kills > 0 and len(self.killed_pids) == self.kills

    @property
    def publisher_whole(self) -> bool:
        return self.publish_error is None and self.published == self.events > 0

    @property
    def repeats_absorbed(self) -> bool:
        """Every message is one event row, however often it was written."""
        return self.event_rows == self.events


def bridge_kill(settings: Settings, **sizes: Any) -> BridgeKill:
    """kill -9 `citybrain bridge mqtt` again and again while unique QoS 1 messages flow
    (`citybrain_tools.chaos.bridge`)."""
    from citybrain_tools.chaos.bridge import bridge_kill as run

    return run(settings, **sizes)


SCENARIOS: dict[str, Callable[..., Common]] = {
    "worker-kills": worker_kills,
    "broker-kill": broker_kill,
    "database-stop": database_stop,
    "rebalances": rebalances,
    "slow-event-kill": slow_event_then_kill,
    "poison": poison,
    "webhook-outage": webhook_outage,
    "stall-watchdog": stalled_rebalance,
    "bridge-kill": bridge_kill,
}
#: scenarios that need the cluster of three (`citybrain stack up --brokers 3`): run only
#: when asked for by name; `broker-loss` names both
CLUSTER_SCENARIOS = ("broker-loss-controller", "broker-loss-leader")
ALIASES = {"broker-loss": list(CLUSTER_SCENARIOS)}


def scenario(name: str) -> Callable[..., Common]:
    """The scenario of that name (the cluster's are imported when asked for)."""
    if name in CLUSTER_SCENARIOS:
        from citybrain_tools.chaos import cluster

        return {
            "broker-loss-controller": cluster.broker_loss_controller,
            "broker-loss-leader": cluster.broker_loss_leader,
        }[name]
    return SCENARIOS[name]
