"""Plain mode's incremental aggregates on the real PostgreSQL: a refresh recomputes only the
buckets inserts touched since the last one, and always agrees with the aggregate computed
from scratch (late rows, duplicates, rows of a transaction still open)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from citybrain.db import migrate as migrations
from citybrain.db.maintain import maintain, refresh_aggregate
from citybrain.db.migrate import load_migrations, migrate
from citybrain.settings import Settings

pytestmark = pytest.mark.integration

#: readings_5m as its definition says (the continuous aggregate's query in TimescaleDB mode)
FROM_SCRATCH = (
    "SELECT date_bin(INTERVAL '5 minutes', ts, TIMESTAMPTZ '2000-01-01'), device_id, metric,"
    " avg(value), min(value), max(value), count(*) FROM readings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
STORED = (
    "SELECT bucket, device_id, metric, avg_value, min_value, max_value, samples"
    " FROM readings_5m ORDER BY 1, 2, 3"
)
_HOUR_AGO = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
#: the start of a 5-minute bucket, so the first bucket holds a reading of each of the 3 devices
#: whatever the clock says when the suite runs
T0 = _HOUR_AGO - timedelta(minutes=_HOUR_AGO.minute % 5)


@pytest.fixture
def conn(scratch: Settings) -> Iterator[psycopg.Connection[Any]]:
    migrate(scratch)
    with psycopg.connect(scratch.conninfo(), autocommit=True) as c:
        yield c


def _copy(conn: psycopg.Connection[Any], rows: list[tuple[str, datetime, float]]) -> None:
    """COPY readings, as the batch writer does."""
    with (
        conn.transaction(),
        conn.cursor().copy(
            "COPY readings (device_id, metric, ts, value, unit, feed) FROM STDIN"
        ) as copy,
    ):
        for device, ts, value in rows:
            copy.write_row((device, "level_m", ts, value, "m", "water-level"))


def _readings(start: datetime, n: int, step_s: float = 7.0) -> list[tuple[str, datetime, float]]:
    return [(f"d{i % 3}", start + timedelta(seconds=i * step_s), float(i % 11)) for i in range(n)]


def test_a_refresh_agrees_with_the_aggregate_from_scratch(conn: psycopg.Connection[Any]) -> None:
    _copy(conn, _readings(T0, 200))
    assert refresh_aggregate(conn, "readings_5m", "5 minutes") == 1
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()
    # more rows into a bucket already stored, and late rows three days back
    _copy(conn, _readings(T0 + timedelta(seconds=3), 20))
    _copy(conn, _readings(T0 - timedelta(days=3), 30))
    assert refresh_aggregate(conn, "readings_5m", "5 minutes") == 2  # two separate ranges
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()
    assert conn.execute("SELECT count(*) FROM aggregate_invalidations").fetchone() == (0,)


def test_nothing_written_nothing_recomputed(conn: psycopg.Connection[Any]) -> None:
    _copy(conn, _readings(T0, 50))
    refresh_aggregate(conn, "readings_5m", "5 minutes")
    assert refresh_aggregate(conn, "readings_5m", "5 minutes") == 0


def test_only_the_touched_buckets_are_recomputed(conn: psycopg.Connection[Any]) -> None:
    _copy(conn, _readings(T0, 200))
    refresh_aggregate(conn, "readings_5m", "5 minutes")
    # a stored bucket no insert touches is left alone, even if it is wrong
    conn.execute(
        "UPDATE readings_5m SET samples = -1 WHERE bucket = (SELECT min(bucket) FROM readings_5m)"
    )
    _copy(conn, [("d0", T0 + timedelta(minutes=30), 1.0)])
    refresh_aggregate(conn, "readings_5m", "5 minutes")
    assert conn.execute("SELECT count(*) FROM readings_5m WHERE samples = -1").fetchone() == (3,)


def test_a_duplicate_insert_counts_once(conn: psycopg.Connection[Any]) -> None:
    rows = _readings(T0, 40)
    _copy(conn, rows)
    for device, ts, value in rows[:10]:  # a redelivered batch: the writer's upsert path
        conn.execute(
            "INSERT INTO readings VALUES (%s, 'level_m', %s, %s, 'm', 'water-level')"
            " ON CONFLICT DO NOTHING",
            (device, ts, value),
        )
    refresh_aggregate(conn, "readings_5m", "5 minutes")
    stored = conn.execute("SELECT sum(samples) FROM readings_5m").fetchone()
    assert stored is not None and int(stored[0]) == 40


def test_rows_of_a_transaction_still_open_come_with_the_next_refresh(
    conn: psycopg.Connection[Any], scratch: Settings
) -> None:
    with psycopg.connect(scratch.conninfo()) as writer:
        with writer.cursor().copy(
            "COPY readings (device_id, metric, ts, value, unit, feed) FROM STDIN"
        ) as copy:
            copy.write_row(("late", "level_m", T0, 2.5, "m", "water-level"))
        refresh_aggregate(conn, "readings_5m", "5 minutes")  # the writer has not committed
        assert conn.execute("SELECT count(*) FROM readings_5m").fetchone() == (0,)
        writer.commit()
    refresh_aggregate(conn, "readings_5m", "5 minutes")
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()


def test_a_maintenance_pass_refreshes_every_aggregate(
    conn: psycopg.Connection[Any], scratch: Settings
) -> None:
    now = datetime.now(UTC)
    history = "INSERT INTO incident_history VALUES (%s, %s, %s, 'open', 'fire', '310101', 1, 1)"
    conn.execute(history, ("i1", now, "opened"))
    conn.execute(history, ("i1", now, "merged"))  # not an opening: nothing to recompute
    conn.execute(history, ("i2", now - timedelta(hours=5), "opened"))
    conn.execute(
        "INSERT INTO dispatch_history (dispatch_id, at, status, department, incident_id,"
        " on_time) VALUES ('d1', %s, 'resolved', 'fire', 'i1', true),"
        " ('d2', %s, 'acknowledged', 'fire', 'i2', false)",
        (now, now),
    )
    _copy(conn, _readings(T0, 10))
    report = maintain(conn, "plain", scratch)
    assert report.refreshed == ["incidents_hourly", "readings_5m", "sla_daily"]
    assert report.ranges_recomputed == 4  # incidents: two hours apart; readings; sla
    assert conn.execute("SELECT sum(incidents) FROM incidents_hourly").fetchone() == (2,)
    assert conn.execute(
        "SELECT acknowledged, acknowledged_on_time, resolved, resolved_on_time FROM sla_daily"
    ).fetchall() == [(1, 0, 1, 1)]


def test_rows_stored_before_the_aggregate_tables_are_aggregated_by_the_migration(
    scratch: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = load_migrations()
    monkeypatch.setattr(migrations, "load_migrations", lambda: [m for m in every if m.version < 7])
    migrate(scratch)  # a database of the materialised-view days
    with psycopg.connect(scratch.conninfo(), autocommit=True) as c:
        assert c.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'readings_5m'"
        ).fetchone() == ("m",)
        _copy(c, _readings(T0, 30))
    monkeypatch.setattr(migrations, "load_migrations", lambda: every)
    migrate(scratch)  # 0007, then a maintenance pass
    with psycopg.connect(scratch.conninfo(), autocommit=True) as c:
        assert c.execute(STORED).fetchall() == c.execute(FROM_SCRATCH).fetchall() != []


def test_a_long_range_is_refreshed_a_piece_at_a_time(conn: psycopg.Connection[Any]) -> None:
    """30 buckets at most 12 a transaction: three pieces, a pause before the second and
    the third, and the same aggregate as from scratch."""
    _copy(conn, _readings(T0, 300, step_s=30.0))  # 150 minutes: 30 buckets
    paused: list[int] = []
    pieces = refresh_aggregate(
        conn, "readings_5m", "5 minutes", pause=lambda: paused.append(1), max_buckets=12
    )
    assert (pieces, len(paused)) == (3, 2)
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()
    assert conn.execute("SELECT count(*) FROM aggregate_invalidations").fetchone() == (0,)


def test_a_pass_stopped_between_pieces_loses_nothing(conn: psycopg.Connection[Any]) -> None:
    _copy(conn, _readings(T0, 300, step_s=30.0))

    def stop() -> None:
        raise KeyboardInterrupt  # the worker stops mid-pass

    with pytest.raises(KeyboardInterrupt):
        refresh_aggregate(conn, "readings_5m", "5 minutes", pause=stop, max_buckets=12)
    assert conn.execute(STORED).fetchall() != conn.execute(FROM_SCRATCH).fetchall()
    assert refresh_aggregate(conn, "readings_5m", "5 minutes", max_buckets=12) == 2
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()


def test_a_maintenance_pass_pauses_before_each_step(
    conn: psycopg.Connection[Any], scratch: Settings
) -> None:
    steps: list[int] = []
    maintain(conn, "plain", scratch, pause=lambda: steps.append(1))
    # each time table's partitions and each aggregate
    assert len(steps) >= 3 + 3


def test_the_open_bucket_of_telemetry_waits_until_it_has_closed(
    conn: psycopg.Connection[Any], scratch: Settings
) -> None:
    """readings_5m materialises closed buckets only (as its TimescaleDB policy's
    end_offset): a pass recomputes the closed ones and leaves the open one logged; once it
    has closed, the next pass takes it, and the result agrees with the aggregate from
    scratch."""
    now = datetime.now(UTC)
    _copy(conn, _readings(T0, 20))  # closed an hour ago
    _copy(conn, [("d0", now, 1.0), ("d1", now - timedelta(seconds=1), 2.0)])  # open
    maintain(conn, "plain", scratch)
    buckets = {b for (b,) in conn.execute("SELECT DISTINCT bucket FROM readings_5m")}
    assert buckets and max(buckets) < now - timedelta(minutes=5)
    waiting = conn.execute(
        "SELECT count(*) FROM aggregate_invalidations WHERE aggregate = 'readings_5m'"
    ).fetchone()
    assert waiting == (1,)
    # ten minutes on (the database's clock cannot move: the bound is moved instead)
    assert refresh_aggregate(conn, "readings_5m", "5 minutes", until_ago="-10 minutes") == 1
    assert conn.execute(STORED).fetchall() == conn.execute(FROM_SCRATCH).fetchall()
