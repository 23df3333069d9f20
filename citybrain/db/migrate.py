"""Ordered, recorded, idempotent SQL migrations from `schemas/migrations`.

Each file `NNNN_name.sql` runs once, in its own transaction, under an advisory lock so
two migrators never race; `schema_migrations` records version, name and checksum. A file
whose checksum changed after it was applied is an error, not a silent re-run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import psycopg

from schemas import migrations_dir

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x43495459  # "CITY"


class MigrationError(RuntimeError):
    """A migration could not be applied or does not match what was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """All migration files, ordered by version; a malformed name is an error."""
    found: list[Migration] = []
    for entry in migrations_dir().iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )


def applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations already applied."""
    _ensure_table(conn)
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def migrate(conninfo: str) -> list[Migration]:
    """Apply the pending migrations; return the ones applied now (empty when up to date)."""
    done: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            have = applied(conn)
            for migration in load_migrations():
                if migration.version in have:
                    if have[migration.version][1] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} changed after "
                            "it was applied; add a new migration instead of editing it"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                done.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied version (0 when none)."""
    have = applied(conn)
    return max(have) if have else 0


def pending(conn: psycopg.Connection) -> list[Migration]:
    """Migrations not yet applied."""
    have = applied(conn)
    return [m for m in load_migrations() if m.version not in have]
