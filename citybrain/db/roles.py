"""Database roles: the platform's writer (owner of the schema) and `grafana_reader`.

`grafana_reader` may SELECT only the relations the dashboards read (`DASHBOARD_RELATIONS`,
kept equal to the dashboards' SQL by tests/grafana/test_dashboard_schema.py) and the map
layers and aggregates made for them (`MAP_AND_AGGREGATES`), is read-only by default, and
can write nothing. Re-applied on every `db migrate`: every other relation
is revoked, so a new table (personal data, tokens, free text) is never readable by
accident.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from citybrain.settings import Settings

READER = "grafana_reader"
#: What the dashboards read, and so all the reader may read.
DASHBOARD_RELATIONS: frozenset[str] = frozenset(
    {
        "delivery_attempts",
        "departments",
        "devices",
        "dispatch_history",
        "dispatch_outbox",
        "dispatches",
        "events",
        "incidents",
        "pipeline_counts",
        "readings",
    }
)
#: Read by the reader although no dashboard names them yet: the city's boundaries (map
#: layers) and the dashboard aggregates (long ranges). No personal data in any of them.
MAP_AND_AGGREGATES: frozenset[str] = frozenset(
    {"boundaries", "boundary_sets", "incidents_hourly", "readings_5m", "sla_daily"}
)
#: Everything the reader may read.
READER_RELATIONS: frozenset[str] = DASHBOARD_RELATIONS | MAP_AND_AGGREGATES
#: Tables holding personal data or secrets (callers' numbers, citizens' requests, API
#: tokens, departments' free-text requests): never granted, revoked from PUBLIC too.
PERSONAL_TABLES: frozenset[str] = frozenset(
    {
        "personal_contacts",
        "open311_requests",
        "api_tokens",
        "deadline_extensions",
        "operator_commands",
        "console_sessions",
    }
)


def relations(conn: psycopg.Connection) -> list[str]:
    """Tables, partitioned tables, views and materialised views in `public`."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND NOT c.relispartition ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def readable_relations(conn: psycopg.Connection) -> list[str]:
    """The reader's relations that exist."""
    return [name for name in relations(conn) if name in READER_RELATIONS]


def apply_roles(conn: psycopg.Connection, settings: Settings) -> None:
    """Create or update `grafana_reader` and its grants (needs CREATEROLE or superuser)."""
    reader = sql.Identifier(READER)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(reader))
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            reader, sql.Literal(settings.grafana_reader_password.get_secret_value())
        )
    )
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(reader))
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), reader)
    )
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader))
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(reader))
    for name in readable_relations(conn):
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(name), reader))
    for name in PERSONAL_TABLES:
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() != (None,):
            conn.execute(
                sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}").format(sql.Identifier(name), reader)
            )
