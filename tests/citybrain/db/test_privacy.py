"""Callers' contacts on the real PostgreSQL: kept only as long as the retention says, and
erased on request in every form the number was stored in, the erasure recorded."""

from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest

from citybrain.db.migrate import migrate
from citybrain.db.privacy import erase_caller, expire_contacts, number_forms, subject_hash
from citybrain.settings import Settings
from tests.conftest import VENV_BIN

pytestmark = pytest.mark.integration


def contacts(settings: Settings, rows: list[tuple[str, str, int]]) -> None:
    """(event id, number, age in days)"""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        for event_id, phone, age in rows:
            conn.execute(
                "INSERT INTO personal_contacts (event_id, caller_phone, stored_at)"
                " VALUES (%s, %s, now() - make_interval(days => %s))",
                (event_id, phone, age),
            )


def left(settings: Settings, run: str) -> set[str]:
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT event_id FROM personal_contacts WHERE event_id LIKE %s", (f"{run}%",)
        ).fetchall()
    return {r[0] for r in rows}


def test_contacts_older_than_the_retention_are_erased(scratch: Settings) -> None:
    migrate(scratch)
    run = uuid.uuid4().hex[:8]
    contacts(scratch, [(f"{run}-old", "13812345678", 200), (f"{run}-new", "13812345678", 3)])
    with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
        assert expire_contacts(conn, scratch.model_copy(update={"retention_personal_days": 0})) == 0
        assert expire_contacts(conn, scratch) == 1  # 180 days by default
    assert left(scratch, run) == {f"{run}-new"}


def test_a_callers_data_is_erased_in_every_stored_form_and_the_erasure_recorded(
    scratch: Settings,
) -> None:
    migrate(scratch)
    run = uuid.uuid4().hex[:8]
    contacts(
        scratch,
        [
            (f"{run}-a", "13812345678", 1),
            (f"{run}-b", "+86 138 1234 5678", 1),
            (f"{run}-c", "0086-138-1234-5678", 1),
            (f"{run}-other", "13912345678", 1),
        ],
    )
    with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
        assert erase_caller(conn, "138-1234-5678", "ops:wang", "request 2026-117") == 3
        audit = conn.execute(
            "SELECT operator, reason, subject_hash, rows_erased FROM privacy_erasures"
        ).fetchall()
    assert left(scratch, run) == {f"{run}-other"}
    assert audit == [("ops:wang", "request 2026-117", subject_hash("13812345678"), 3)]
    assert "13812345678" not in str(audit)


def test_the_command_erases_and_refuses_without_a_reason(scratch: Settings) -> None:
    migrate(scratch)
    run = uuid.uuid4().hex[:8]
    contacts(scratch, [(f"{run}-a", "13700001111", 1)])
    env = {"CITYBRAIN_DB_NAME": scratch.db_name}
    base = [str(VENV_BIN / "citybrain"), "privacy", "erase", "--phone", "137 0000 1111"]
    refused = subprocess.run(
        [*base, "--operator", "ops", "--reason", " "],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "reason" in refused.stderr
    done = subprocess.run(
        [*base, "--operator", "ops:li", "--reason", "citizen request"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "erased 1 contact row" in done.stdout and "13700001111" not in done.stdout
    assert left(scratch, run) == set()


@pytest.mark.parametrize(
    ("phone", "national"),
    [
        ("13812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("0086-21-62345678", "2162345678"),
    ],
)
def test_number_forms(phone: str, national: str) -> None:
    assert national in number_forms(phone) and f"86{national}" in number_forms(phone)
