"""`citybrain bench normalize`: the normalize stage's sustained rate on the telemetry path,
with the real broker, the real database and real worker processes.

A copy of the water-level feed reads a fresh topic; N simulated gauge messages are
produced first, then workers running only the normalize stage start (their consumer group
reads that topic from the start and every other topic from the end). The rate is taken
from the group's committed offsets (a batch's offsets are committed after its readings are
stored; every reading is counted in the database at the end, each message holds two)
between 10% and 90% of the run, so start-up is not counted; the steady rate starts when the last
worker is ready after the group's last rebalance (each worker that joins rebalances the
group once). The workers' CPU time is read from /proc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from citybrain.db.connect import connect
from citybrain.settings import PROJECT_ROOT, Settings
from citybrain_tools.bench.feed import water_level_copy
from citybrain_tools.bench.proc import cpu_seconds, free_port, profiler_prefix, stop_signal
from citybrain_tools.kafka import group_offsets, numbered, start_group_at_start


@dataclass
class NormalizeBenchResult:
    messages: int
    workers: int
    produce_per_s: float
    records_per_s: float  # between 10% and 90% of the readings stored, rebalances included
    steady_records_per_s: float | None  # after the last worker joined (None: too short)
    readings_per_s: float
    worker_cpu_cores: float
    seconds_to_drain: float


def stored_readings(settings: Settings, feed: str) -> int:
    """Readings of a feed in the database (counted once, at the end of a run)."""
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM readings WHERE feed = %s", (feed,)).fetchone()
    return int(row[0]) if row else 0


def last_ready(logs: Iterable[Path]) -> float:
    """When the last worker logged "Worker ready" (epoch seconds; 0 when none did)."""
    latest = 0.0
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            if "Worker ready" not in line or not line.startswith("{"):
                continue
            try:
                stamp = json.loads(line)["timestamp"]
            except (ValueError, KeyError):
                continue
            latest = max(latest, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    return latest


def run_normalize_bench(
    settings: Settings, messages: int, workers: int = 1, alarms: bool = True
) -> NormalizeBenchResult:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    run = uuid.uuid4().hex[:8]
    feed = f"bench-{run}"
    topic = f"raw.iot.bench-{run}"
    work, devices = water_level_copy(feed, topic, "citybrain-bench-", alarms)

    group = f"bench-{run}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    # the workers' group reads the bench topic from its start and every other topic from
    # its end: the history other runs left in the built-in feeds is not this measurement
    start_group_at_start(admin, group, numbered(settings, topic))
    admin.close()

    print(f"producing {messages} gauge messages to {topic} ...", file=sys.stderr)
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
    )
    start_ts = datetime.now(UTC) - timedelta(hours=6)
    t0 = time.perf_counter()
    per_device = max(1, messages // len(devices))
    for i in range(messages):
        device = devices[i % len(devices)]
        at = start_ts + timedelta(seconds=(i // len(devices)) * (21600 / per_device))
        doc = {
            "devId": device,
            "ts": int(at.timestamp() * 1000),
            "data": {"level": f"{10 + (i % 23):.1f}", "unit": "cm", "bat": 3.6},
        }
        producer.send(topic, key=device.encode(), value=json.dumps(doc).encode())
    producer.flush()
    produce_rate = messages / (time.perf_counter() - t0)
    producer.close()

    prefix = profiler_prefix()
    procs = []
    for n in range(workers):
        env = {
            **os.environ,
            "CITYBRAIN_FEEDS_DIR": str(work),
            "CITYBRAIN_APP_ID": group,
            "CITYBRAIN_KAFKA_OFFSET_RESET": "latest",
            "CITYBRAIN_METRICS_PORT": "0",
            "CITYBRAIN_WORKER_WEB_PORT": str(free_port()),
            "CITYBRAIN_STAGES": "normalize",  # the stage measured, nothing else
            "CITYBRAIN_LOG_LEVEL": "INFO",  # "Worker ready" marks the group's last rebalance
            "CITYBRAIN_LOG_FORMAT": "json",
        }
        log = (work / f"worker-{n}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*prefix, "-m", "citybrain.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        )
    # progress is read from the group's committed offsets (committed only after a batch's
    # readings are stored): cheap, where counting rows would scan the readings table
    tps = numbered(settings, topic)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    samples: list[tuple[float, int, float]] = []  # t, records committed, workers' CPU s
    started = time.perf_counter()
    wall_offset = time.time() - started  # perf_counter -> epoch seconds
    try:
        while True:
            count = sum(max(o, 0) for o in group_offsets(admin, group, tps).values())
            now = time.perf_counter()
            cpu = sum(cpu_seconds(p.pid) for p in procs if p.poll() is None)
            samples.append((now, count, cpu))
            print(f"\r  {count}/{messages} records done", end="", file=sys.stderr, flush=True)
            if count >= messages or any(p.poll() is not None for p in procs):
                break
            if now - started > 900:
                break
            time.sleep(0.5)
    finally:
        print(file=sys.stderr)
        for p in procs:
            p.send_signal(stop_signal())
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        stored = stored_readings(settings, feed)
        with connect(settings) as conn:
            conn.execute("DELETE FROM readings WHERE feed = %s", (feed,))
        admin.delete_topics([topic])
        admin.close()
    if samples[-1][1] < messages or stored != 2 * messages:
        what = "a worker stopped early" if any(p.poll() for p in procs) else "no progress"
        raise RuntimeError(
            f"{what}: {samples[-1][1]}/{messages} records committed, {stored}/{2 * messages}"
            f" readings stored; see {work}/worker-*.log"
        )
    lo = next(s for s in samples if s[1] >= messages * 0.1)
    hi = next(s for s in samples if s[1] >= messages * 0.9)
    rate = (hi[1] - lo[1]) / max(hi[0] - lo[0], 1e-9)
    cores = (hi[2] - lo[2]) / max(hi[0] - lo[0], 1e-9)
    # steady: from the moment the last worker was ready after the group's last rebalance
    ready = last_ready(work.glob("worker-*.log")) - wall_offset
    steady = [s for s in samples if s[0] >= ready and s[1] <= hi[1]]
    steady_rate = None
    if len(steady) >= 2 and steady[-1][0] - steady[0][0] >= 3.0:
        steady_rate = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
    shutil.rmtree(work, ignore_errors=True)
    return NormalizeBenchResult(
        messages=messages,
        workers=workers,
        produce_per_s=round(produce_rate),
        records_per_s=round(rate),
        steady_records_per_s=round(steady_rate) if steady_rate is not None else None,
        readings_per_s=round(2 * rate),
        worker_cpu_cores=round(cores, 2),
        seconds_to_drain=round(samples[-1][0] - started, 1),
    )


def as_dict(result: NormalizeBenchResult) -> dict[str, Any]:
    return asdict(result)
