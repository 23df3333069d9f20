"""Side traffic: besides a scenario's smoke alarms, records on the other topics the stages
read, each with a run marker so that what landed can be counted: wiring pings
(pipeline.ping.v1 -> pipeline_pings), hotline calls (raw.hotline -> events) and the
departments' acknowledgements of the run's tasks (dispatch.status.v1 -> dispatches).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from citybrain.settings import Settings
from citybrain_tools.chaos import traffic

PING_TOPIC = "pipeline.ping.v1"
HOTLINE_TOPIC = "raw.hotline"
STATUS_TOPIC = "dispatch.status.v1"
HOTLINE_FEED = "hotline-12345"
#: Places callers name (Shanghai pack); the run marker goes in the call's text.
ADDRESSES = ("浦东新区世纪大道2001号", "徐汇区漕溪北路336号", "静安区南京西路1601号")


def ping(run: str, i: int) -> tuple[bytes, bytes]:
    ping_id = f"CH{run}-p{i:06d}"
    value = {"ping_id": ping_id, "sent_at": datetime.now(UTC).isoformat(), "note": "chaos"}
    return ping_id.encode(), json.dumps(value).encode()


def hotline_call(run: str, i: int) -> tuple[bytes, bytes]:
    ticket = f"CH{run}H{i:06d}"
    at = datetime.now(UTC) + timedelta(hours=8) - timedelta(minutes=2)
    value = {
        "ticketNo": ticket,
        "acceptTime": at.strftime("%Y-%m-%d %H:%M:%S"),
        "callerPhone": "13800000000",
        "channel": "电话",
        "category": "市政-路灯不亮",
        "urgency": "一般",
        "content": f"市民来电反映路灯不亮（工单{ticket}），请尽快处理。",
        "address": ADDRESSES[i % len(ADDRESSES)],
        "lng": None,
        "lat": None,
    }
    return ticket.encode(), json.dumps(value, ensure_ascii=False).encode()


def acknowledgement(run: str, dispatch_id: str, department: str) -> tuple[bytes, bytes]:
    value = {
        "schema": "citybrain.dispatch-status/1",
        "report_id": f"CH{run}-ack-{dispatch_id}",
        "dispatch_id": dispatch_id,
        "department": department,
        "status": "acknowledged",
        "at": datetime.now(UTC).isoformat(),
        "actor": "chaos",
    }
    return dispatch_id.encode(), json.dumps(value).encode()


#: The kinds of side records, each with what one becomes once it has landed.
LANDED_AS = {"pings": "stored", "calls": "stored", "acks": "applied"}


@dataclass
class SideLanded:
    """Side records sent and landed, per kind (`LANDED_AS`)."""

    sent: dict[str, int]
    landed: dict[str, int]

    @property
    def lost(self) -> int:
        return sum(self.sent.values()) - sum(self.landed.values())

    def figures(self) -> dict[str, int]:
        """Each kind's sent and landed counts: pings_sent, pings_stored, calls_sent, ...,
        acks_applied."""
        return {
            name: count
            for kind, landed_as in LANDED_AS.items()
            for name, count in (
                (f"{kind}_sent", self.sent[kind]),
                (f"{kind}_{landed_as}", self.landed[kind]),
            )
        }


@dataclass
class SideTraffic:
    """Sends `per_second` pings and hotline calls a second, and acknowledges each of the run's
    tasks once, in a thread, until stopped."""

    settings: Settings
    run: str
    per_second: int = 5
    pings: int = 0
    calls: int = 0
    acked: dict[str, str] = field(default_factory=dict)  # dispatch id -> department
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SideTraffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        try:
            producer = traffic.producer(self.settings)
            while not self._stop.wait(1.0):
                futures = []
                for _ in range(self.per_second):
                    for topic, (key, value) in (
                        (PING_TOPIC, ping(self.run, self.pings)),
                        (HOTLINE_TOPIC, hotline_call(self.run, self.calls)),
                    ):
                        futures.append(producer.send(topic, key=key, value=value))
                    self.pings += 1
                    self.calls += 1
                for dispatch_id, department in self._new_tasks():
                    key, value = acknowledgement(self.run, dispatch_id, department)
                    futures.append(producer.send(STATUS_TOPIC, key=key, value=value))
                    self.acked[dispatch_id] = department
                producer.flush()
                for f in futures:
                    f.get(timeout=600)
            producer.close()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def acknowledged_all(self) -> bool:
        """Whether every task of the run so far has its acknowledgement sent (or on its way:
        `stop` waits for the sends of the pass under way); not while the database cannot
        say."""
        try:
            return not self._tasks_to_acknowledge()
        except Exception:
            return False

    def _new_tasks(self) -> list[tuple[str, str]]:
        try:
            return self._tasks_to_acknowledge()
        except Exception:  # the database may be the fault under test: next second
            return []

    def _tasks_to_acknowledge(self) -> list[tuple[str, str]]:
        with traffic._conn(self.settings) as conn:
            rows = conn.execute(
                "SELECT d.dispatch_id, d.department FROM dispatches d"
                " JOIN incident_reports r ON r.incident_id = d.incident_id"
                " JOIN events e ON e.event_id = r.event_id"
                " WHERE e.device_id LIKE %s AND e.observed_at > %s"
                " AND d.acknowledged_at IS NULL AND d.status = 'dispatched'",
                (f"CH{self.run}-%", datetime.now(UTC) - timedelta(hours=2)),
            ).fetchall()
        return sorted({(r[0], r[1]) for r in rows if r[0] not in self.acked})

    def landed(self) -> SideLanded:
        """Count what the side records became."""
        since = datetime.now(UTC) - timedelta(hours=2)
        with traffic._conn(self.settings) as conn:
            pings = conn.execute(
                "SELECT count(*) FROM pipeline_pings WHERE ping_id LIKE %s",
                (f"CH{self.run}-p%",),
            ).fetchone()
            calls = conn.execute(
                "SELECT count(DISTINCT event_id) FROM events"
                " WHERE feed = %s AND body LIKE %s AND observed_at > %s",
                (HOTLINE_FEED, f"%CH{self.run}H%", since),
            ).fetchone()
            acks = conn.execute(
                "SELECT count(*) FROM dispatches"
                " WHERE dispatch_id = ANY(%s::text[]) AND acknowledged_at IS NOT NULL",
                (list(self.acked),),
            ).fetchone()
        counted = {"pings": pings, "calls": calls, "acks": acks}
        return SideLanded(
            sent={"pings": self.pings, "calls": self.calls, "acks": len(self.acked)},
            landed={kind: int(row[0]) if row else 0 for kind, row in counted.items()},
        )
