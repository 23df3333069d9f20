"""Hostile input: the bad-input corpus of the normalize stage (issue #5, kept in
tests/data/bad_input.jsonl with the unit tests that check it) and poison pills that pass
the earlier stages but make a later one raise (persist, correlate, dispatch,
dispatch-status). Each pill names the stage that must dead-letter it and the reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.schemas.incident_status import MESSAGE_HEADER, MESSAGE_KIND
from citybrain.settings import PROJECT_ROOT


def raw_topics() -> dict[str, str]:
    """Each built-in feed's raw topic (from its definition)."""
    return {f.name: f.topic for f in load_feeds(BUILTIN_DIR)}


#: The normalize stage's bad-input corpus, which its unit tests check record by record
#: (tests/citybrain/feeds/test_normalize.py): a JSON line per record with its feed, the
#: reason it must be rejected with, and its payload: text (a \udcXX escape is a byte that is
#: not UTF-8) or a list of pieces, a [text, n] piece standing for text n times.
CORPUS_FILE = PROJECT_ROOT / "tests" / "data" / "bad_input.jsonl"


def raw_corpus(path: Path = CORPUS_FILE) -> list[tuple[str, bytes, str]]:
    """(feed, raw bytes, reason) of every record of the corpus."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(d["feed"], _payload(d["payload"]), d["reason"]) for d in map(json.loads, lines)]


def _payload(payload: str | list[Any]) -> bytes:
    if not isinstance(payload, str):
        payload = "".join(p if isinstance(p, str) else p[0] * p[1] for p in payload)
    return payload.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Pill:
    """One hostile record: where it goes, what it is, and the dead letter it must become."""

    name: str
    topic: str
    value: bytes
    stage: str  # the stage that must dead-letter it
    dlq: str  # that stage's dead-letter topic
    reason: str
    marker: str  # a string in the value that finds its dead letter
    headers: tuple[tuple[str, bytes], ...] = ()


def event(marker: str, **changes: Any) -> dict[str, Any]:
    """A canonical event (events.v1) that decodes, with `changes` applied (dot paths)."""
    now = datetime.now(UTC).isoformat()
    doc: dict[str, Any] = {
        "schema": "citybrain.event/1",
        "event_id": f"chaos-pill:{marker}",
        "source_kind": "hotline",
        "feed": "hotline-12345",
        "kind": "report",
        "category": "noise",
        "severity": 4,
        "observed_at": now,
        "received_at": now,
        "location": {
            "status": "ok",
            "lon": 121.5,
            "lat": 31.2,
            "source_crs": None,
            "address": None,
            "device_id": None,
            "method": None,
            "district": "310115",
            "street": None,
            "community": None,
            "grid_cell": None,
            "jurisdiction": {},
            "match_confidence": None,
        },
        "raw_ref": {"topic": "raw.hotline", "partition": 0, "offset": 0, "key": None},
        "text": marker,
        "caller_phone_masked": None,
        "attributes": {},
    }
    for path, value in changes.items():
        cur = doc
        *head, last = path.split("__")
        for p in head:
            cur = cur[p]
        cur[last] = value
    return doc


def pills(run: str, incident_message: dict[str, Any] | None) -> list[Pill]:
    """The poison pills of a run; `incident_message`: a real incidents.v1 message (of an
    incident in the database) to make the dispatch planner's pill from."""

    def m(name: str) -> str:
        return f"PILL-{run}-{name}"

    def ev(name: str, **changes: Any) -> bytes:
        return json.dumps(event(m(name), **changes), ensure_ascii=False).encode()

    out = [
        Pill(
            "persist-nul",
            "events.v1",
            ev("persist-nul", text=f"{m('persist-nul')}\u0000"),
            "persist",
            "events.v1.dlq",
            "storage_rejected",
            m("persist-nul"),
        ),
        Pill(
            "persist-shape",
            "events.v1",
            ev("persist-shape", location__jurisdiction=["not", "a", "mapping"]),
            "persist",
            "events.v1.dlq",
            "schema_violation",
            m("persist-shape"),
        ),
        Pill(
            "correlate-lon",
            "events.v1",
            ev("correlate-lon", location__lon="east"),
            "correlate",
            "correlate.v1.dlq",
            "correlation_failed",
            m("correlate-lon"),
        ),
        Pill(
            "correlate-district",
            "events.v1",
            ev(
                "correlate-district",
                location__lon=None,
                location__lat=None,
                location__district=310115,
                location__status="needs_location",
            ),
            "correlate",
            "correlate.v1.dlq",
            "correlation_failed",
            m("correlate-district"),
        ),
        Pill(
            "correlate-control",
            "correlate.v1",
            json.dumps(
                {
                    "schema": "citybrain.incident-status/1",
                    "incident_id": m("correlate-control"),  # not an id this stage made
                    "status": "resolved",
                }
            ).encode(),
            "correlate",
            "correlate.v1.dlq",
            "control_failed",
            m("correlate-control"),
            headers=((MESSAGE_HEADER, MESSAGE_KIND),),
        ),
        Pill(
            "dispatch-json",
            "incidents.v1",
            f'{{"incident_id": "{m("dispatch-json")}"'.encode(),
            "dispatch",
            "incidents.v1.dlq",
            "schema_violation",
            m("dispatch-json"),
        ),
        Pill(
            "dispatch-unknown",
            "incidents.v1",
            json.dumps(
                {
                    **(incident_message or {}),
                    "incident_id": m("dispatch-unknown"),
                    "first_seen": "2026-01-01T00:00:00+00:00",
                    "last_seen": "2026-01-01T00:00:00+00:00",
                    "category": "noise",
                    "priority": 3,
                    "status": "open",
                }
            ).encode(),
            "dispatch",
            "incidents.v1.dlq",
            "unknown_incident",
            m("dispatch-unknown"),
        ),
        Pill(
            "status-json",
            "dispatch.status.v1",
            f'{{"x": "{m("status-json")}"}}'.encode(),
            "dispatch-status",
            "dispatch.status.v1.dlq",
            "schema_violation",
            m("status-json"),
        ),
        Pill(
            "status-unknown",
            "dispatch.status.v1",
            json.dumps(
                {
                    "schema": "citybrain.dispatch-status/1",
                    "report_id": m("status-unknown"),
                    "dispatch_id": m("status-unknown")[:100],
                    "department": "fire",
                    "status": "acknowledged",
                    "at": datetime.now(UTC).isoformat(),
                }
            ).encode(),
            "dispatch-status",
            "dispatch.status.v1.dlq",
            "unknown_dispatch",
            m("status-unknown"),
        ),
    ]
    if incident_message is not None:
        # a stored incident whose message breaks the planner (a longitude that is text)
        broken = {**incident_message, "lon": "east", "pill": m("dispatch-plan")}
        out.append(
            Pill(
                "dispatch-plan",
                "incidents.v1",
                json.dumps(broken).encode(),
                "dispatch",
                "incidents.v1.dlq",
                "planning_failed",
                m("dispatch-plan"),
            )
        )
    return out
