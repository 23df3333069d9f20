"""Keyset paging of the API's lists: the cursor a client passes back (400 naming the field
for one this API did not give out), and the page cut from rows fetched one beyond it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException

from citybrain.api.store import decode_cursor, encode_cursor


def after(cursor: str | None) -> tuple[datetime, str] | None:
    """Where the page starts: the key the cursor holds (None: the first page)."""
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError as exc:
        raise HTTPException(400, [{"field": "query.cursor", "reason": str(exc)}]) from exc


def page(
    rows: list[dict[str, Any]], limit: int, at: str, key: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` of `rows` (fetched `limit + 1`) and the cursor of the next page,
    from the last row's `at` and `key` columns (None when there is no next page)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1][at], rows[-1][key])
