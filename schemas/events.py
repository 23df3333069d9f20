"""The canonical event as the agents hold it, and its JSON form (schema: canonical_event.v1).

Plain slotted dataclasses and orjson on the hot path; `tests/schemas` checks that what
`to_json` writes validates against `schemas/json/canonical_event.v1.json` and that the
field sets agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import orjson

SCHEMA_ID = "citybrain.event/1"


def schema_document() -> dict[str, Any]:
    """The JSON Schema of the canonical event."""
    data: dict[str, Any] = orjson.loads(
        (files("citybrain.schemas") / "json" / "canonical_event.v1.json").read_bytes()
    )
    return data


@dataclass(slots=True)
class Location:
    status: str = "needs_location"  # located, out_of_area, needs_location
    lon: float | None = None
    lat: float | None = None
    source_crs: str | None = None
    address: str | None = None
    device_id: str | None = None
    method: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid_cell: str | None = None
    jurisdiction: dict[str, str] = field(default_factory=dict)
    match_confidence: float | None = None


@dataclass(slots=True)
class RawRef:
    topic: str
    partition: int
    offset: int
    key: str | None = None


@dataclass(slots=True)
class CanonicalEvent:
    event_id: str
    source_kind: str
    feed: str
    kind: str
    category: str
    severity: int
    observed_at: datetime
    received_at: datetime
    location: Location
    raw_ref: RawRef
    text: str | None = None
    caller_phone_masked: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "schema": SCHEMA_ID,
            "event_id": self.event_id,
            "source_kind": self.source_kind,
            "feed": self.feed,
            "kind": self.kind,
            "category": self.category,
            "severity": self.severity,
            "observed_at": _iso(self.observed_at),
            "received_at": _iso(self.received_at),
            "location": {
                "status": loc.status,
                "lon": loc.lon,
                "lat": loc.lat,
                "source_crs": loc.source_crs,
                "address": loc.address,
                "device_id": loc.device_id,
                "method": loc.method,
                "district": loc.district,
                "street": loc.street,
                "community": loc.community,
                "grid_cell": loc.grid_cell,
                "jurisdiction": loc.jurisdiction,
                "match_confidence": loc.match_confidence,
            },
            "text": self.text,
            "caller_phone_masked": self.caller_phone_masked,
            "attributes": self.attributes,
            "raw_ref": {
                "topic": self.raw_ref.topic,
                "partition": self.raw_ref.partition,
                "offset": self.raw_ref.offset,
                "key": self.raw_ref.key,
            },
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CanonicalEvent:
        loc = d["location"]
        ref = d["raw_ref"]
        return cls(
            event_id=d["event_id"],
            source_kind=d["source_kind"],
            feed=d["feed"],
            kind=d["kind"],
            category=d["category"],
            severity=int(d["severity"]),
            observed_at=datetime.fromisoformat(d["observed_at"]),
            received_at=datetime.fromisoformat(d["received_at"]),
            location=Location(**{k: loc.get(k) for k in Location.__slots__ if k in loc}),
            raw_ref=RawRef(ref["topic"], int(ref["partition"]), int(ref["offset"]), ref.get("key")),
            text=d.get("text"),
            caller_phone_masked=d.get("caller_phone_masked"),
            attributes=d.get("attributes") or {},
        )

    @classmethod
    def from_json(cls, raw: bytes) -> CanonicalEvent:
        return cls.from_dict(orjson.loads(raw))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
