"""The write contracts of the time-series and state tables: columns, types, keys.

The batch writer (`streams/sinks/timescale.py`) uses these to COPY into a staging table
and upsert by key; they mirror `schemas/migrations` (a test checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    """A table as the writer sees it."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type) in COPY order
    key: tuple[str, ...]  # the conflict target (a unique index)
    update: tuple[str, ...] = ()  # columns refreshed on conflict; () = keep the first

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(pg_type for _, pg_type in self.columns)


EVENTS = TableSpec(
    "events",
    (
        ("event_id", "text"),
        ("observed_at", "timestamptz"),
        ("received_at", "timestamptz"),
        ("source_kind", "text"),
        ("feed", "text"),
        ("category", "text"),
        ("severity", "int2"),
        ("lon", "float8"),
        ("lat", "float8"),
        ("crs", "text"),
        ("location_status", "text"),
        ("district", "text"),
        ("street", "text"),
        ("community", "text"),
        ("grid_cell", "text"),
        ("jurisdiction", "text"),
        ("device_id", "text"),
        ("address", "text"),
        ("body", "text"),
        ("attributes", "jsonb"),
        ("raw_ref", "jsonb"),
    ),
    key=("event_id", "observed_at"),
)

READINGS = TableSpec(
    "readings",
    (
        ("device_id", "text"),
        ("metric", "text"),
        ("ts", "timestamptz"),
        ("value", "float8"),
        ("unit", "text"),
        ("feed", "text"),
    ),
    key=("device_id", "metric", "ts"),
)

INCIDENT_HISTORY = TableSpec(
    "incident_history",
    (
        ("incident_id", "text"),
        ("at", "timestamptz"),
        ("change", "text"),
        ("status", "text"),
        ("category", "text"),
        ("district", "text"),
        ("priority", "int2"),
        ("reports_total", "int4"),
    ),
    key=("incident_id", "at", "change"),
)

DISPATCH_HISTORY = TableSpec(
    "dispatch_history",
    (
        ("dispatch_id", "text"),
        ("at", "timestamptz"),
        ("status", "text"),
        ("department", "text"),
        ("incident_id", "text"),
        ("actor", "text"),
        ("note", "text"),
        ("ack_deadline", "timestamptz"),
        ("resolve_deadline", "timestamptz"),
        ("on_time", "bool"),
    ),
    key=("dispatch_id", "at", "status"),
)

MERGE_SUGGESTIONS = TableSpec(
    "incident_merge_suggestions",
    (
        ("incident_id", "text"),
        ("candidate_id", "text"),
        ("score", "float4"),
        ("reasons", "jsonb"),
        ("suggested_at", "timestamptz"),
    ),
    key=("incident_id", "candidate_id"),
)

INCIDENTS = TableSpec(
    "incidents",
    (
        ("incident_id", "text"),
        ("category", "text"),
        ("priority", "int2"),
        ("status", "text"),
        ("first_seen", "timestamptz"),
        ("last_seen", "timestamptz"),
        ("report_counts", "jsonb"),
        ("reports_total", "int4"),
        ("lon", "float8"),
        ("lat", "float8"),
        ("location_status", "text"),
        ("district", "text"),
        ("grid_cell", "text"),
        ("jurisdiction", "text"),
        ("updated_at", "timestamptz"),
        ("version", "int8"),
    ),
    key=("incident_id",),
    # no "status": once an incident is dispatched its status is the dispatch stage's
    update=(
        "category",
        "priority",
        "first_seen",
        "last_seen",
        "report_counts",
        "reports_total",
        "lon",
        "lat",
        "location_status",
        "district",
        "grid_cell",
        "jurisdiction",
        "updated_at",
        "version",
    ),
)

INCIDENT_REPORTS = TableSpec(
    "incident_reports",
    (
        ("event_id", "text"),
        ("incident_id", "text"),
        ("source_kind", "text"),
        ("observed_at", "timestamptz"),
    ),
    key=("event_id",),
)

PERSONAL_CONTACTS = TableSpec(
    "personal_contacts",
    (("event_id", "text"), ("caller_phone", "text"), ("caller_name", "text")),
    key=("event_id",),
)

PIPELINE_PINGS = TableSpec(
    "pipeline_pings",
    (("ping_id", "text"), ("sent_at", "timestamptz"), ("note", "text")),
    key=("ping_id",),
)

ALL_SPECS: tuple[TableSpec, ...] = (
    EVENTS,
    READINGS,
    INCIDENT_HISTORY,
    DISPATCH_HISTORY,
    PERSONAL_CONTACTS,
    PIPELINE_PINGS,
    INCIDENTS,
    INCIDENT_REPORTS,
)
