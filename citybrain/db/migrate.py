"""Ordered, recorded, idempotent SQL migrations from `schemas/migrations`.

Each file `NNNN_name.sql` runs once, in its own transaction, under an advisory lock so
two migrators never race; `schema_migrations` records version, name and checksum. A file
whose checksum changed after it was applied is an error, not a silent re-run.

The storage mode (TimescaleDB or plain PostgreSQL) is chosen on the first run and recorded
in `citybrain_meta`; after the migrations, the mode's policies, the roles and (plain mode)
the partitions and views are brought up to date. Everything uses a single connection, so
it also runs on servers that accept one connection at a time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import psycopg

from citybrain.config_errors import ConfigError
from citybrain.db.connect import connection_kwargs
from citybrain.db.departments import store_departments
from citybrain.db.maintain import MaintenanceReport, maintain
from citybrain.db.modes import Mode, ModeError, choose_mode, render
from citybrain.db.policies import timescale_policy_statements
from citybrain.db.roles import apply_roles
from citybrain.schemas import migrations_dir
from citybrain.settings import Settings

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

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


@dataclass
class MigrateResult:
    """What `migrate` did."""

    mode: Mode
    applied: list[Migration] = field(default_factory=list)
    departments: int = 0  # rows of `departments` written from the departments file
    maintenance: MaintenanceReport = field(default_factory=MaintenanceReport)


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


def _ensure_tables(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS citybrain_meta (key text PRIMARY KEY, value text NOT NULL)"
    )


def applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations already applied."""
    _ensure_tables(conn)
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def timescale_available(conn: psycopg.Connection) -> bool:
    """True when the server can load the timescaledb extension."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def recorded_mode(conn: psycopg.Connection) -> Mode | None:
    """The mode this database was migrated in, if any."""
    _ensure_tables(conn)
    row = conn.execute("SELECT value FROM citybrain_meta WHERE key = 'mode'").fetchone()
    return row[0] if row else None


def resolve_mode(conn: psycopg.Connection, requested: str) -> Mode:
    """The mode to migrate in: the recorded one, which a setting may not contradict."""
    have = recorded_mode(conn)
    if have is not None:
        if requested not in ("auto", have):
            raise ModeError(
                f"the database was created in {have} mode; CITYBRAIN_DB_MODE={requested} "
                "cannot change that (dump and restore into a new database instead)"
            )
        return have
    return choose_mode(requested, timescale_available(conn))


def migrate(settings: Settings, conninfo: str | None = None) -> MigrateResult:
    """Apply pending migrations, then policies, roles and maintenance. Safe to run twice."""
    with psycopg.connect(
        conninfo or settings.conninfo(), autocommit=True, **connection_kwargs(settings)
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            return _migrate_locked(conn, settings)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def _migrate_locked(conn: psycopg.Connection, settings: Settings) -> MigrateResult:
    try:
        mode = resolve_mode(conn, settings.db_mode)
    except ModeError as exc:
        raise MigrationError(str(exc)) from exc
    result = MigrateResult(mode=mode)
    have = applied(conn)
    for migration in load_migrations():
        if migration.version in have:
            if have[migration.version][1] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.filename} changed after it was applied; "
                    "add a new migration instead of editing it"
                )
            continue
        try:
            body = render(migration.sql, mode, migration.filename)
            with conn.transaction():
                conn.execute(body.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                conn.execute(
                    "INSERT INTO citybrain_meta (key, value) VALUES ('mode', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (mode,),
                )
        except (psycopg.Error, ModeError) as exc:
            raise MigrationError(f"migration {migration.filename} failed: {exc}") from exc
        result.applied.append(migration)
    try:
        if mode == "timescale":
            for stmt in timescale_policy_statements(settings):
                conn.execute(stmt.encode())
        apply_roles(conn, settings)
        result.departments = store_departments(conn, settings)
        result.maintenance = maintain(conn, mode, settings)
    except psycopg.Error as exc:
        raise MigrationError(f"applying policies and roles failed: {exc}") from exc
    except ConfigError as exc:
        raise MigrationError(f"the departments file: {exc}") from exc
    return result


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied version (0 when none)."""
    have = applied(conn)
    return max(have) if have else 0


def pending(conn: psycopg.Connection) -> list[Migration]:
    """Migrations not yet applied."""
    have = applied(conn)
    return [m for m in load_migrations() if m.version not in have]
