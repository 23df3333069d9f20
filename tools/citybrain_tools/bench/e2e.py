"""`citybrain bench e2e`: the whole pipeline on the local stack, against this machine's limit.

The traffic is water-level gauge messages (two readings each); probe calls (12345 tickets
about gas leaks, each a new incident dispatched to three departments) measure latency.

1. **baseline**: a plain consumer (kafka-python) decodes a backlog of raw messages and
   COPYs their readings into a scratch table, one COPY per batch, no other work: what
   this machine can do for the job, alone on it;
2. **drain**: the same backlog waits on the pipeline's topic; the workers start (by
   default two: one normalizes the telemetry, the other runs every other stage, as README
   recommends; `split=False`: one worker for all) and drain it. Its rate between 10% and
   90% stored, against the baseline's, is the ratio;
3. **load**: messages produced at `load_rate`/s for `load_seconds` (10,000/s for 10 min
   by default): the rate sustained end to end, consumer lag every second and whether it
   grows, CPU and RSS of the workers;
4. **latency**: `latency_rate`/s with two probes a second: produce -> database row (the
   probe's `events` row) and produce -> dispatch message percentiles;
5. **idle**: after `idle` seconds without traffic, one more probe's latency.

Progress comes from the telemetry group's committed offsets (committed only once a
batch's readings are stored); the readings are counted once, at the end. The workers'
stage metrics say where their time went (batches, records and milliseconds a batch).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from citybrain.db.connect import connect
from citybrain.settings import PROJECT_ROOT, Settings
from citybrain_tools.bench.feed import water_level_copy
from citybrain_tools.bench.load import run_load
from citybrain_tools.bench.normalize import last_ready, stored_readings
from citybrain_tools.bench.proc import cpu_seconds, free_port, profiler_prefix, rss_mib, stop_signal
from citybrain_tools.kafka import group_offsets, numbered, start_group_at_end, start_group_at_start

PROBE_PLACE = (121.5435, 31.2216)  # 浦东新区, in the gas-pudong zone


@dataclass
class Phase:
    """One traffic phase of the pipeline run: gauge messages at `rate`/s for `seconds`."""

    name: str
    rate: float
    seconds: float
    messages: int = 0
    produced_per_s: float = 0.0
    messages_per_s: float = 0.0  # raw messages through the pipeline (stored readings / 2)
    lag_max: int = 0
    lag_growing: bool = False
    seconds_to_catch_up: float = 0.0  # after the last message was produced
    produce_to_db_p50_ms: float | None = None
    produce_to_db_p99_ms: float | None = None
    produce_to_dispatch_p50_ms: float | None = None
    produce_to_dispatch_p99_ms: float | None = None
    probes: int = 0
    probes_to_db: int = 0  # probes whose events row was seen
    probes_to_dispatch: int = 0  # probes whose department message was seen
    # where a probe's time goes: each hop's p50 and p99 in ms, from the Kafka timestamps of
    # its messages (produced -> events.v1 -> correlate.v1 -> incidents.v1 -> dispatch)
    hops_ms: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    worker_cpu_cores: float = 0.0  # all workers together
    worker_rss_max_mib: float = 0.0  # the largest worker
    lag_series: list[tuple[float, int]] = field(default_factory=list)
    # the storm: parts of the phase at their own telemetry rate, each with its probes
    windows: list[Window] = field(default_factory=list)


@dataclass
class Window:
    """A part of a phase (seconds `start_s`..`end_s` after its first message) with the
    telemetry rate offered in it: what was stored and what the probes produced in it saw."""

    name: str
    telemetry_rate: float
    start_s: float
    end_s: float
    stored_per_s: float | None = None  # raw messages stored per second in the window
    lag_max: int = 0
    lag_growing: bool = False
    probes: int = 0
    probes_to_db: int = 0
    probes_to_dispatch: int = 0
    produce_to_db_p99_ms: float | None = None
    produce_to_dispatch_p50_ms: float | None = None
    produce_to_dispatch_p99_ms: float | None = None
    hops_ms: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # the slowest probes to their department, slowest first: (seconds into the phase, ms,
    # the ms of each hop)
    slowest: list[tuple[float, float | None, str]] = field(default_factory=list)


@dataclass
class E2EResult:
    backlog: int  # messages of the drain phase (and of the baseline)
    baseline_messages_per_s: float
    drain_messages_per_s: float  # the pipeline on the same backlog
    ratio_to_baseline: float
    load: Phase
    latency: Phase
    readings_missing: int  # readings produced but not stored when the run ended
    db_rows_per_s: float  # readings stored per second in the load phase
    workers: int
    worker_rss_max_mib: float
    idle_seconds: float
    idle_probe_to_db_ms: float | None
    idle_probe_to_dispatch_ms: float | None
    # per stage: batches, mean records a batch, mean and total seconds in batch bodies
    stage_batches: dict[str, dict[str, float]] = field(default_factory=dict)


HOP_TOPICS = ("events.v1", "correlate.v1", "incidents.v1")
#: the hops of a report, named by the stage that takes it to the next topic
HOPS = ("normalize", "route", "correlate", "dispatch+outbox")


def _pct(values: list[float], q: float, total: int | None = None) -> float | None:
    """The q-quantile of `values`; with `total`, the values missing from it count as
    infinitely large (a percentile that falls on one is None: not met)."""
    n = len(values) if total is None else max(total, len(values))
    if n == 0:
        return None
    index = min(n - 1, int(q * n))
    if index >= len(values):
        return None
    return round(sorted(values)[index], 1)


def _gauge_messages(devices: list[str], n: int, first: int = 0) -> list[tuple[bytes, bytes]]:
    """The baseline's messages (its own topic and table: their times matter to nobody)."""
    start = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for i in range(first, first + n):
        device = devices[i % len(devices)]
        at = start + timedelta(milliseconds=i)
        doc = {
            "devId": device,
            "ts": int(at.timestamp() * 1000),
            "data": {"level": f"{10 + (i % 23):.1f}", "unit": "cm", "bat": 3.6},
        }
        out.append((device.encode(), json.dumps(doc).encode()))
    return out


def _probe(run: str, n: int) -> tuple[str, bytes, str]:
    """A 12345 ticket about a gas leak at its own place: (ticket, payload, incident id)."""
    ticket = f"E2E{run}-{n:05d}"
    lon = PROBE_PLACE[0] + (n % 40) * 0.004
    lat = PROBE_PLACE[1] + (n // 40) * 0.004
    now = datetime.now(UTC) + timedelta(hours=8)
    doc = {
        "ticketNo": ticket,
        "acceptTime": now.strftime("%Y-%m-%d %H:%M:%S"),
        "callerPhone": "13900000000",
        "channel": "电话",
        "category": "燃气-燃气异味",
        "urgency": "特急",
        "content": "市民来电反映：闻到很重的煤气味",
        "address": "浦东新区",
        "lng": round(lon, 6),
        "lat": round(lat, 6),
    }
    event_id = f"hotline-12345:{ticket}"
    incident = "inc-" + hashlib.sha1(event_id.encode()).hexdigest()[:16]  # noqa: S324
    return ticket, json.dumps(doc, ensure_ascii=False).encode(), incident


def dispatch_topics(settings: Settings) -> list[str]:
    """The departments' Kafka topics the dispatch stage delivers to."""
    from citybrain.dispatch.channels import Channels
    from citybrain.dispatch.routing import dispatch_files, load_routing

    routing = load_routing(*dispatch_files(settings))
    return Channels.of(routing, os.environ).kafka_topics()


# --- phase 1: the baseline ---------------------------------------------------------------
def baseline(settings: Settings, topic: str, expected: int) -> float:
    """Readings/s of a plain consumer that decodes and COPYs, nothing else."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_list,
        group_id=f"baseline-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    done = 0
    started = None
    with connect(settings) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_baseline (device_id text, ts timestamptz, metric text,"
            " value double precision)"
        )
        while done < expected:
            polled = consumer.poll(timeout_ms=1000, max_records=5000)
            if not polled:
                continue
            started = started or time.perf_counter()
            rows = []
            for records in polled.values():
                for r in records:
                    doc = json.loads(r.value)
                    ts = datetime.fromtimestamp(doc["ts"] / 1000, UTC)
                    rows.append((doc["devId"], ts, "level_m", float(doc["data"]["level"]) / 100))
                    rows.append((doc["devId"], ts, "battery_v", float(doc["data"]["bat"])))
                    done += 1
            with conn.cursor().copy(
                "COPY bench_baseline (device_id, ts, metric, value) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            consumer.commit()
    consumer.close()
    return 2 * done / (time.perf_counter() - (started or time.perf_counter()))


# --- phase 2: the pipeline -----------------------------------------------------------------
def status_report(task: dict[str, Any], status: str) -> bytes:
    """The department's report on a probe's task (`citybrain.dispatch-status/1`)."""
    return json.dumps(
        {
            "schema": "citybrain.dispatch-status/1",
            "report_id": f"bench-{status}-{task['dispatch_id']}",
            "dispatch_id": task["dispatch_id"],
            "department": task["department"],
            "status": status,
            "at": datetime.now(UTC).isoformat(),
            "actor": "e2e bench",
            "note": "已处置 / handled (e2e bench)" if status == "resolved" else None,
        }
    ).encode()


class Watcher:
    """Collects when probe events reach the database and their dispatches reach Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: dict[str, tuple[float, str]] = {}  # event id -> (produced at, incident)
        self.incidents: set[str] = set()  # the probes' incidents
        self.in_db: dict[str, float] = {}
        # the database poller, a process of its own (in this one it would wait for the GIL
        # behind the producer's thread and add that to the figures)
        context = multiprocessing.get_context("spawn")
        self._to_poll: Any = context.Queue()
        self._found: Any = context.Queue()
        self._poller = context.Process(
            target=poll_events, args=(settings.conninfo(), self._to_poll, self._found), daemon=True
        )
        self._poller.start()
        # the first message of each probe (event id) or its incident on each topic of its
        # way: topic -> key -> the message's timestamp (s, set by the stage producing it)
        self.seen: dict[str, dict[str, float]] = {t: {} for t in (*HOP_TOPICS, "dispatch")}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._poll_db, daemon=True),
            threading.Thread(target=self._consume_dispatches, daemon=True),
            threading.Thread(target=self._consume_hops, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def probe(self, event_id: str, incident: str) -> None:
        """A probe is produced now: watch for its row and its dispatch."""
        self.sent[event_id] = (time.time(), incident)
        self.incidents.add(incident)
        self._to_poll.put(event_id)

    def dispatched(self, incident: str) -> bool:
        return incident in self.seen["dispatch"]

    def _poll_db(self) -> None:
        """Collect when the poller saw the probes' rows."""
        try:
            while not self.stop.is_set():
                try:
                    event_id, at = self._found.get(timeout=0.05)
                except queue.Empty:
                    continue
                self.in_db.setdefault(event_id, at)
        finally:
            self._to_poll.put(None)
            self._poller.join(5)
            if self._poller.is_alive():
                self._poller.kill()

    def _consume_dispatches(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_list,
            group_id=None,
            auto_offset_reset="latest",
            consumer_timeout_ms=200,
        )
        consumer.subscribe(pattern=r"^dispatch\.[a-z0-9-]+\.v1$")
        acks = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_list, linger_ms=20)
        while not self.stop.is_set():
            for message in consumer:
                try:
                    task = json.loads(message.value)
                    incident = task["incident_id"]
                except (ValueError, KeyError, TypeError):
                    continue
                self.seen["dispatch"].setdefault(incident, message.timestamp / 1000)
                if incident in self.incidents and task.get("kind") == "task.created":
                    # the department acknowledges and resolves it, as departments do
                    # (through the API, which sends the same reports): no probe task stays
                    # open into the reminder and escalation timers of later runs
                    for status in ("acknowledged", "resolved"):
                        acks.send(
                            "dispatch.status.v1",
                            key=str(task["dispatch_id"]).encode(),
                            value=status_report(task, status),
                        )
        acks.flush()
        acks.close()
        consumer.close()

    def _consume_hops(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            *HOP_TOPICS,
            bootstrap_servers=self.settings.kafka_bootstrap_list,
            group_id=None,
            auto_offset_reset="latest",
            consumer_timeout_ms=200,
            metadata_max_age_ms=1000,  # the workers create these topics after it starts
        )
        while not self.stop.is_set():
            for message in consumer:
                if message.topic == "incidents.v1":
                    key = (message.key or b"").decode()
                elif b"E2E" in message.value:  # a probe (the traffic has no events)
                    try:
                        key = json.loads(message.value)["event_id"]
                    except (ValueError, KeyError):
                        continue
                else:
                    continue
                self.seen[message.topic].setdefault(key, message.timestamp / 1000)
        consumer.close()

    def hop_spans(self, event_id: str) -> dict[str, float | None]:
        """One probe's time in each hop (ms; None where a message was not seen)."""
        at, incident = self.sent[event_id]
        times = [
            at,
            self.seen["events.v1"].get(event_id),
            self.seen["correlate.v1"].get(event_id),
            self.seen["incidents.v1"].get(incident),
            self.seen["dispatch"].get(incident),
        ]
        return {
            name: None if start is None or end is None else round((end - start) * 1000, 1)
            for name, start, end in zip(HOPS, times, times[1:], strict=False)
        }

    def hops(self, keys: list[str]) -> dict[str, tuple[float | None, float | None]]:
        """Each hop's p50 and p99 (ms) over the probes `keys` (event ids)."""
        spans: dict[str, list[float]] = {name: [] for name in HOPS}
        for event_id in keys:
            for name, span in self.hop_spans(event_id).items():
                if span is not None:
                    spans[name].append(span)
        return {name: (_pct(v, 0.5), _pct(v, 0.99)) for name, v in spans.items()}

    def to_dispatch_ms(self, event_id: str) -> float | None:
        """One probe's produce -> its first department message (None: never arrived)."""
        at, incident = self.sent[event_id]
        done = self.seen["dispatch"].get(incident)
        return None if done is None else round((done - at) * 1000, 1)

    def latencies(self, keys: list[str] | None = None) -> tuple[list[float], list[float]]:
        to_db, to_dispatch = [], []
        for event_id, (at, incident) in self.sent.items():
            if keys is not None and event_id not in keys:
                continue
            if event_id in self.in_db:
                to_db.append((self.in_db[event_id] - at) * 1000)
            # when the message was produced to the department's topic (its Kafka timestamp),
            # not when this process got round to reading it
            if incident in self.seen["dispatch"]:
                to_dispatch.append((self.seen["dispatch"][incident] - at) * 1000)
        return to_db, to_dispatch


def poll_events(conninfo: str, ids: Any, found: Any) -> None:
    """The database poller (a process): every 5 ms, which of the probes handed over on
    `ids` have an `events` row; each found one goes back on `found` with the time it was
    first seen. None on `ids` stops it."""
    import psycopg

    waiting: set[str] = set()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            while True:
                try:
                    event_id = ids.get_nowait()
                except queue.Empty:
                    break
                if event_id is None:
                    return
                waiting.add(event_id)
            if waiting:
                rows = conn.execute(
                    "SELECT event_id FROM events WHERE event_id = ANY(%s)", (list(waiting),)
                ).fetchall()
                now = time.time()
                for (event_id,) in rows:
                    found.put((event_id, now))
                    waiting.discard(event_id)
            time.sleep(0.005)


class _Offsets:
    """A consumer group's committed offsets on a topic and the topic's end offsets, read
    with clients kept open (a sample a second)."""

    def __init__(self, settings: Settings, group: str, topic: str) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.group = group
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_list)
        self.parts = numbered(settings, topic)

    def committed_and_lag(self) -> tuple[int, int]:
        committed = group_offsets(self.admin, self.group, self.parts)
        ends = self.consumer.end_offsets(self.parts)
        done = sum(max(0, committed.get(tp, 0)) for tp in self.parts)
        return done, sum(max(0, ends[tp] - max(0, committed.get(tp, 0))) for tp in self.parts)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


class _Paced:
    """Produces gauge messages on a schedule of (rate/s, seconds) steps (each kept in 10 ms
    steps), in a process of its own: the load is another client than the probes, and in
    this process its producer would hold the GIL the probes and the watcher need."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        devices: list[str],
        first: int,
        schedule: list[tuple[float, float]],
    ) -> None:
        from citybrain_tools.bench.load import scheduled_total

        context = multiprocessing.get_context("spawn")
        self.total = scheduled_total(schedule)
        self._elapsed: Any = context.Value("d", 0.0)
        self._started: Any = context.Value("d", 0.0)
        self.process = context.Process(
            target=pace,
            args=(
                settings.kafka_bootstrap_list,
                topic,
                devices,
                first,
                schedule,
                self._elapsed,
                self._started,
            ),
            daemon=True,
        )

    @property
    def elapsed(self) -> float:
        return float(self._elapsed.value)

    @property
    def started(self) -> float | None:
        """When the first message was due (`time.perf_counter()`: CLOCK_MONOTONIC, the same
        clock in every process on Linux); None before."""
        return float(self._started.value) or None

    def start(self) -> None:
        self.process.start()

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def join(self, timeout: float) -> None:
        self.process.join(timeout)


def telemetry_nice() -> int:
    """The niceness of the telemetry worker and of the load generator
    (`CITYBRAIN_BENCH_TELEMETRY_NICE`, 10)."""
    return int(os.environ.get("CITYBRAIN_BENCH_TELEMETRY_NICE", "10"))


def pace(
    bootstrap: list[str],
    topic: str,
    devices: list[str],
    first: int,
    schedule: list[tuple[float, float]],
    elapsed: Any,
    started: Any,
) -> None:
    """The load generator's process: gauge messages on `schedule`, at the telemetry
    worker's niceness (bulk traffic, made and processed, yields to the report path; on this
    machine the load generator shares the cores that gateways elsewhere would not). The
    generator (`bench/load.py`, librdkafka) delivers over 240,000 messages/s on its own
    here (`citybrain bench load`), so the offered rate is what the pipeline gets."""
    from citybrain.streams.priority import lower_priority
    from citybrain_tools.bench.load import produce

    lower_priority(telemetry_nice(), own_session=True)  # as the telemetry worker
    started.value = time.perf_counter()
    _delivered, _failed, seconds = produce(
        ",".join(bootstrap), topic, devices, first, 0, 0.0, schedule=schedule
    )
    elapsed.value = seconds


class _Pipeline:
    """The workers under test and what is sampled of them."""

    def __init__(self, settings: Settings, topic: str, lag_group: str) -> None:
        self.offsets = _Offsets(settings, lag_group, topic)
        self.procs: list[subprocess.Popen[bytes]] = []

    def sample(self) -> tuple[float, int, float, float, int]:
        """(time, readings stored, CPU seconds of all workers, largest RSS, lag). Stored
        readings are read from the group's committed offsets (two a message): a batch's
        offsets are committed only after its readings are, and counting rows would make
        the database scan millions of them every second."""
        alive = [w for w in self.procs if w.poll() is None]
        cpu = sum(cpu_seconds(w.pid) for w in alive)
        rss = max((rss_mib(w.pid) for w in alive), default=0.0)
        try:
            done, lag = self.offsets.committed_and_lag()
        except Exception:
            done, lag = -1, -1
        return time.perf_counter(), 2 * done, cpu, rss, lag

    def dead(self) -> bool:
        return any(w.poll() is not None for w in self.procs)


def _slope(
    samples: list[tuple[float, int, float, float, int]], lo: int, hi: int
) -> tuple[float, float]:
    """Readings/s and CPU cores between the first samples at or above `lo` and `hi` readings."""
    a = next((x for x in samples if x[1] >= lo), samples[0])
    b = next((x for x in samples if x[1] >= hi), samples[-1])
    span = max(b[0] - a[0], 1e-9)
    return (b[1] - a[1]) / span, (b[2] - a[2]) / span


def _progress(what: str, readings: int, target: int, lag: int) -> None:
    print(
        f"\r  {what}: readings {readings}/{target}  lag {lag}      ",
        end="",
        file=sys.stderr,
        flush=True,
    )


def run_e2e_bench(
    settings: Settings,
    load_rate: float = 25_500,
    load_seconds: float = 600,
    latency_rate: float = 2_000,
    latency_seconds: float = 90,
    backlog: int = 300_000,
    idle: float = 60,
    probes_per_s: float = 2.0,
    split: bool = True,
    telemetry_workers: int = 2,
    overload: float = 1.5,
    overload_seconds: float = 60,
    after_seconds: float = 30,
) -> E2EResult:
    """Baseline, then the pipeline: drain a backlog; the storm: `load_rate` for
    `load_seconds`, `overload` times the pipeline's maximum (its drain rate, or `load_rate`
    when higher) for `overload_seconds`, `load_rate` again for `after_seconds` (while the
    pipeline works off the overload at its maximum), probes throughout; latency at
    `latency_rate`, and one probe after `idle` seconds of silence (see the module doc)."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    run = uuid.uuid4().hex[:8]
    feed = f"e2e-{run}"
    topic = f"raw.iot.e2e-{run}"
    base_topic = f"{topic}.baseline"
    work, devices = water_level_copy(feed, topic, "citybrain-e2e-")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in (topic, base_topic)])
    # the departments' topics exist before the watcher subscribes to them: a pattern
    # subscription finds a topic created later only at its next metadata refresh (5 min)
    absent = set(dispatch_topics(settings)) - set(admin.list_topics())
    if absent:
        admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in sorted(absent)])
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        acks="all",
        linger_ms=5,
        batch_size=512 * 1024,
    )
    # the probes: the hotline desk's own client, sending each call at once
    prober = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_list, acks="all", linger_ms=0)

    # phase 1: the baseline reads the backlog, alone on the machine
    print(f"baseline: {backlog} messages through a plain consumer + COPY ...", file=sys.stderr)
    for key, value in _gauge_messages(devices, backlog):
        producer.send(base_topic, key=key, value=value)
    producer.flush()
    base_rate = baseline(settings, base_topic, backlog) / 2  # messages/s

    # phase 2: the workers start on the pipeline's empty topic; the same backlog comes
    # once every one of them has its partitions
    group = f"e2e-{run}"
    lag_group = f"{group}-telemetry" if split else group
    # every existing topic from its end (committed: the history of other runs is not
    # measured) and this one from its start; topics made later from their start (a reset
    # to `latest` would skip what is written to a topic before its first assignment)
    for g in {group, lag_group}:
        start_group_at_end(settings, g)
    start_group_at_start(admin, lag_group, numbered(settings, topic))
    admin.close()
    env = {
        **os.environ,
        "CITYBRAIN_FEEDS_DIR": str(work),
        "CITYBRAIN_APP_ID": group,
        "CITYBRAIN_LOG_LEVEL": "INFO",  # "Worker ready" says a worker has its partitions
        "CITYBRAIN_LOG_FORMAT": "json",
    }
    # split (the deployment README recommends): telemetry in a worker of its own, so that
    # its bulk never holds up a report on its way to a department; else one worker for all
    # (`citybrain.roles`: the telemetry role's group is `<app id>-telemetry`)
    telemetry = {
        "CITYBRAIN_WORKER_ROLE": "telemetry",
        "CITYBRAIN_WORKER_NICE": str(telemetry_nice()),
    }
    roles: dict[str, dict[str, str]] = (
        {
            **{f"telemetry-{i + 1}": telemetry for i in range(telemetry_workers)},
            "reports": {"CITYBRAIN_WORKER_ROLE": "reports"},
        }
        if split
        else {"all": {}}
    )
    metrics_ports = {role: free_port() for role in roles}
    pipe = _Pipeline(settings, topic, lag_group)
    watcher = Watcher(settings)
    stage_batches: dict[str, dict[str, float]] = {}
    try:
        for role, extra in roles.items():
            pipe.procs.append(
                subprocess.Popen(
                    [*profiler_prefix(role), "-m", "citybrain.cli", "worker"],
                    env={
                        **env,
                        "CITYBRAIN_WORKER_WEB_PORT": str(free_port()),
                        "CITYBRAIN_METRICS_PORT": str(metrics_ports[role]),
                        **extra,
                    },
                    stdout=(work / f"worker-{role}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    cwd=PROJECT_ROOT,
                    # each worker a session of its own, as a service manager starts them:
                    # its priority is then its own, not shared with this process's group
                    # (`citybrain.streams.priority`)
                    start_new_session=True,
                )
            )
        # every worker has its partitions, and no rebalance for a few seconds: the drain
        # measures the pipeline, not its start-up nor a telemetry worker joining
        logs = [work / f"worker-{role}.log" for role in roles]
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline and not pipe.dead():
            if all(last_ready([log]) for log in logs) and time.time() - last_ready(logs) > 5:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the workers did not get ready; see {work}/worker-*.log")
        print(f"drain: {backlog} messages at once for the workers ...", file=sys.stderr)
        target = 2 * backlog
        drain: list[tuple[float, int, float, float, int]] = [pipe.sample()]
        # far faster than the pipeline (`citybrain bench load`): a backlog within a second
        backlogged = threading.Thread(
            target=run_load,
            args=(",".join(settings.kafka_bootstrap_list), topic, devices, BACKLOG_RATE),
            kwargs={"seconds": backlog / BACKLOG_RATE},
            daemon=True,
        )
        backlogged.start()
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline and not pipe.dead():
            drain.append(pipe.sample())
            _progress("drain", drain[-1][1], target, drain[-1][4])
            if drain[-1][1] >= target:
                break
            time.sleep(0.25)
        print(file=sys.stderr)
        backlogged.join(60)
        if not drain or drain[-1][1] < target:
            raise RuntimeError(f"the pipeline did not drain its backlog; see {work}/worker-*.log")
        # the steady part: between 10% and 90% of the backlog stored
        drain_rate, _ = _slope(drain, target // 10, target * 9 // 10)
        time.sleep(2)

        def phase(
            name: str,
            schedule: list[tuple[float, float]],
            first: int,
            windows: list[Window] | None = None,
        ) -> Phase:
            """Telemetry on `schedule` with probes throughout; the phase's figures, and
            each of `windows`' (parts of the schedule) from its samples and probes."""
            seconds = sum(step for _, step in schedule)
            result = Phase(name, schedule[0][0] if schedule else 0.0, seconds)
            if not schedule or seconds <= 0 or schedule[0][0] <= 0:
                return result
            stored0 = pipe.sample()[1]
            paced = _Paced(settings, topic, devices, first, schedule)
            result.messages = paced.total
            target = stored0 + 2 * paced.total
            steps = ", ".join(f"{rate:.0f}/s for {step:.0f} s" for rate, step in schedule)
            print(f"{name}: {paced.total} messages ({steps}) ...", file=sys.stderr)
            probe_at: dict[str, float] = {}  # probe -> seconds after the first message
            samples = [pipe.sample()]
            t0 = samples[0][0]
            paced.start()
            next_probe = time.perf_counter()
            produced_at = None
            while not pipe.dead():
                now = time.perf_counter()
                started = paced.started
                if started is not None and paced.is_alive() and now >= next_probe:
                    ticket, payload, incident = _probe(run, len(watcher.sent))
                    event_id = f"hotline-12345:{ticket}"
                    watcher.probe(event_id, incident)
                    probe_at[event_id] = time.perf_counter() - started
                    prober.send("raw.hotline", key=ticket.encode(), value=payload)
                    next_probe = now + 1 / probes_per_s
                if not paced.is_alive() and produced_at is None:
                    produced_at = now
                if now - samples[-1][0] >= 1.0:
                    samples.append(pipe.sample())
                    _progress(name, samples[-1][1] - stored0, target - stored0, samples[-1][4])
                    if samples[-1][1] >= target:
                        break
                    stalled = (
                        produced_at is not None
                        and len(samples) > 15
                        and samples[-15][1] == samples[-1][1]
                    )
                    if stalled or now - t0 > seconds + 600:
                        break
                time.sleep(0.01)
            print(file=sys.stderr)
            paced.join(timeout=5)
            time.sleep(2)  # the last probes reach the database and the departments
            during = [x for x in samples if produced_at is None or x[0] <= produced_at]
            _, cores = _slope(during, samples[0][1], during[-1][1])
            result.produced_per_s = round(paced.total / max(paced.elapsed, 1e-9))
            # end to end: the phase's messages over the time from the first one produced
            # to the last one stored
            stored = (samples[-1][1] - stored0) / 2
            result.messages_per_s = round(stored / max(samples[-1][0] - t0, 1e-9))
            result.worker_cpu_cores = round(cores, 2)
            result.worker_rss_max_mib = round(max(x[3] for x in samples), 1)
            result.seconds_to_catch_up = round(samples[-1][0] - (produced_at or samples[-1][0]), 1)
            lags = [x[4] for x in during if x[4] >= 0]
            result.lag_series = [(round(x[0] - t0, 1), x[4]) for x in samples]
            result.lag_max = max(lags, default=0)
            result.lag_growing = _lag_growing(lags, schedule[0][0])
            probe_ids = list(probe_at)
            _probe_figures(result, watcher, probe_ids)
            start = paced.started or t0
            for window in windows or []:
                _window_figures(window, samples, start, watcher, probe_at)
            result.windows = list(windows or [])
            return result

        # the overload: `overload` times the most the pipeline takes, its drain rate (or
        # the sustained rate, when that is higher): more than it can store, whatever it is
        overload_rate = round(overload * max(load_rate, drain_rate / 2))
        storm = [(load_rate, load_seconds), (overload_rate, overload_seconds)]
        storm += [(load_rate, after_seconds)]
        storm = [(rate, step) for rate, step in storm if step > 0]
        ends = [sum(step for _, step in storm[: i + 1]) for i in range(len(storm))]
        windows = [Window("sustained", load_rate, 0.0, load_seconds)]
        if overload_seconds > 0:
            windows.append(Window("overload", overload_rate, ends[0], ends[1]))
            if after_seconds > 0:
                over = ends[1]
                windows.append(Window("after", load_rate, over, over + after_seconds))
                windows.append(
                    Window("recovered", load_rate, over + RECOVERY_S, over + after_seconds)
                )
        load = phase("load", storm, backlog, windows)
        latency = phase("latency", [(latency_rate, latency_seconds)], backlog + load.messages)
        produced = backlog + load.messages + latency.messages
        missing = max(0, 2 * produced - stored_readings(settings, feed))
        idle_db = idle_dispatch = None
        if idle > 0 and not pipe.dead():
            print(f"idle for {idle:.0f}s, then one probe ...", file=sys.stderr)
            time.sleep(idle)
            ticket, payload, incident = _probe(run, 99_999)
            probe_id = f"hotline-12345:{ticket}"
            watcher.probe(probe_id, incident)
            prober.send("raw.hotline", key=ticket.encode(), value=payload)
            prober.flush()
            wait_until = time.time() + 60
            while time.time() < wait_until and not watcher.dispatched(incident):
                time.sleep(0.05)
            one_db, one_dispatch = watcher.latencies([probe_id])
            idle_db = round(one_db[0], 1) if one_db else None
            idle_dispatch = round(one_dispatch[0], 1) if one_dispatch else None
        stage_batches = _stage_batches(metrics_ports.values())
    finally:
        watcher.stop.set()
        for w in pipe.procs:
            w.send_signal(stop_signal())
        for w in pipe.procs:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        producer.close()
        prober.close()
        pipe.offsets.close()
    with connect(settings) as conn:
        conn.execute("DELETE FROM readings WHERE feed = %s", (feed,))
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    existing = set(admin.list_topics())
    admin.delete_topics([t for t in (topic, base_topic, f"{topic}.dlq") if t in existing])
    admin.close()
    if not os.environ.get("CITYBRAIN_BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return E2EResult(
        backlog=backlog,
        baseline_messages_per_s=round(base_rate),
        drain_messages_per_s=round(drain_rate / 2),
        ratio_to_baseline=round(drain_rate / 2 / max(base_rate, 1e-9), 2),
        load=load,
        latency=latency,
        readings_missing=missing,
        db_rows_per_s=round(2 * load.messages_per_s),
        workers=len(pipe.procs),
        worker_rss_max_mib=max(
            load.worker_rss_max_mib, latency.worker_rss_max_mib, max(x[3] for x in drain)
        ),
        idle_seconds=idle,
        idle_probe_to_db_ms=idle_db,
        idle_probe_to_dispatch_ms=idle_dispatch,
        stage_batches=stage_batches,
    )


#: seconds after the overload by which the report path must be back to its latency
RECOVERY_S = 10.0
#: the slowest probes a window names (when they were sent says what held them up)
SLOWEST = 5
#: messages/s the drain's backlog is produced at (the generator's, far above the pipeline's)
BACKLOG_RATE = 200_000


def _lag_growing(lags: list[int], rate: float) -> bool:
    """The last third of the samples holds more lag than the first third plus one commit
    interval's worth of traffic (1.5 s at `rate`)."""
    third = len(lags) // 3
    if not third:
        return False
    return statistics.mean(lags[-third:]) > statistics.mean(lags[:third]) + rate * 1.5


def _probe_figures(result: Phase | Window, watcher: Watcher, probe_ids: list[str]) -> None:
    """The probes' counts and percentiles (a probe that never arrived is infinitely late)."""
    to_db, to_dispatch = watcher.latencies(probe_ids)
    result.probes = len(probe_ids)
    result.probes_to_db, result.probes_to_dispatch = len(to_db), len(to_dispatch)
    result.produce_to_db_p99_ms = _pct(to_db, 0.99, result.probes)
    result.produce_to_dispatch_p50_ms = _pct(to_dispatch, 0.5, result.probes)
    result.produce_to_dispatch_p99_ms = _pct(to_dispatch, 0.99, result.probes)
    result.hops_ms = watcher.hops(probe_ids)
    if isinstance(result, Phase):
        result.produce_to_db_p50_ms = _pct(to_db, 0.5, result.probes)


def _window_figures(
    window: Window,
    samples: list[tuple[float, int, float, float, int]],
    start: float,
    watcher: Watcher,
    probe_at: dict[str, float],
) -> None:
    """A window's stored rate and lag (from the samples taken in it) and its probes."""
    inside = [x for x in samples if window.start_s <= x[0] - start <= window.end_s]
    if len(inside) >= 2:
        span = max(inside[-1][0] - inside[0][0], 1e-9)
        window.stored_per_s = round((inside[-1][1] - inside[0][1]) / 2 / span)
        lags = [x[4] for x in inside if x[4] >= 0]
        window.lag_max = max(lags, default=0)
        window.lag_growing = _lag_growing(lags, window.telemetry_rate)
    ids = [p for p, at in probe_at.items() if window.start_s <= at < window.end_s]
    _probe_figures(window, watcher, ids)
    took = {p: watcher.to_dispatch_ms(p) for p in ids}
    never = float("inf")  # a probe that never arrived is the slowest
    ranked = sorted(ids, key=lambda p: -(took[p] or never))
    window.slowest = [
        (round(probe_at[p], 1), took[p], _hops_text(watcher.hop_spans(p))) for p in ranked[:SLOWEST]
    ]


def _hops_text(spans: dict[str, float | None]) -> str:
    """A probe's hops in one line: `normalize 8/correlate 2030/dispatch+outbox 30`."""
    return "/".join(f"{name} {ms:.0f}" for name, ms in spans.items() if ms is not None and ms > 1)


def _stage_batches(ports: Iterable[int]) -> dict[str, dict[str, float]]:
    """Where the workers' time went: each stage's batches from their Prometheus metrics."""
    import urllib.request

    sums: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}  # stage -> upper bound -> batches at most
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("citybrain_batch_seconds_bucket{"):
                labels, value = line[len("citybrain_batch_seconds_bucket") + 1 :].rsplit("} ", 1)
                stage = labels.split('stage="', 1)[1].split('"', 1)[0]
                le = float(labels.split('le="', 1)[1].split('"', 1)[0])
                per = buckets.setdefault(stage, {})
                per[le] = per.get(le, 0.0) + float(value)
            for name, key in (
                ("citybrain_batch_seconds_count", "batches"),
                ("citybrain_batch_seconds_sum", "seconds"),
                ("citybrain_records_total", "records"),
            ):
                if not line.startswith(name + "{"):
                    continue
                labels, value = line[len(name) + 1 :].rsplit("} ", 1)
                if key == "records" and 'outcome="ok"' not in labels:
                    continue
                stage = labels.split('stage="', 1)[1].split('"', 1)[0]
                entry = sums.setdefault(stage, {"batches": 0.0, "seconds": 0.0, "records": 0.0})
                entry[key] += float(value)
    out = {}
    for stage, e in sorted(sums.items()):
        if not e["batches"]:
            continue
        out[stage] = {
            "batches": int(e["batches"]),
            "records_per_batch": round(e["records"] / e["batches"], 1),
            "ms_per_batch": round(1000 * e["seconds"] / e["batches"], 2),
            "busy_s": round(e["seconds"], 1),
            # the histogram bucket holding the 99th percentile batch: p99 <= this
            "p99_ms_at_most": next(
                (
                    round(le * 1000, 1)
                    for le, n in sorted(buckets.get(stage, {}).items())
                    if n >= 0.99 * e["batches"]
                ),
                float("inf"),
            ),
        }
    return out


Verdict = Literal["met", "MISSED", "skipped"]


def _verdict(ran: bool, met: bool) -> Verdict:
    return "skipped" if not ran else ("met" if met else "MISSED")


#: the sustained rate the pipeline must show (raw messages/s, two readings each)
SUSTAINED_TARGET = 25_000
SUSTAINED_SECONDS = 600


def _window(phase: Phase, name: str) -> Window | None:
    return next((w for w in phase.windows if w.name == name), None)


def _all_arrived(x: Phase | Window | None) -> bool:
    return x is not None and x.probes > 0 and x.probes_to_db == x.probes == x.probes_to_dispatch


def targets(r: E2EResult) -> dict[str, Verdict]:
    """Each target, without slack: met, MISSED, or skipped (its phase did not run). A probe
    that never reached its row or its department is a miss, not a gap in the percentiles
    (they count it as infinitely late)."""
    load, lat = r.load, r.latency
    ran_load, ran_latency = load.seconds > 0 and load.rate > 0, lat.seconds > 0 and lat.rate > 0
    held = _window(load, "sustained")
    over = _window(load, "overload")
    recovered = _window(load, "recovered")
    return {
        f">= {SUSTAINED_TARGET:,} messages/s sustained for {SUSTAINED_SECONDS // 60} min": (
            _verdict(
                ran_load and held is not None,
                held is not None
                and held.end_s - held.start_s >= SUSTAINED_SECONDS
                and (held.stored_per_s or 0) >= SUSTAINED_TARGET,
            )
        ),
        "lag not growing while sustained": _verdict(
            ran_load and held is not None, held is not None and not held.lag_growing
        ),
        "probes p99 produce->dispatch <= 100 ms while sustained": _verdict(
            ran_load and held is not None,
            held is not None and _at_most(held.produce_to_dispatch_p99_ms, 100),
        ),
        "probes p99 produce->dispatch <= 250 ms in the overload": _verdict(
            over is not None, over is not None and _at_most(over.produce_to_dispatch_p99_ms, 250)
        ),
        f"probes p99 produce->dispatch <= 100 ms from {RECOVERY_S:.0f} s after it": _verdict(
            recovered is not None,
            recovered is not None and _at_most(recovered.produce_to_dispatch_p99_ms, 100),
        ),
        "every probe reached its row and its department": _verdict(
            ran_load or ran_latency,
            (not ran_load or _all_arrived(load)) and (not ran_latency or _all_arrived(lat)),
        ),
        "p99 produce->dispatch <= 100 ms": _verdict(
            ran_latency, _at_most(lat.produce_to_dispatch_p99_ms, 100)
        ),
        "p99 produce->row <= 250 ms": _verdict(
            ran_latency, _at_most(lat.produce_to_db_p99_ms, 250)
        ),
        "no reading lost": _verdict(True, r.readings_missing == 0),
        "RSS <= 2 GiB": _verdict(True, r.worker_rss_max_mib <= 2048),
        ">= 75% of baseline": _verdict(r.backlog > 0, r.ratio_to_baseline >= 0.75),
        "no stall after idle": _verdict(
            r.idle_seconds > 0, _at_most(r.idle_probe_to_dispatch_ms, 1000)
        ),
    }


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def as_dict(result: E2EResult) -> dict[str, Any]:
    return asdict(result)


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """The result (`as_dict`) as one table of `name: value` lines for the terminal."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("load", "latency"):
            value = dict(value)
            series = value.pop("lag_series")
            hops = value.pop("hops_ms", {})
            for window in value.pop("windows", []):
                w = dict(window)
                where = f"{key}.{w.pop('name')}"
                for hop, (p50, p99) in w.pop("hops_ms", {}).items():
                    w[f"hop {hop} p50/p99 ms"] = f"{p50} / {p99}"
                for n, (at, ms, spans) in enumerate(w.pop("slowest", []), 1):
                    w[f"slowest probe {n}"] = f"at {at} s: {ms} ms ({spans})"
                for k, v in w.items():
                    flat[f"{where}.{k}"] = v
            for k, v in value.items():
                if k != "name":
                    flat[f"{key}.{k}"] = v
            step = max(1, len(series) // 12)
            flat[f"{key}.lag_series"] = " ".join(f"{t:.0f}s:{lag}" for t, lag in series[::step])
            for hop, (p50, p99) in hops.items():
                flat[f"{key}.hop {hop} p50/p99 ms"] = f"{p50} / {p99}"
        elif key == "stage_batches":
            for stage, b in value.items():
                flat[f"stage {stage}"] = (
                    f"{b['batches']} batches, {b['records_per_batch']} records and "
                    f"{b['ms_per_batch']} ms a batch (p99 <= {b['p99_ms_at_most']} ms), "
                    f"{b['busy_s']} s busy"
                )
        else:
            flat[key] = value
    return flat
