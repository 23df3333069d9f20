"""Database roles: the platform's writer (owner of the schema) and `grafana_reader`.

`grafana_reader` may SELECT every table and view except those holding personal data, is
read-only by default, and can write nothing. Re-applied on every `db migrate`, so new
tables are covered and a personal-data table is never granted by accident.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from citybrain.settings import Settings

READER = "grafana_reader"
#: Tables holding personal data (callers' phone numbers): no reader ever gets them.
PERSONAL_TABLES: frozenset[str] = frozenset({"personal_contacts"})


def readable_relations(conn: psycopg.Connection) -> list[str]:
    """Tables, partitioned tables, views and materialised views in `public`."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND NOT c.relispartition ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows if r[0] not in PERSONAL_TABLES]


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
