"""The `departments` table from the departments file (code, name, channels, supervisor), so
that the dashboards and the console show names, not codes. Written at every `db migrate`:
an upsert by code (a department dropped from the file keeps its row: its tasks name it)."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from citybrain.dispatch.routing import dispatch_files, load_routing
from citybrain.settings import Settings


def store_departments(conn: psycopg.Connection, settings: Settings) -> int:
    """Upsert every department of the configured file; how many."""
    routing = load_routing(*dispatch_files(settings))
    rows = [
        (
            code,
            d.name,
            Jsonb([c.model_dump(exclude_none=True) for c in d.channels]),  # no secret: names
            d.supervisor.name,
        )
        for code, d in routing.by_code.items()
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO departments (code, name, channels, supervisor) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
            " channels = EXCLUDED.channels, supervisor = EXCLUDED.supervisor,"
            " updated_at = now()",
            rows,
        )
    return len(rows)
