"""Fixtures of the database tests: a throw-away database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from citybrain.settings import Settings
from citybrain.stack import PostgresService


@pytest.fixture
def scratch(stack: Settings) -> Iterator[Settings]:
    """Settings pointing at a throw-away database owned by the writer role."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    admin = PostgresService(stack).superuser_conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(stack.db_user)
            )
        )
    yield stack.model_copy(update={"db_name": name})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
