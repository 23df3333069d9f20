"""Traffic with unique ids: smoke alarms from devices that exist once per run, placed on a
grid of sites far enough apart (about 660 m) that each site is one incident, and read-backs
of what landed (events rows, incident reports, dispatches).

Every record `i` of run `r` is a distinct alarm of device `CH<r>-<i>`, so its event id is
unique and "lost" and "duplicated" are counts of device ids in the events table.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options

TOPIC = "raw.iot.smoke-alarm"
#: The sites: a grid over central Shanghai (GCJ-02), 0.007° x 0.006° apart (~660 m, more
#: than twice the fire family's 300 m radius).
LON0, LAT0, DLON, DLAT, COLUMNS, ROWS = 121.30, 31.10, 0.007, 0.006, 57, 41


def new_run_id() -> str:
    """A short id that prefixes every device of one run."""
    return uuid.uuid4().hex[:8]


def device(run: str, i: int) -> str:
    return f"CH{run}-{i:07d}"


def site(run: str, i: int, per_site: int) -> tuple[float, float]:
    """The site of record `i`: `per_site` consecutive records share one."""
    n = (i // per_site + int(run, 16)) % (COLUMNS * ROWS)
    return round(LON0 + DLON * (n % COLUMNS), 6), round(LAT0 + DLAT * (n // COLUMNS), 6)


def smoke_alarm(run: str, i: int, per_site: int, at: datetime) -> tuple[bytes, bytes]:
    """Raw record `i` of a run: (key, value) as the vendor sends it."""
    lon, lat = site(run, i, per_site)
    serial = device(run, i)
    doc = {
        "deviceSerial": serial,
        "alarmType": "1",
        "alarmTime": (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S"),
        "location": {"lng": lon, "lat": lat, "address": f"chaos site {lon},{lat}"},
        "battery": 80,
        "rssi": -90,
    }
    return serial.encode(), json.dumps(doc, ensure_ascii=False).encode()


def records(run: str, count: int, per_site: int = 100) -> list[tuple[bytes, bytes]]:
    """`count` unique alarms, observed a few minutes ago (never in the future)."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    return [smoke_alarm(run, i, per_site, at) for i in range(count)]


#: A producer that rides out a broker outage of minutes: every record acknowledged by all
#: replicas, retried without limit and in order (one request in flight), for up to 10 minutes.
OUTAGE_PROOF: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "retries": 2147483647,
    "max_in_flight_requests_per_connection": 1,
    "delivery_timeout_ms": 600_000,
    "request_timeout_ms": 15_000,
    "max_block_ms": 600_000,
}


def producer(settings: Settings) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        **OUTAGE_PROOF,
    )


def produce(settings: Settings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Send and wait for every ack."""
    p = producer(settings)
    futures = [p.send(topic, key=k, value=v) for k, v in items]
    p.flush()
    for f in futures:
        f.get(timeout=600)
    p.close()


@dataclass
class Paced:
    """Produces records at `rate`/s in a thread; `sent` counts the acknowledged ones.
    The producer retries through a broker outage (acks=all, unlimited retries). `stop()`
    ends it early: `items[:sent]` are then the records sent, every one acknowledged."""

    settings: Settings
    topic: str
    items: list[tuple[bytes, bytes]]
    rate: float
    sent: int = 0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Paced:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self, timeout: float = 600.0) -> int:
        """Send nothing more, wait until what was sent is acknowledged; the count sent."""
        self.stopping.set()
        self.done.wait(timeout)
        return self.sent

    def _run(self) -> None:
        try:
            p = producer(self.settings)
            started = time.monotonic()
            step = max(1, int(self.rate / 20))
            for n in range(0, len(self.items), step):
                if self.stopping.is_set():
                    break
                chunk = self.items[n : n + step]
                futures = [p.send(self.topic, key=k, value=v) for k, v in chunk]
                p.flush()
                for f in futures:
                    f.get(timeout=600)
                self.sent += len(chunk)
                ahead = started + self.sent / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            p.close()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()


@dataclass
class Landed:
    """What one run's records became in the database."""

    rows: int  # events rows of the run's devices
    distinct: int  # distinct event ids among them
    devices: int  # distinct devices among them
    reports: int  # incident_reports rows of the run's events
    incidents: int
    sites: int  # distinct sites with an incident
    split_sites: int  # sites whose reports went to more than one incident
    dispatches: int
    duplicate_dispatches: int  # tasks beyond one per (site, department)
    incidents_without_task: int
    incident_ids: tuple[str, ...] = ()

    def lost(self, expected: int) -> int:
        return expected - self.devices

    @property
    def constraint_duplicate_rows(self) -> int:
        """events rows beyond one per event id: 0 by the table's primary key (a check of
        the schema, not of the pipeline; `delivered` counts where duplicates can happen)."""
        return self.rows - self.distinct


def _conn(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.conninfo(), connect_timeout=5)


def stored_count(settings: Settings, run: str) -> int:
    """Events rows of the run (cheap enough to poll)."""
    with _conn(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE device_id LIKE %s AND observed_at > %s",
            (f"CH{run}-%", datetime.now(UTC) - timedelta(hours=2)),
        ).fetchone()
    return int(row[0]) if row else 0


def landed(settings: Settings, run: str, per_site: int = 100) -> Landed:
    """Count everything the run left in the database."""
    like = f"CH{run}-%"
    since = datetime.now(UTC) - timedelta(hours=2)
    with _conn(settings) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id), count(DISTINCT device_id) FROM events"
            " WHERE device_id LIKE %s AND observed_at > %s",
            (like, since),
        ).fetchone()
        assert row is not None
        rows, distinct, devices = (int(x) for x in row)
        pairs = conn.execute(
            "SELECT e.device_id, r.incident_id FROM events e"
            " JOIN incident_reports r ON r.event_id = e.event_id"
            " WHERE e.device_id LIKE %s AND e.observed_at > %s",
            (like, since),
        ).fetchall()
        incidents = sorted({p[1] for p in pairs})
        tasks = conn.execute(
            "SELECT incident_id, department FROM dispatches WHERE incident_id = ANY(%s)",
            (incidents,),
        ).fetchall()
    by_site: dict[int, set[str]] = {}
    for dev, incident in pairs:
        by_site.setdefault(int(dev.rsplit("-", 1)[1]) // per_site, set()).add(incident)
    site_of: dict[str, int] = {}
    for s, incs in by_site.items():
        for inc in incs:
            site_of[inc] = s
    per_site_dept: dict[tuple[int, str], int] = {}
    with_task = set()
    for incident, dept in tasks:
        with_task.add(incident)
        key = (site_of[incident], dept)
        per_site_dept[key] = per_site_dept.get(key, 0) + 1
    return Landed(
        rows=rows,
        distinct=distinct,
        devices=devices,
        reports=len(pairs),
        incidents=len(incidents),
        sites=len(by_site),
        split_sites=sum(1 for incs in by_site.values() if len(incs) > 1),
        dispatches=len(tasks),
        duplicate_dispatches=sum(n - 1 for n in per_site_dept.values()),
        incidents_without_task=len(set(incidents) - with_task),
        incident_ids=tuple(incidents),
    )


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    """Poll `check` (errors count as false) until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # the database may be the fault under test
            if check():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def settled(settings: Settings, run: str, expected: int, per_site: int = 100) -> Callable[[], bool]:
    """A check: every record is stored, correlated and its incident has its tasks."""

    def check() -> bool:
        if stored_count(settings, run) < expected:
            return False
        got = landed(settings, run, per_site)
        return got.reports >= expected and got.incidents_without_task == 0

    return check
