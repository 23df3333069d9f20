"""The maintenance stage's store: one housekeeping pass under an advisory lock."""

from __future__ import annotations

from collections.abc import Callable

from citybrain.db.connect import connect
from citybrain.db.maintain import maintain
from citybrain.db.migrate import recorded_mode
from citybrain.db.privacy import expire_contacts
from citybrain.settings import Settings

LOCK_ID = 0x4D41494E  # "MAIN"


def run_maintenance(settings: Settings, pause: Callable[[], None] | None = None) -> str:
    """One maintenance pass, `pause` before each step; returns what happened (for the
    log)."""
    with connect(settings, autocommit=True, connect_timeout=5) as conn:
        mode = recorded_mode(conn)
        if mode is None:
            return "skipped (not migrated)"
        if mode != "plain":  # TimescaleDB runs its own jobs; the personal data's retention
            return f"{mode} mode: {expire_contacts(conn, settings)} expired contacts erased"
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,)).fetchone()
        if not got or not got[0]:
            return "skipped (another worker holds the lock)"
        try:
            report = maintain(conn, mode, settings, pause=pause)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return (
        f"partitions +{report.partitions_created} -{report.partitions_dropped}, "
        f"refreshed {len(report.refreshed)} aggregates ({report.ranges_recomputed} bucket "
        f"ranges), {report.contacts_expired} expired contacts erased"
    )
