"""`grafana_reader` on the real PostgreSQL: reads dashboards' tables, writes nothing,
never sees callers' phone numbers."""

from __future__ import annotations

import psycopg
import pytest

from citybrain.settings import Settings

pytestmark = pytest.mark.integration


def reader_conninfo(settings: Settings) -> str:
    return settings.model_copy(
        update={"db_user": "grafana_reader", "db_password": settings.grafana_reader_password}
    ).conninfo()


@pytest.mark.parametrize(
    "table", ["events", "readings", "incidents", "dispatches", "incidents_hourly", "sla_daily"]
)
def test_reader_can_read_dashboard_tables(stack: Settings, table: str) -> None:
    with psycopg.connect(reader_conninfo(stack)) as conn:
        conn.execute(f"SELECT * FROM {table} LIMIT 1")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO incidents (incident_id, category, priority, status, first_seen, last_seen)"
        " VALUES ('x', 'fire', 1, 'open', now(), now())",
        "UPDATE dispatches SET status = 'resolved'",
        "DELETE FROM events",
        "CREATE TABLE grafana_was_here (x int)",
        "TRUNCATE readings",
    ],
)
def test_reader_cannot_write(stack: Settings, statement: str) -> None:
    with (
        psycopg.connect(reader_conninfo(stack)) as conn,
        pytest.raises(
            (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)
        ),
    ):
        conn.execute(statement)


def test_reader_cannot_read_callers_phone_numbers(stack: Settings) -> None:
    with psycopg.connect(stack.conninfo()) as conn:
        conn.execute(
            "INSERT INTO personal_contacts (event_id, caller_phone) "
            "VALUES ('t-role', '13812345678') ON CONFLICT DO NOTHING"
        )
    with psycopg.connect(reader_conninfo(stack)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT caller_phone FROM personal_contacts")
        conn.rollback()
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name LIKE '%%phone%%'"
        ).fetchall()
    assert columns == [], f"a readable relation exposes a phone column: {columns}"
