"""The persist stage's decision (pure): a canonical event as a row of the events table."""

from __future__ import annotations

from typing import Any

from citybrain.schemas.events import CanonicalEvent

Row = tuple[Any, ...]


def event_row(e: CanonicalEvent) -> Row:
    """A canonical event as a row of `schemas.tables.EVENTS`."""
    loc = e.location
    attributes = dict(e.attributes)
    if loc.jurisdiction:
        attributes["jurisdiction_all"] = loc.jurisdiction
    if e.kind != "report":
        attributes["kind"] = e.kind
    return (
        e.event_id,
        e.observed_at,
        e.received_at,
        e.source_kind,
        e.feed,
        e.category,
        e.severity,
        loc.lon,
        loc.lat,
        loc.source_crs,
        loc.status,
        loc.district,
        loc.street,
        loc.community,
        loc.grid_cell,
        ",".join(f"{k}:{v}" for k, v in sorted(loc.jurisdiction.items())) or None,
        loc.device_id,
        loc.address,
        e.text,
        attributes,
        {
            "topic": e.raw_ref.topic,
            "partition": e.raw_ref.partition,
            "offset": e.raw_ref.offset,
            "kind": e.kind,
        },
    )


def event_row_of(value: bytes) -> Row:
    """The row of one events.v1 message; raises when it is not a canonical event."""
    return event_row(CanonicalEvent.from_json(value))


def event_of_row(row: dict[str, Any]) -> CanonicalEvent:
    """A stored events row as the canonical event it was (for rebuilding an incident from
    its reports: what correlation uses of an event is all in the row)."""
    from citybrain.schemas.events import Location, RawRef

    attributes = dict(row.get("attributes") or {})
    jurisdiction = attributes.pop("jurisdiction_all", {}) or {}
    raw = dict(row.get("raw_ref") or {})
    kind = str(attributes.pop("kind", raw.get("kind", "report")))
    return CanonicalEvent(
        event_id=row["event_id"],
        source_kind=row["source_kind"],
        feed=row["feed"],
        kind=kind,
        category=row["category"],
        severity=int(row["severity"]),
        observed_at=row["observed_at"],
        received_at=row["received_at"],
        location=Location(
            status=row["location_status"],
            lon=row["lon"],
            lat=row["lat"],
            source_crs=row["crs"],
            address=row["address"],
            device_id=row["device_id"],
            district=row["district"],
            street=row["street"],
            community=row["community"],
            grid_cell=row["grid_cell"],
            jurisdiction=dict(jurisdiction),
        ),
        raw_ref=RawRef(
            str(raw.get("topic", "")), int(raw.get("partition", 0)), int(raw.get("offset", 0))
        ),
        text=row["body"],
        attributes=attributes,
    )
