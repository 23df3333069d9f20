"""Migrations on the real PostgreSQL: ordered, recorded, safe to run twice; plain mode."""

from __future__ import annotations

import psycopg
import pytest

from citybrain.db.migrate import MigrationError, load_migrations, migrate
from citybrain.db.status import read_status
from citybrain.settings import Settings

pytestmark = pytest.mark.integration


def test_migrate_applies_everything_once_and_records_it(scratch: Settings) -> None:
    first = migrate(scratch)
    assert [m.version for m in first.applied] == [m.version for m in load_migrations()]
    assert first.mode == "plain"  # Debian's PostgreSQL has no TimescaleDB
    assert migrate(scratch).applied == []
    with psycopg.connect(scratch.conninfo()) as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()
    assert [(v, c) for v, c in rows] == [(m.version, m.checksum) for m in load_migrations()]


def test_an_edited_migration_is_refused(scratch: Settings) -> None:
    migrate(scratch)
    with psycopg.connect(scratch.conninfo()) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(scratch)


def test_the_recorded_mode_cannot_be_switched(scratch: Settings) -> None:
    migrate(scratch)
    with pytest.raises(MigrationError, match="created in plain mode"):
        migrate(scratch.model_copy(update={"db_mode": "timescale"}))


def test_plain_mode_partitions_views_and_status(scratch: Settings) -> None:
    migrate(scratch)
    with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        ).fetchone()
        assert parts is not None and parts[0] >= 9  # default + 2 days back + 7 ahead
        conn.execute(
            "INSERT INTO incident_history VALUES "
            "('i1', now(), 'opened', 'open', 'fire', '310101', 1, 1),"
            "('i2', now(), 'opened', 'open', 'fire', '310101', 2, 3)"
        )
        conn.execute("SELECT citybrain_refresh_aggregate('incidents_hourly', '1 hour')")
        row = conn.execute(
            "SELECT incidents FROM incidents_hourly WHERE district = '310101'"
        ).fetchone()
        assert row == (2,)
        # a row far outside the prepared partitions still lands (in the default partition)
        conn.execute(
            "INSERT INTO readings VALUES ('d1', 'pm25', now() - interval '60 days', 35, "
            "'ug/m3', 'air')"
        )
        st = read_status(conn, scratch)
    assert st.mode == "plain" and st.version == max(m.version for m in load_migrations())
    by_name = {t.name: t for t in st.tables}
    assert by_name["events"].chunks >= 9
    assert by_name["personal_contacts"].chunks == 0


def test_retention_drops_old_partitions(scratch: Settings) -> None:
    migrate(scratch)
    with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
        created = conn.execute(
            "SELECT citybrain_ensure_partitions('readings', '1 day', "
            "'2020-01-01 00:00+00', '2020-01-11 00:00+00')"
        ).fetchone()
        assert created == (10,)
        dropped = conn.execute(
            "SELECT citybrain_drop_partitions_before('readings', now() - interval '90 days')"
        ).fetchone()
        assert dropped == (10,)


def test_migrate_writes_the_departments_of_the_departments_file(scratch: Settings) -> None:
    from citybrain.dispatch.routing import load_routing

    result = migrate(scratch)
    routing = load_routing()
    assert result.departments == len(routing.by_code)
    with psycopg.connect(scratch.conninfo()) as conn:
        rows = dict(conn.execute("SELECT code, name FROM departments").fetchall())
    assert rows == {code: d.name for code, d in routing.by_code.items()}
    assert rows["fire"]  # the dashboards show this name, not the code
