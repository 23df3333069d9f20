"""Incidents as JSON (for the correlate agent's table) and as database rows (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from citybrain.correlation.core import Correlator, Incident, event_key, text_key


def to_json(inc: Incident) -> dict[str, Any]:
    return {
        "incident_id": inc.incident_id,
        "family": inc.family,
        "category": inc.category,
        "priority": inc.priority,
        "first_seen": inc.first_seen.isoformat(),
        "last_seen": inc.last_seen.isoformat(),
        "lon": inc.lon,
        "lat": inc.lat,
        "district": inc.district,
        "location_status": inc.location_status,
        "status": inc.status,
        "reports": inc.reports,
        "event_keys": inc.event_keys.tolist(),
        "device_keys": list(inc.device_keys),
        "text_keys": [list(t) for t in inc.texts],
        "points": inc.points,
    }


def from_json(d: dict[str, Any]) -> Incident:
    """An incident as `to_json` stored it (states written before devices and texts were
    kept as hashes carry `devices` and `texts` in clear: they are hashed here)."""
    devices = d.get("device_keys")
    if devices is None:
        devices = [event_key(device) for device in d.get("devices", [])]
    texts = d.get("text_keys")
    if texts is None:
        texts = [sorted({text_key(g) for g in t}) for t in d.get("texts", [])]
    return Incident.new(
        incident_id=d["incident_id"],
        family=d["family"],
        category=d["category"],
        priority=int(d["priority"]),
        first_seen=datetime.fromisoformat(d["first_seen"]),
        last_seen=datetime.fromisoformat(d["last_seen"]),
        lon=d["lon"],
        lat=d["lat"],
        district=d["district"],
        location_status=d["location_status"],
        status=d["status"],
        iot_reports=int(d["reports"].get("iot", 0)),
        hotline_reports=int(d["reports"].get("hotline", 0)),
        open311_reports=int(d["reports"].get("open311", 0)),
        event_keys=d["event_keys"],
        device_keys=devices,
        texts=texts,
        points=_flat(d["points"]),
    )


def _flat(points: list[Any]) -> list[float]:
    """Points as stored: flat [lon, lat, ...] (or the older [[lon, lat], ...])."""
    return [float(v) for p in points for v in (p if isinstance(p, list) else [p])]


def restore(correlator: Correlator, cells: dict[str, list[dict[str, Any]]]) -> int:
    """Load incidents (and the event ids they hold) into an empty correlator."""
    count = 0
    for cell, incidents in cells.items():
        for d in incidents:
            inc = from_json(d)
            correlator.hold(inc, cell)
            count += 1
    return count


def incident_row(
    inc: Incident, now: datetime, grid_cell: str | None = None, jurisdiction: str | None = None
) -> tuple[Any, ...]:
    """A row of `schemas.tables.INCIDENTS`."""
    return (
        inc.incident_id,
        inc.category,
        inc.priority,
        inc.status,
        inc.first_seen,
        inc.last_seen,
        inc.reports,
        sum(inc.reports.values()),
        inc.lon,
        inc.lat,
        inc.location_status,
        inc.district,
        grid_cell,
        jurisdiction,
        now,
        inc.report_count,
    )


def incident_message(inc: Incident, change: str, event_ids: list[str]) -> dict[str, Any]:
    """The value sent to incidents.v1 for a change; `event_ids`: the reports it took in."""
    return {
        "schema": "citybrain.incident/1",
        "change": change,
        "incident_id": inc.incident_id,
        "category": inc.category,
        "family": inc.family,
        "priority": inc.priority,
        "status": inc.status,
        "first_seen": inc.first_seen.isoformat(),
        "last_seen": inc.last_seen.isoformat(),
        "lon": inc.lon,
        "lat": inc.lat,
        "district": inc.district,
        "location_status": inc.location_status,
        "reports": inc.reports,
        "reports_total": sum(inc.reports.values()),
        "event_ids": event_ids,
    }


def placed_message(row: dict[str, Any]) -> dict[str, Any]:
    """The incidents.v1 message of an incident placed while the correlator no longer
    held it (from its row)."""
    return {
        "schema": "citybrain.incident/1",
        "change": "placed",
        "incident_id": row["incident_id"],
        "category": row["category"],
        "priority": row["priority"],
        "status": row["status"],
        "first_seen": row["first_seen"].isoformat(),
        "last_seen": row["last_seen"].isoformat(),
        "lon": row["lon"],
        "lat": row["lat"],
        "district": row["district"],
        "location_status": row["location_status"],
        "reports": dict(row["report_counts"] or {}),
        "reports_total": row["reports_total"],
        "event_ids": [],
    }
