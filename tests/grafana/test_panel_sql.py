"""Every panel's SQL, with Grafana's macros and template variables expanded the way Grafana
expands them, runs on the real database after a simulated run, as the read-only
`grafana_reader` role, and returns rows. A panel naming a missing column fails."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from citybrain.agents.maintenance.store import run_maintenance
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.geo.address import load_gazetteer
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.grafana.macros import Context, expand
from citybrain.settings import PROJECT_ROOT, Settings
from citybrain_tools.sim.scenario import Scenario
from tests.agents.normalize.test_agent import produce
from tests.conftest import WorkerProcess, free_port, wait_for

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((PROJECT_ROOT / "grafana" / "dashboards").glob("*.json"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("rawSql"):
                    out.append(
                        (path.stem, f"{panel.get('title')}/{target.get('refId')}", target["rawSql"])
                    )
    return out


def reader(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=settings.db_host,
        port=settings.db_port,
        dbname=settings.db_name,
        user="grafana_reader",
        password=settings.grafana_reader_password.get_secret_value(),
        autocommit=True,
    )


def variables(
    conn: psycopg.Connection[Any], dashboard: dict[str, Any], ctx: Context
) -> dict[str, list[str]]:
    """Each template variable with every value its query offers (the "All" choice)."""
    values: dict[str, list[str]] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            sql = query.get("rawSql", query.get("query")) if isinstance(query, dict) else query
            rows = conn.execute(
                expand(sql, Context(ctx.start, ctx.end, ctx.interval, values))
            ).fetchall()
            values[var["name"]] = [str(r[0]) for r in rows if r[0] is not None]
        elif var.get("type") == "custom":
            values[var["name"]] = [
                o["value"] for o in var.get("options", []) if o.get("value") != "$__all"
            ]
    return values


@pytest.fixture(scope="module")
def simulated(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Two hours of simulated city traffic through a real worker, and departments answering
    some of their tasks."""
    env = {
        **os.environ,
        "CITYBRAIN_APP_ID": f"test-grafana-{uuid.uuid4().hex[:6]}",
        "CITYBRAIN_WORKER_WEB_PORT": str(free_port()),
        "CITYBRAIN_METRICS_PORT": "0",
        "CITYBRAIN_LOG_FORMAT": "json",
        "CITYBRAIN_KAFKA_SESSION_TIMEOUT": "8",
    }
    worker = WorkerProcess(env, tmp_path_factory.mktemp("grafana") / "worker.log").start()
    try:
        time.sleep(8)
        feeds = {f.name: f for f in load_feeds(BUILTIN_DIR)}
        pack = load_pack("shanghai")
        scenario = Scenario(
            {n: f.devices for n, f in feeds.items() if f.devices},  # type: ignore[misc]
            load_gazetteer(pack),
            seed=random.randint(1000, 10**6),
            problem_share=0.2,
            malformed=0.02,
            index=GeoIndex(pack),
        )
        by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
        for r in scenario.build(1500, timedelta(hours=2), end=datetime.now(UTC)):
            by_topic.setdefault(r.topic, []).append((r.key.encode(), r.value))
        started = datetime.now(UTC)
        for topic, items in by_topic.items():
            produce(stack, topic, items)

        def count(sql: str, *args: Any) -> int:
            with psycopg.connect(stack.conninfo()) as conn:
                row = conn.execute(sql, args).fetchone()
            return int(row[0]) if row else 0

        # every second task below is resolved: 6 tasks make the 3 resolved waited for next
        assert wait_for(
            lambda: count("SELECT count(*) FROM dispatches WHERE created_at >= %s", started) >= 6,
            180,
        ), worker.log()[-3000:]
        with psycopg.connect(stack.conninfo()) as conn:
            tasks = conn.execute(
                "SELECT dispatch_id, department FROM dispatches WHERE created_at >= %s LIMIT 20",
                (started,),
            ).fetchall()
        reports = []
        for i, (dispatch_id, department) in enumerate(tasks):
            for n, status in enumerate(["acknowledged", "resolved"][: 1 + i % 2]):
                reports.append(
                    (
                        dispatch_id.encode(),
                        json.dumps(
                            {
                                "schema": "citybrain.dispatch-status/1",
                                "report_id": f"grafana-{dispatch_id}-{n}",
                                "dispatch_id": dispatch_id,
                                "department": department,
                                "status": status,
                                "at": (datetime.now(UTC) + timedelta(seconds=n)).isoformat(),
                                "note": "已处理" if status == "resolved" else None,
                            }
                        ).encode(),
                    )
                )
        produce(stack, "dispatch.status.v1", reports)
        assert wait_for(
            lambda: (
                count(
                    "SELECT count(*) FROM dispatches"
                    " WHERE resolved_at IS NOT NULL AND created_at >= %s",
                    started,
                )
                >= 3
                and count(
                    "SELECT count(*) FROM pipeline_counts WHERE bucket >= %s",
                    started - timedelta(minutes=1),
                )
                > 0
            ),
            120,
        ), worker.log()[-3000:]
        # the dashboards' aggregates hold what the worker wrote (plain mode's refresh)
        assert run_maintenance(stack).startswith("partitions")
        yield stack
    finally:
        worker.stop()


def run_panel(
    conn: psycopg.Connection[Any],
    dashboard: dict[str, Any],
    sql: str,
    *,
    timescaledb: bool = False,
) -> list[Any]:
    """The panel's rows, its SQL expanded as Grafana would for the datasource's mode."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    ctx = Context(start=end - timedelta(hours=6), end=end, interval="1m", timescaledb=timescaledb)
    ctx = replace(ctx, variables=variables(conn, dashboard, ctx))
    return conn.execute(expand(sql, ctx)).fetchall()


@pytest.mark.parametrize(("dashboard", "panel", "sql"), panel_queries())
def test_every_panel_returns_rows(
    simulated: Settings, dashboard: str, panel: str, sql: str
) -> None:
    doc = json.loads((PROJECT_ROOT / "grafana" / "dashboards" / f"{dashboard}.json").read_text())
    with reader(simulated) as conn:
        rows = run_panel(conn, doc, sql)
    assert rows, f"{dashboard}: panel {panel} returned no rows"


def test_a_panel_naming_a_missing_column_fails(simulated: Settings) -> None:
    assert DASHBOARDS, "no dashboards"
    doc = json.loads(DASHBOARDS[0].read_text())
    sql = "SELECT count(no_such_column) FROM incidents WHERE $__timeFilter(last_seen)"
    with reader(simulated) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        run_panel(conn, doc, sql)


@pytest.mark.parametrize(
    "table",
    ["personal_contacts", "open311_requests", "api_tokens", "deadline_extensions", "boundaries"],
)
def test_the_reader_cannot_read_what_no_dashboard_reads(simulated: Settings, table: str) -> None:
    with reader(simulated) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT * FROM {table} LIMIT 1")


def test_there_are_dashboards_with_queries() -> None:
    assert len(DASHBOARDS) >= 4 and len(panel_queries()) >= 12
    assert all(isinstance(p, Path) for p in DASHBOARDS)
