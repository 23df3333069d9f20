"""The writer's table specs agree with the migrated schema (column names and types)."""

from __future__ import annotations

import psycopg
import pytest

from citybrain.schemas.tables import ALL_SPECS, TableSpec
from citybrain.settings import Settings

pytestmark = pytest.mark.integration
ALIASES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float8": "double precision",
    "timestamptz": "timestamp with time zone",
    "bool": "boolean",
}


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.table)
def test_spec_matches_the_table(stack: Settings, spec: TableSpec) -> None:
    with psycopg.connect(stack.conninfo()) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s",
            (spec.table,),
        ).fetchall()
        unique = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid",
            (spec.table,),
        ).fetchall()
    actual = dict(rows)
    for name, pg_type in spec.columns:
        assert name in actual, f"{spec.table}.{name} missing"
        assert actual[name] == ALIASES.get(pg_type, pg_type), f"{spec.table}.{name}"
    assert sorted(spec.key) in [sorted(u[0]) for u in unique], "key must be a unique index"
