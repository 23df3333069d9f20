"""One batch of one feed's raw records -> canonical events, readings, contacts, rejects.

Pure: the normalize agent hands in the records and the alarm state of their devices and
gets back everything to write and emit; `citybrain feeds test` runs the same code on
sample files. Order within a device is kept (rules see readings in time order).
`prepare_batch` is the stage's call: the same, with one failing record isolated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from citybrain.feeds.alarms import AlarmEvent, evaluate, sweep
from citybrain.feeds.definition import Feed
from citybrain.feeds.normalize import ParsedRecord, Reject, masked_phone, masked_text, parse
from citybrain.geo.devices import DeviceRegistry
from citybrain.geo.geotag import Geotagger, LocationRequest, Placement
from citybrain.logs import get_logger
from citybrain.schemas.events import CanonicalEvent, Location, RawRef

log = get_logger(__name__)


class RawRecord(NamedTuple):
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
        address=masked_text(rec.address),  # placed from the clear text, stored masked (PIPL)
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

    # A record placed by its device needs a device the registry knows; telemetry needs
    # nothing more, so only the records that make events (reports, alarms) are geo-tagged.
    registry = feed.devices
    alive: list[tuple[int, ParsedRecord]] = []
    for i, rec in parsed:
        if (
            registry is not None
            and rec.lon is None
            and rec.device_id is not None
            and rec.address is None
            and rec.device_id not in registry.devices
        ):
            out.rejects.append(
                (i, Reject("unknown_device", f"device {rec.device_id!r} is not in the registry"))
            )
            continue
        alive.append((i, rec))
    definition = feed.definition
    if definition.alarms:  # rules see each device's readings in time order (sort is stable)
        alive.sort(key=lambda t: (t[1].device_id or "", t[1].observed_at))
    # (position in alive, the alarm or None for the record's own report), in output order
    emitted: list[tuple[int, AlarmEvent | None]] = []
    for k, (_, rec) in enumerate(alive):
        feed_name, device_id, observed_at = rec.feed, rec.device_id, rec.observed_at
        for metric, value, unit in rec.readings:
            out.readings.append((device_id, metric, observed_at, value, unit, feed_name))
        if rec.event_id is not None:
            emitted.append((k, None))
            if rec.caller_phone:
                out.contacts.append((rec.event_id, rec.caller_phone, None))
        if definition.alarms and device_id is not None:
            before = out.states.get(device_id)
            if before is None and device_id in states:
                before = orjson.loads(orjson.dumps(states[device_id]))  # our own copy
            state, alarms = evaluate(definition, before, device_id, observed_at, rec.readings)
            out.states[device_id] = state
            emitted += [(k, alarm) for alarm in alarms]
        out.ok += 1

    placed = sorted({k for k, _ in emitted})
    places = geotagger.place([_request(alive[k][1], registry) for k in placed], registry)
    locations = {k: _location(alive[k][1], place) for k, place in zip(placed, places, strict=True)}
    for k, alarm in emitted:
        i, rec = alive[k]
        ref = _ref(records[i])
        if alarm is not None:
            out.events.append(alarm_event(feed, alarm, locations[k], ref, received_at))
            continue
        assert rec.event_id is not None
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
                location=locations[k],
                raw_ref=ref,
                text=masked_text(rec.text),
                caller_phone_masked=masked_phone(rec.caller_phone),
                attributes=rec.attributes,
            )
        )
    return out


def _request(rec: ParsedRecord, registry: DeviceRegistry | None) -> LocationRequest:
    use_device = rec.lon is None and rec.device_id is not None and registry is not None
    return LocationRequest(
        lon=rec.lon,
        lat=rec.lat,
        crs=rec.crs,
        device_id=rec.device_id if use_device else None,
        address=rec.address,
    )


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


# --- the stage's batch, with isolation; the silence sweep ----------------------------------------
Failures = list[tuple[int, Exception]]  # (index in batch, the error normalize_batch raised)


def prepare_batch(
    feed: Feed,
    records: Sequence[RawRecord],
    geotagger: Geotagger,
    states: Mapping[str, dict[str, Any]],
    now: datetime,
) -> tuple[BatchOutput, Failures]:
    """One batch of one feed through the pipeline; the records that fail on their own."""
    try:
        return normalize_batch(feed, records, geotagger, states, now), []
    except Exception:
        log.exception("batch failed; retrying record by record", feed=feed.name)
    out, failures = BatchOutput(), []
    for index, record in enumerate(records):
        try:
            one = normalize_batch(feed, [record], geotagger, states, now)
        except Exception as exc:
            failures.append((index, exc))
            continue
        out.events += one.events
        out.readings += one.readings
        out.contacts += one.contacts
        out.rejects += [(index, r) for _, r in one.rejects]
        out.states.update(one.states)
        out.ok += one.ok
    return out, failures


def silent_devices(
    feed: Feed, states: Iterable[tuple[str, dict[str, Any] | None]], now: datetime
) -> list[tuple[str, dict[str, Any], AlarmEvent]]:
    """The silence rule over the devices' alarm states: (device, new state, alarm)."""
    found: list[tuple[str, dict[str, Any], AlarmEvent]] = []
    for device_id, state in states:
        if not state:
            continue
        new_state, events = sweep(feed.definition, dict(state), device_id, now)
        found += [(device_id, new_state, e) for e in events]
    return found
