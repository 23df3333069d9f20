"""The batch writer: one transaction per batch, idempotent by key.

`copy` method: the batch is deduplicated by key (the last row of a key wins) and COPYed
(binary) straight into the table inside a savepoint; if a key already exists (a
redelivery or replay) the savepoint rolls back and the batch goes by binary COPY into a
per-connection temporary staging table, then one `INSERT ... SELECT ... ON CONFLICT`.
`insert` method: the same upsert as a pipelined executemany, for servers without
COPY FROM STDIN. The `copy` method takes that path too for small batches (`small_batch`
rows or fewer: a report on its way to a department, not telemetry): one round trip
instead of the savepoint, COPY and release, which matters more than the COPY's speed
when the batch is one row and the latency of every stage adds up. Either way a batch
lands completely or not at all, and writing it again changes nothing (DO NOTHING) or
refreshes the same values (DO UPDATE).

The caller retries transient errors (`streams.retry.retry_transient`) and acknowledges
Kafka offsets only after `write` returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from citybrain.schemas.tables import TableSpec

Row = tuple[Any, ...]
Method = Literal["copy", "insert"]
Hook = Callable[[AsyncConnection[Any]], Awaitable[None]]


def stage_name(spec: TableSpec) -> str:
    return f"_stage_{spec.table}"


def conflict_clause(spec: TableSpec) -> sql.Composed:
    """`ON CONFLICT (key) DO NOTHING | DO UPDATE SET c = EXCLUDED.c, ...`."""
    target = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    if not spec.update:
        return sql.SQL("ON CONFLICT ({}) DO NOTHING").format(target)
    sets = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in spec.update
    )
    return sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(target, sets)


def upsert_from_stage_sql(spec: TableSpec) -> sql.Composed:
    """INSERT from the staging table, one row per key (the last written wins)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, spec.names))
    key = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    return sql.SQL(
        "INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {stage} "
        "ORDER BY {key}, _ord DESC {conflict}"
    ).format(
        table=sql.Identifier(spec.table),
        cols=cols,
        key=key,
        stage=sql.Identifier(stage_name(spec)),
        conflict=conflict_clause(spec),
    )


def upsert_values_sql(spec: TableSpec) -> sql.Composed:
    """INSERT one row of values with the conflict clause."""
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) {}").format(
        sql.Identifier(spec.table),
        sql.SQL(", ").join(map(sql.Identifier, spec.names)),
        sql.SQL(", ").join(sql.Placeholder() * len(spec.names)),
        conflict_clause(spec),
    )


def last_per_key(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """Rows deduplicated by key, keeping the last one of each key, in first-seen order."""
    index = [spec.names.index(k) for k in spec.key]
    latest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        latest[tuple(row[i] for i in index)] = row
    return list(latest.values())


@dataclass
class WriteResult:
    """Rows offered and rows that changed the table (the rest were already there)."""

    offered: int
    written: int


class BatchWriter:
    """Writes batches through a connection pool; see the module docstring."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        method: Method = "copy",
        before_commit: Hook | None = None,
        optimistic: bool = True,
        small_batch: int = 32,
    ) -> None:
        self.pool = pool
        self.method = method
        self.optimistic = optimistic
        self.small_batch = small_batch
        self.fallbacks = 0  # batches that met existing keys and took the upsert path
        self.before_commit = before_commit  # more work in the same transaction

    async def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        """One batch into one table, in one transaction."""
        return (await self.write_many([(spec, rows)]))[0]

    async def write_many(
        self, batches: Sequence[tuple[TableSpec, Sequence[Row]]]
    ) -> list[WriteResult]:
        """Several tables in one transaction (e.g. events and their personal contacts)."""
        if self.method != "copy" or all(len(rows) <= self.small_batch for _, rows in batches):
            return await self._write_pipelined(batches)
        results: list[WriteResult] = []
        async with self.pool.connection() as conn, conn.transaction():
            for spec, rows in batches:
                if not rows:
                    results.append(WriteResult(0, 0))
                    continue
                if self.method == "copy" and len(rows) > self.small_batch:
                    written = await self._copy_upsert(conn, spec, rows)
                else:
                    written = await self._insert_upsert(conn, spec, rows)
                results.append(WriteResult(len(rows), written))
            if self.before_commit is not None:
                await self.before_commit(conn)
        return results

    async def _write_pipelined(
        self, batches: Sequence[tuple[TableSpec, Sequence[Row]]]
    ) -> list[WriteResult]:
        """Small batches: BEGIN, one upsert per table, the hook's statements and COMMIT go
        out in one pipeline and wait for the database once (a report's latency is mostly
        such waits when the machine is busy), not once per statement."""
        counted: list[tuple[int, Any]] = []
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            for spec, rows in batches:
                if not rows:
                    counted.append((0, None))
                    continue
                cur = conn.cursor()
                await cur.executemany(upsert_values_sql(spec), _adapted(spec, rows))
                counted.append((len(rows), cur))
            if self.before_commit is not None:
                await self.before_commit(conn)
        # the counts are known once the pipeline has synced
        return [WriteResult(n, max(cur.rowcount, 0) if cur else 0) for n, cur in counted]

    async def _copy_upsert(
        self, conn: AsyncConnection[Any], spec: TableSpec, rows: Sequence[Row]
    ) -> int:
        if self.optimistic:
            # Fresh data (the common case) goes straight into the table; a key that is
            # already there (redelivery, replay) or twice in the batch rolls back to the
            # savepoint and the batch takes the staging + upsert path instead.
            try:
                async with conn.transaction():
                    await self._copy_rows(conn, spec.table, spec, rows, ordinal=False)
                return len(rows)
            except psycopg.errors.UniqueViolation:
                self.fallbacks += 1
        unique = last_per_key(spec, rows)
        stage = stage_name(spec)
        await conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS, _ord int4) "
                "ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(stage), sql.Identifier(spec.table))
        )
        await self._copy_rows(conn, stage, spec, unique, ordinal=True)
        async with conn.cursor() as cur:
            await cur.execute(upsert_from_stage_sql(spec))
            return max(cur.rowcount, 0)

    @staticmethod
    async def _copy_rows(
        conn: AsyncConnection[Any],
        table: str,
        spec: TableSpec,
        rows: Sequence[Row],
        *,
        ordinal: bool,
    ) -> None:
        names = (*spec.names, "_ord") if ordinal else spec.names
        types = [*spec.types, "int4"] if ordinal else list(spec.types)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        async with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            if ordinal:
                for number, row in enumerate(rows):
                    await copy.write_row((*row, number))
            else:
                for row in rows:
                    await copy.write_row(row)

    async def _insert_upsert(
        self, conn: AsyncConnection[Any], spec: TableSpec, rows: Sequence[Row]
    ) -> int:
        async with conn.cursor() as cur:
            await cur.executemany(upsert_values_sql(spec), _adapted(spec, rows))
            return max(cur.rowcount, 0)


def _adapted(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """The rows to upsert: the last of each key, JSON columns wrapped for jsonb."""
    json_cols = [i for i, t in enumerate(spec.types) if t in ("json", "jsonb")]
    unique = last_per_key(spec, rows)
    if json_cols:
        unique = [
            tuple(Jsonb(v) if i in json_cols and v is not None else v for i, v in enumerate(r))
            for r in unique
        ]
    return unique
