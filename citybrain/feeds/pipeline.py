"""One batch of one feed's raw records -> canonical events, readings, contacts, rejects.

Pure: the normalize agent hands in the records and the alarm state of their devices and
gets back everything to write and emit; `citybrain feeds test` runs the same code on
sample files. Order within a device is kept (rules see readings in time order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from citybrain.feeds.alarms import AlarmEvent, evaluate
from citybrain.feeds.definition import Feed
from citybrain.feeds.normalize import ParsedRecord, Reject, masked_phone, masked_text, parse
from citybrain.geo.geotag import Geotagger, LocationRequest, Placement
from schemas.events import CanonicalEvent, Location, RawRef


@dataclass(frozen=True)
class RawRecord:
    value: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None = None


@dataclass
class BatchOutput:
    events: list[CanonicalEvent] = field(default_factory=list)
    readings: list[tuple[Any, ...]] = field(default_factory=list)  # schemas.tables.READINGS
    contacts: list[tuple[Any, ...]] = field(default_factory=list)  # PERSONAL_CONTACTS
    rejects: list[tuple[int, Reject]] = field(default_factory=list)  # (index in batch, why)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> alarm state
    ok: int = 0


def _location(rec: ParsedRecord, p: Placement) -> Location:
    return Location(
        status="needs_location" if p.location_status == "unknown_device" else p.location_status,
        lon=p.lon,
        lat=p.lat,
        source_crs=rec.crs if rec.lon is not None else None,
        address=rec.address,
        device_id=rec.device_id,
        method=p.method,
        district=p.district,
        street=p.street,
        community=p.community,
        grid_cell=p.grid_cell,
        jurisdiction=dict(p.jurisdiction),
        match_confidence=p.match_confidence,
    )


def _ref(r: RawRecord) -> RawRef:
    key = r.key.decode("utf-8", "replace") if r.key is not None else None
    return RawRef(r.topic, r.partition, r.offset, key)


def normalize_batch(
    feed: Feed,
    records: Sequence[RawRecord],
    geotagger: Geotagger,
    states: Mapping[str, dict[str, Any]],
    received_at: datetime,
) -> BatchOutput:
    out = BatchOutput()
    parsed: list[tuple[int, ParsedRecord]] = []
    for i, record in enumerate(records):
        try:
            parsed.append((i, parse(feed, record.value, received_at)))
        except Reject as exc:
            out.rejects.append((i, exc))
    registry = feed.devices
    requests = []
    for _, rec in parsed:
        use_device = rec.lon is None and rec.device_id is not None and registry is not None
        requests.append(
            LocationRequest(
                lon=rec.lon,
                lat=rec.lat,
                crs=rec.crs,
                device_id=rec.device_id if use_device else None,
                address=rec.address,
            )
        )
    placements = geotagger.place(requests, registry)

    alive: list[tuple[int, ParsedRecord, Placement]] = []
    for (i, rec), place in zip(parsed, placements, strict=True):
        if place.location_status == "unknown_device":
            out.rejects.append(
                (i, Reject("unknown_device", f"device {rec.device_id!r} is not in the registry"))
            )
            continue
        alive.append((i, rec, place))
    alive.sort(key=lambda t: (t[1].device_id or "", t[1].observed_at, t[0]))

    definition = feed.definition
    for i, rec, place in alive:
        location = _location(rec, place)
        ref = _ref(records[i])
        for metric, value, unit in rec.readings:
            out.readings.append((rec.device_id, metric, rec.observed_at, value, unit, rec.feed))
        if rec.event_id is not None:
            out.events.append(
                CanonicalEvent(
                    event_id=rec.event_id,
                    source_kind=rec.source_kind,
                    feed=rec.feed,
                    kind=rec.kind or "report",
                    category=rec.category or "other",
                    severity=rec.severity,
                    observed_at=rec.observed_at,
                    received_at=received_at,
                    location=location,
                    raw_ref=ref,
                    text=masked_text(rec.text),
                    caller_phone_masked=masked_phone(rec.caller_phone),
                    attributes=rec.attributes,
                )
            )
            if rec.caller_phone:
                out.contacts.append((rec.event_id, rec.caller_phone, None))
        if definition.alarms and rec.device_id is not None:
            before = out.states.get(rec.device_id)
            if before is None and rec.device_id in states:
                before = orjson.loads(orjson.dumps(states[rec.device_id]))  # our own copy
            state, alarms = evaluate(
                definition, before, rec.device_id, rec.observed_at, rec.readings
            )
            out.states[rec.device_id] = state
            for alarm in alarms:
                out.events.append(alarm_event(feed, alarm, location, ref, received_at))
        out.ok += 1
    return out


def alarm_event(
    feed: Feed, alarm: AlarmEvent, location: Location, ref: RawRef, received_at: datetime
) -> CanonicalEvent:
    attributes: dict[str, Any] = {"rule": alarm.rule}
    if alarm.metric is not None:
        attributes[alarm.metric] = alarm.value
    return CanonicalEvent(
        event_id=alarm.event_id,
        source_kind=feed.definition.source_kind,
        feed=feed.name,
        kind=alarm.kind,
        category=alarm.category,
        severity=alarm.severity,
        observed_at=alarm.observed_at,
        received_at=received_at,
        location=location,
        raw_ref=ref,
        attributes=attributes,
    )
