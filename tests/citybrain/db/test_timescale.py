"""The TimescaleDB path on a real TimescaleDB 2.23 (the WebAssembly build): hypertables,
compression, policies, continuous aggregates and their refresh, roles, the writer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from citybrain.db.connect import connect as db_connect
from citybrain.db.connect import connection_kwargs
from citybrain.db.migrate import migrate
from citybrain.db.policies import time_tables
from citybrain.db.status import read_status
from citybrain.schemas.tables import EVENTS, READINGS
from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.streams.sinks.timescale import BatchWriter
from tests.grafana.test_panel_sql import panel_queries, run_panel

pytestmark = [pytest.mark.integration, pytest.mark.timescale]
TIME_TABLES = {"events", "readings", "incident_history", "dispatch_history", "delivery_attempts"}


def connect(settings: Settings) -> psycopg.Connection:
    return db_connect(settings, autocommit=True)


def test_time_tables_are_hypertables_with_compression(timescale: Settings) -> None:
    with connect(timescale) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            ).fetchall()
        }
        segment = conn.execute(
            "SELECT attname FROM timescaledb_information.compression_settings "
            "WHERE hypertable_name = 'readings' AND segmentby_column_index IS NOT NULL "
            "ORDER BY segmentby_column_index"
        ).fetchall()
    assert names >= TIME_TABLES
    assert [r[0] for r in segment] == ["device_id", "metric"]


def test_policies_are_installed_once_even_after_migrating_again(timescale: Settings) -> None:
    migrate(timescale)  # a second run re-installs, never duplicates
    with connect(timescale) as conn:
        jobs = conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
            "WHERE proc_name IN ('policy_retention', 'policy_compression', "
            "'policy_refresh_continuous_aggregate') ORDER BY 1, 2"
        ).fetchall()
    by_kind: dict[str, int] = {}
    for proc, _ in jobs:
        by_kind[proc] = by_kind.get(proc, 0) + 1
    assert by_kind == {
        "policy_retention": len(time_tables(timescale)),  # one per time-partitioned table
        "policy_compression": 2,
        "policy_refresh_continuous_aggregate": 3,
    }


def test_continuous_aggregates_refresh_and_answer(timescale: Settings) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    with connect(timescale) as conn:
        conn.execute(
            "INSERT INTO incident_history VALUES "
            "('ts-i1', %(t)s, 'opened', 'open', 'flooding', '310104', 2, 1),"
            "('ts-i2', %(t)s + interval '10 minutes', 'opened', 'open', 'flooding', "
            "'310104', 1, 4),"
            "('ts-i2', %(t)s + interval '20 minutes', 'status', 'dispatched', 'flooding', "
            "'310104', 1, 4)",
            {"t": hour},
        )
        conn.execute("CALL refresh_continuous_aggregate('incidents_hourly', NULL, NULL)")
        row = conn.execute(
            "SELECT incidents FROM incidents_hourly WHERE bucket = %s AND district = '310104' "
            "AND category = 'flooding'",
            (hour,),
        ).fetchone()
        assert row == (2,)
        # the dashboards' query shape: time_bucket over the aggregate, filtered by variables
        rows = conn.execute(
            "SELECT time_bucket('1 day', bucket) AS day, sum(incidents) FROM incidents_hourly "
            "WHERE district = ANY(%s) GROUP BY 1",
            (["310104"],),
        ).fetchall()
        assert sum(r[1] for r in rows) == 2


def test_the_writer_is_idempotent_and_readings_survive_compression(timescale: Settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [
        ("ts-dev-1", "level_m", now - timedelta(days=3, minutes=i), 0.1 * i, "m", "water")
        for i in range(50)
    ]
    events = [
        (
            f"ts-e{i}",
            now - timedelta(minutes=i),
            now,
            "iot",
            "water",
            "water_level",
            2,
            121.5,
            31.2,
            "WGS-84",
            "located",
            "310104",
            None,
            None,
            "g7",
            "water",
            "ts-dev-1",
            None,
            None,
            {"level_m": 0.9},
            None,
        )
        for i in range(20)
    ]

    async def write() -> list[int]:
        async with AsyncConnectionPool(
            timescale.conninfo(),
            min_size=1,
            max_size=1,
            open=False,
            kwargs=connection_kwargs(timescale),
        ) as pool:
            writer = BatchWriter(pool, method="insert")
            out = []
            for _ in range(2):
                out.append((await writer.write(READINGS, readings)).written)
                out.append((await writer.write(EVENTS, events)).written)
            return out

    assert asyncio.run(write()) == [50, 20, 0, 0]
    with connect(timescale) as conn:
        compressed = conn.execute(
            "SELECT count(compress_chunk(c, if_not_compressed => true)) "
            "FROM show_chunks('readings', older_than => now() - interval '2 days') c"
        ).fetchone()
        assert compressed is not None and compressed[0] >= 1
        total = conn.execute(
            "SELECT count(*), round(sum(value)::numeric, 3) FROM readings "
            "WHERE device_id = 'ts-dev-1'"
        ).fetchone()
        assert total == (50, round(sum(0.1 * i for i in range(50)), 3))
        conn.execute("CALL refresh_continuous_aggregate('readings_5m', NULL, NULL)")
        agg = conn.execute(
            "SELECT sum(samples) FROM readings_5m WHERE device_id = 'ts-dev-1'"
        ).fetchone()
        assert agg == (50,)


def test_grafana_reader_reads_but_cannot_write_or_see_phones(timescale: Settings) -> None:
    with connect(timescale) as conn:
        conn.execute(
            "INSERT INTO personal_contacts (event_id, caller_phone) "
            "VALUES ('ts-p1', '13912345678') ON CONFLICT DO NOTHING"
        )
        conn.execute("SET ROLE grafana_reader")
        try:
            conn.execute("SELECT count(*) FROM events").fetchone()
            conn.execute("SELECT * FROM incidents_hourly LIMIT 1").fetchall()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT caller_phone FROM personal_contacts")
            with pytest.raises(
                (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)
            ):
                conn.execute("DELETE FROM events")
        finally:
            conn.execute("RESET ROLE")


def test_status_reports_timescale_mode_and_chunks(timescale: Settings) -> None:
    with connect(timescale) as conn:
        st = read_status(conn, timescale)
    assert st.mode == "timescale"
    assert st.timescale_version is not None and st.timescale_version.startswith("2.")
    chunks = {t.name: t.chunks for t in st.tables}
    assert set(chunks) >= TIME_TABLES


@pytest.mark.parametrize(("dashboard", "panel", "sql"), panel_queries())
def test_every_panel_runs_on_timescaledb_as_a_timescaledb_datasource_expands_it(
    timescale: Settings, dashboard: str, panel: str, sql: str
) -> None:
    """TimescaleDB mode's Grafana datasource has the timescaledb flag: $__timeGroup becomes
    time_bucket, which must run on TimescaleDB (plain mode's expansion is run on plain
    PostgreSQL by tests/grafana/test_panel_sql.py)."""
    doc = json.loads((PROJECT_ROOT / "grafana" / "dashboards" / f"{dashboard}.json").read_text())
    with connect(timescale) as conn:
        conn.autocommit = True
        run_panel(conn, doc, sql, timescaledb=True)  # raises if TimescaleDB refuses it
