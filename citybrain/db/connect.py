"""Opening database connections the same way everywhere, from `Settings`."""

from __future__ import annotations

from typing import Any

import psycopg

from citybrain.settings import Settings


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for psycopg connections (also used by the worker's pool)."""
    kwargs: dict[str, Any] = {"application_name": settings.app_id}
    if not settings.db_prepared_statements:
        # Behind a transaction-pooling proxy (PgBouncer) or on a shared-backend server,
        # server-side prepared statements of one client collide with another's.
        kwargs["prepare_threshold"] = None
    return kwargs


def connect(settings: Settings, **options: Any) -> psycopg.Connection[Any]:
    """A synchronous connection as the writer role."""
    return psycopg.connect(settings.conninfo(), **{**connection_kwargs(settings), **options})
