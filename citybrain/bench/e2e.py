"""`citybrain bench e2e`: the whole pipeline on the local stack, against this machine's limit.

Two phases on the same kind of traffic (water-level gauge messages, two readings each):

1. **baseline**: a plain consumer (kafka-python) decodes the raw messages and COPYs their
   readings into a scratch table, one COPY per batch, no other work: what this machine
   can do for the job;
2. **pipeline**: real worker processes (by default two: one normalizes the telemetry, the
   other runs every other stage, as README recommends; `split=False`: one worker for
   all) read the same traffic, produced at
   `rate` messages/s (0 = as fast as the producer goes) for `duration` seconds, while
   probe calls (12345 tickets about gas leaks, each a new incident dispatched to three
   departments) measure produce -> database row and produce -> dispatch message latency.

Reported: sustained readings/s (between 10% and 90% of the readings landing), the ratio to
the baseline, consumer lag over time, latency percentiles, the worker's CPU and RSS, and
database rows/s; then, after `idle` seconds without traffic, one more probe's latency.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from citybrain.bench.normalize import last_ready
from citybrain.bench.proc import cpu_seconds, free_port, profiler_prefix, rss_mib, stop_signal
from citybrain.db.connect import connect
from citybrain.feeds.definition import BUILTIN_DIR
from citybrain.settings import PROJECT_ROOT, Settings

PROBE_PLACE = (121.5435, 31.2216)  # 浦东新区, in the gas-pudong zone


@dataclass
class E2EResult:
    messages: int
    readings_missing: int  # readings produced but not stored when the run ended
    rate_target: float
    produce_per_s: float
    baseline_readings_per_s: float
    pipeline_readings_per_s: float
    ratio_to_baseline: float | None  # only when the traffic is not throttled (rate 0)
    seconds_to_drain: float
    lag_max: int
    lag_end_of_produce: int
    lag_growing: bool
    db_rows_per_s: float
    produce_to_db_p50_ms: float | None
    produce_to_db_p99_ms: float | None
    produce_to_dispatch_p50_ms: float | None
    produce_to_dispatch_p99_ms: float | None
    probes: int
    workers: int
    worker_cpu_cores: float  # all workers together
    worker_rss_max_mib: float  # the largest worker
    idle_seconds: float
    idle_probe_to_db_ms: float | None
    idle_probe_to_dispatch_ms: float | None
    # per stage: batches, mean records a batch, mean and total seconds in batch bodies
    stage_batches: dict[str, dict[str, float]] = field(default_factory=dict)
    lag_series: list[tuple[float, int]] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _gauge_messages(devices: list[str], n: int, first: int = 0) -> list[tuple[bytes, bytes]]:
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
class Watcher:
    """Collects when probe events reach the database and their dispatches reach Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: dict[str, tuple[float, str]] = {}  # event id -> (produced at, incident)
        self.in_db: dict[str, float] = {}
        self.dispatched: dict[str, float] = {}  # incident -> first dispatch message
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._poll_db, daemon=True),
            threading.Thread(target=self._consume_dispatches, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _poll_db(self) -> None:
        with connect(self.settings, autocommit=True) as conn:
            while not self.stop.is_set():
                waiting = [e for e in list(self.sent) if e not in self.in_db]
                if waiting:
                    rows = conn.execute(
                        "SELECT event_id FROM events WHERE event_id = ANY(%s)", (waiting,)
                    ).fetchall()
                    now = time.time()
                    for (event_id,) in rows:
                        self.in_db.setdefault(event_id, now)
                time.sleep(0.005)

    def _consume_dispatches(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_list,
            group_id=None,
            auto_offset_reset="latest",
            consumer_timeout_ms=200,
        )
        consumer.subscribe(pattern=r"^dispatch\.[a-z0-9-]+\.v1$")
        while not self.stop.is_set():
            for message in consumer:
                try:
                    incident = json.loads(message.value)["incident_id"]
                except (ValueError, KeyError):
                    continue
                self.dispatched.setdefault(incident, time.time())
        consumer.close()

    def latencies(self, keys: list[str] | None = None) -> tuple[list[float], list[float]]:
        to_db, to_dispatch = [], []
        for event_id, (at, incident) in self.sent.items():
            if keys is not None and event_id not in keys:
                continue
            if event_id in self.in_db:
                to_db.append((self.in_db[event_id] - at) * 1000)
            if incident in self.dispatched:
                to_dispatch.append((self.dispatched[incident] - at) * 1000)
        return to_db, to_dispatch


def _lag(settings: Settings, group: str, topic: str) -> int:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        else:
            offsets = admin.list_consumer_group_offsets(group)
        committed = {tp: getattr(o, "offset", o) for tp, o in offsets.items()}
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_list)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return sum(max(0, ends[tp] - committed.get(tp, 0)) for tp in parts)


def run_e2e_bench(
    settings: Settings,
    rate: float,
    duration: float,
    idle: float,
    probes_per_s: float = 2.0,
    split: bool = True,
) -> E2EResult:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    run = uuid.uuid4().hex[:8]
    feed = f"e2e-{run}"
    topic = f"raw.iot.e2e-{run}"
    work = Path(tempfile.mkdtemp(prefix="citybrain-e2e-"))
    (work / "devices").mkdir()
    shutil.copy(BUILTIN_DIR / "devices" / "water-level.csv", work / "devices" / "water-level.csv")
    text = (BUILTIN_DIR / "water-level.yaml").read_text(encoding="utf-8")
    (work / f"{feed}.yaml").write_text(
        text.replace("feed: water-level", f"feed: {feed}")
        .replace("topic: raw.iot.water-level", f"topic: {topic}")
        .replace("samples: samples/water-level.jsonl", ""),
        encoding="utf-8",
    )
    devices = [
        line.split(",")[0]
        for line in (work / "devices" / "water-level.csv").read_text().splitlines()[1:]
    ]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        acks="all",
        linger_ms=5,
        batch_size=512 * 1024,
    )
    total = int(rate * duration) if rate > 0 else int(20_000 * duration)

    # phase 1: the baseline reads a copy of the traffic first, alone on the machine
    base_topic = f"{topic}.baseline"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    admin.create_topics([NewTopic(base_topic, settings.topic_partitions, 1)])
    admin.close()
    sample = min(total, 300_000)
    print(f"baseline: {sample} messages through a plain consumer + COPY ...", file=sys.stderr)
    for key, value in _gauge_messages(devices, sample):
        producer.send(base_topic, key=key, value=value)
    producer.flush()
    base_rate = baseline(settings, base_topic, sample)

    # phase 2: the pipeline, with traffic at the chosen rate and probes meanwhile
    group = f"e2e-{run}"
    env = {
        **os.environ,
        "CITYBRAIN_FEEDS_DIR": str(work),
        "CITYBRAIN_APP_ID": group,
        "CITYBRAIN_KAFKA_OFFSET_RESET": "latest",  # this run's traffic, not the history
        "CITYBRAIN_LOG_LEVEL": "INFO",  # "Worker ready" says a worker has its partitions
        "CITYBRAIN_LOG_FORMAT": "json",
    }
    # split (the deployment README recommends): telemetry in a worker of its own, so that
    # its bulk never holds up a report on its way to a department; else one worker for all
    roles = (
        {
            "telemetry": {
                "CITYBRAIN_APP_ID": f"{group}-telemetry",
                "CITYBRAIN_STAGES": "normalize",
                "CITYBRAIN_NORMALIZE_FEEDS": "telemetry",
            },
            "incidents": {"CITYBRAIN_NORMALIZE_FEEDS": "reports", "CITYBRAIN_KAFKA_LINGER_MS": "0"},
        }
        if split
        else {"all": {}}
    )
    lag_group = f"{group}-telemetry" if split else group
    metrics_ports = {role: free_port() for role in roles}
    workers = [
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
        )
        for role, extra in roles.items()
    ]
    worker = workers[-1]  # the one that dispatches
    watcher = Watcher(settings)
    # the traffic starts once every worker has joined its group and has its partitions
    deadline = time.monotonic() + 120
    logs = [work / f"worker-{role}.log" for role in roles]
    while time.monotonic() < deadline and not all(last_ready([log]) for log in logs):
        if any(w.poll() is not None for w in workers):
            break
        time.sleep(0.5)
    time.sleep(2)
    print(f"pipeline: {total} messages at {rate or 'max'}/s ...", file=sys.stderr)
    samples: list[tuple[float, int, float, float]] = []  # t, readings, cpu, rss
    lag_series: list[tuple[float, int]] = []
    target = 2 * total
    t0 = time.perf_counter()
    sent = probes = 0
    next_probe = t0
    produce_done = None
    lag_at_end = 0

    def readings() -> int:
        with connect(settings) as conn:
            row = conn.execute("SELECT count(*) FROM readings WHERE feed = %s", (feed,)).fetchone()
        return int(row[0]) if row else 0

    next_sample = t0
    try:
        while True:
            now = time.perf_counter()
            if sent < total:
                due = total if rate <= 0 else min(total, int((now - t0) * rate))
                for key, value in _gauge_messages(devices, due - sent, sent):
                    producer.send(topic, key=key, value=value)
                sent = due
                if sent >= total:
                    producer.flush()
                    produce_done = time.perf_counter()
            if now >= next_probe and (sent < total or produce_done is None):
                ticket, payload, incident = _probe(run, probes)
                watcher.sent[f"hotline-12345:{ticket}"] = (time.time(), incident)
                producer.send("raw.hotline", key=ticket.encode(), value=payload)
                probes += 1
                next_probe = now + 1 / probes_per_s
            if now >= next_sample:
                cpu = sum(cpu_seconds(w.pid) for w in workers if w.poll() is None)
                rss = max(rss_mib(w.pid) for w in workers if w.poll() is None)
                count = readings()
                samples.append((now, count, cpu, rss))
                try:
                    lag = _lag(settings, lag_group, topic)
                except Exception:
                    lag = -1
                lag_series.append((round(now - t0, 1), lag))
                if produce_done is not None and not lag_at_end:
                    lag_at_end = lag
                print(
                    f"\r  produced {sent}/{total}  readings {count}/{target}  lag {lag}   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                stalled = (
                    produce_done is not None
                    and len(samples) > 10
                    and samples[-10][1] == count
                    and lag == 0
                )
                if (
                    count >= target
                    or stalled
                    or any(w.poll() is not None for w in workers)
                    or now - t0 > duration + 900
                ):
                    break
                next_sample = now + 1.0
            time.sleep(0.005 if sent < total else 0.2)
        producer.flush()
        print(file=sys.stderr)
        drained = time.perf_counter() - t0
        time.sleep(3)
        to_db, to_dispatch = watcher.latencies()
        idle_db = idle_dispatch = None
        if idle > 0 and worker.poll() is None:
            print(f"idle for {idle:.0f}s, then one probe ...", file=sys.stderr)
            time.sleep(idle)
            ticket, payload, incident = _probe(run, 99_999)
            probe_id = f"hotline-12345:{ticket}"
            watcher.sent[probe_id] = (time.time(), incident)
            producer.send("raw.hotline", key=ticket.encode(), value=payload)
            producer.flush()
            deadline = time.time() + 60
            while time.time() < deadline and incident not in watcher.dispatched:
                time.sleep(0.05)
            one_db, one_dispatch = watcher.latencies([probe_id])
            idle_db = round(one_db[0], 1) if one_db else None
            idle_dispatch = round(one_dispatch[0], 1) if one_dispatch else None
        stage_batches = _stage_batches(metrics_ports.values())
    finally:
        watcher.stop.set()
        for w in workers:
            w.send_signal(stop_signal())
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        producer.close()
    if not samples or samples[-1][1] < target * 0.9:
        raise RuntimeError(f"the pipeline did not finish; see {work}/worker-*.log")
    stored = samples[-1][1]
    lo = next(s for s in samples if s[1] >= stored * 0.1)
    hi = next(s for s in samples if s[1] >= stored * 0.9)
    span = max(hi[0] - lo[0], 1e-9)
    pipeline_rate = (hi[1] - lo[1]) / span
    lags = [lag for _, lag in lag_series if lag >= 0]
    half = len(lags) // 2
    growing = (
        bool(lags)
        and half > 0
        and statistics.mean(lags[half:]) > 1.5 * max(1, statistics.mean(lags[:half]))
    )
    with connect(settings) as conn:
        conn.execute("DELETE FROM readings WHERE feed = %s", (feed,))
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    admin.delete_topics([topic, base_topic])
    admin.close()
    shutil.rmtree(work, ignore_errors=True)
    return E2EResult(
        messages=total,
        readings_missing=target - stored,
        rate_target=rate,
        produce_per_s=round(total / max((produce_done or time.perf_counter()) - t0, 1e-9)),
        baseline_readings_per_s=round(base_rate),
        pipeline_readings_per_s=round(pipeline_rate),
        ratio_to_baseline=round(pipeline_rate / max(base_rate, 1e-9), 2) if rate <= 0 else None,
        seconds_to_drain=round(drained, 1),
        lag_max=max(lags, default=0),
        lag_end_of_produce=lag_at_end,
        lag_growing=growing,
        db_rows_per_s=round(pipeline_rate),
        produce_to_db_p50_ms=_pct(to_db, 0.5),
        produce_to_db_p99_ms=_pct(to_db, 0.99),
        produce_to_dispatch_p50_ms=_pct(to_dispatch, 0.5),
        produce_to_dispatch_p99_ms=_pct(to_dispatch, 0.99),
        probes=probes,
        workers=len(workers),
        worker_cpu_cores=round((hi[2] - lo[2]) / span, 2),
        worker_rss_max_mib=round(max(s[3] for s in samples), 1),
        idle_seconds=idle,
        idle_probe_to_db_ms=idle_db,
        idle_probe_to_dispatch_ms=idle_dispatch,
        stage_batches=stage_batches,
        lag_series=lag_series,
    )


def _stage_batches(ports: Iterable[int]) -> dict[str, dict[str, float]]:
    """Where the workers' time went: each stage's batches from their Prometheus metrics."""
    import urllib.request

    sums: dict[str, dict[str, float]] = {}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
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
        }
    return out


def as_dict(result: E2EResult) -> dict[str, Any]:
    return asdict(result)
