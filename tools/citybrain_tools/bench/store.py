"""`citybrain bench store`: sustained write rate into the events table, and batch commit time.

Rows are generated before the clock starts, then written batch by batch through the same
`BatchWriter` the agents use (binary COPY into staging + upsert, one transaction per
batch). A second pass writes the same rows again to show what idempotency costs. The
bench rows carry the `bench:` prefix and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from citybrain.db.connect import connect, connection_kwargs
from citybrain.schemas.tables import EVENTS
from citybrain.settings import Settings
from citybrain.streams.sinks.timescale import BatchWriter, Method
from citybrain_tools.bench.report import percentile

CATEGORIES = ("smoke", "water_level", "manhole_tilt", "gas_leak", "pm25", "noise", "streetlight")
DISTRICTS = ("310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112")


@dataclass
class StoreBenchResult:
    rows: int
    batch_size: int
    concurrency: int
    method: str
    mode: str
    seconds: float
    rows_per_s: float
    batch_commit_ms_p50: float
    batch_commit_ms_p99: float
    rewrite_rows_per_s: float
    rewritten_rows_changed: int


def make_rows(n: int, run: str, seed: int = 7) -> list[tuple[Any, ...]]:
    """Synthetic canonical events shaped like the IoT feeds' output."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        observed = now - timedelta(seconds=rng.uniform(0, 86_400))
        category = CATEGORIES[i % len(CATEGORIES)]
        rows.append(
            (
                f"bench:{run}:{i}",
                observed,
                observed + timedelta(milliseconds=rng.uniform(5, 900)),
                "iot",
                f"{category}-vendor",
                category,
                rng.randint(1, 4),
                121.40 + rng.random() * 0.2,
                31.15 + rng.random() * 0.2,
                "WGS-84",
                "located",
                DISTRICTS[i % len(DISTRICTS)],
                f"{DISTRICTS[i % len(DISTRICTS)]}00{i % 9}",
                None,
                f"g{rng.randint(0, 2000)}",
                "fire" if category == "smoke" else "water",
                f"dev-{i % 5000:05d}",
                None,
                None,
                {
                    "value": round(rng.uniform(0, 100), 2),
                    "unit": "u",
                    "battery": rng.randint(0, 100),
                },
                {"topic": "raw.iot.bench", "partition": i % 4, "offset": i},
            )
        )
    return rows


async def _write_all(
    writer: BatchWriter, batches: list[list[tuple[Any, ...]]], concurrency: int
) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[list[tuple[Any, ...]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    commit_ms: list[float] = []
    changed = 0
    done = 0
    total = len(batches)

    async def worker() -> None:
        nonlocal changed, done
        while not queue.empty():
            batch = queue.get_nowait()
            t0 = time.perf_counter()
            result = await writer.write(EVENTS, batch)
            commit_ms.append((time.perf_counter() - t0) * 1000)
            changed += result.written
            done += 1
            if done % max(1, total // 20) == 0 or done == total:
                print(f"\r  {done}/{total} batches", end="", file=sys.stderr, flush=True)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(file=sys.stderr)
    return time.perf_counter() - started, commit_ms, changed


async def run_store_bench(
    settings: Settings, rows: int, batch_size: int, concurrency: int, method: Method
) -> StoreBenchResult:
    run = uuid.uuid4().hex[:8]
    print(f"generating {rows} rows ...", file=sys.stderr)
    data = make_rows(rows, run)
    batches = [data[i : i + batch_size] for i in range(0, rows, batch_size)]
    with connect(settings) as conn:
        row = conn.execute("SELECT value FROM citybrain_meta WHERE key = 'mode'").fetchone()
        mode = row[0] if row else "unknown"
    async with AsyncConnectionPool(
        settings.conninfo(),
        min_size=concurrency,
        max_size=concurrency,
        open=False,
        kwargs=connection_kwargs(settings),
    ) as pool:
        writer = BatchWriter(pool, method=method)
        print(f"writing {len(batches)} batches of {batch_size} ...", file=sys.stderr)
        seconds, commit_ms, _ = await _write_all(writer, batches, concurrency)
        print("writing the same batches again (idempotency) ...", file=sys.stderr)
        again_s, _, changed_again = await _write_all(writer, batches, concurrency)
    with connect(settings) as conn:
        conn.execute("DELETE FROM events WHERE event_id LIKE %s", (f"bench:{run}:%",))
    return StoreBenchResult(
        rows=rows,
        batch_size=batch_size,
        concurrency=concurrency,
        method=method,
        mode=mode,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds),
        batch_commit_ms_p50=round(percentile(commit_ms, 50), 2),
        batch_commit_ms_p99=round(percentile(commit_ms, 99), 2),
        rewrite_rows_per_s=round(rows / again_s),
        rewritten_rows_changed=changed_again,
    )


def as_dict(result: StoreBenchResult) -> dict[str, Any]:
    return asdict(result)
