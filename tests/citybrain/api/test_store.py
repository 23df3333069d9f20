"""The API store's pure part: the WHERE clause of optional filters (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from citybrain.api.store import where_clause

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("conditions", "where", "params"),
    [
        ((), "TRUE", []),
        ((("a = %s", None), ("b = %s", None)), "TRUE", []),
        ((("a = %s", "x"), ("b = %s", None)), "TRUE AND a = %s", ["x"]),
        ((("a = %s", False), ("b >= %s", T)), "TRUE AND a = %s AND b >= %s", [False, T]),
        ((("(c, d) < (%s, %s)", (T, "dsp-1")),), "TRUE AND (c, d) < (%s, %s)", [T, "dsp-1"]),
        ((("e = ANY(%s)", ["cb-1", "cb-2"]),), "TRUE AND e = ANY(%s)", [["cb-1", "cb-2"]]),
    ],
)
def test_where_clause(
    conditions: tuple[tuple[str, Any], ...], where: str, params: list[Any]
) -> None:
    assert where_clause(*conditions) == (where, params)
