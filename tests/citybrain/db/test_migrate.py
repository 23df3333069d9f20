"""Migrations on the real PostgreSQL: ordered, recorded, safe to run twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from citybrain.db.migrate import MigrationError, load_migrations, migrate
from citybrain.settings import Settings
from citybrain.stack import PostgresService

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch_db(stack: Settings) -> Iterator[str]:
    """A throw-away database owned by the writer role; its conninfo."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    admin = PostgresService(stack).superuser_conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(stack.db_user)
            )
        )
    yield stack.model_copy(update={"db_name": name}).conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrate_applies_everything_once_and_records_it(scratch_db: str) -> None:
    first = migrate(scratch_db)
    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert migrate(scratch_db) == []
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()
    assert [(v, c) for v, c in rows] == [(m.version, m.checksum) for m in load_migrations()]


def test_an_edited_migration_is_refused(scratch_db: str) -> None:
    migrate(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(scratch_db)
