"""Every panel's SQL, with Grafana's macros and template variables expanded the way Grafana
expands them, runs on the real database after a simulated run, as the read-only
`grafana_reader` role, and returns rows. A panel naming a missing column fails."""

from __future__ import annotations

import json
import os
import random
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
        worker.wait_ready()
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
        # the dashboards' aggregates hold what the worker wrote (plain mode's refresh); the
        # worker's own maintenance pass may hold the lock at that moment: the next try runs
        assert wait_for(lambda: run_maintenance(stack).startswith("partitions"), 120)
        yield stack
    finally:
        worker.stop()


def run_panel(
    conn: psycopg.Connection[Any],
    dashboard: dict[str, Any],
    sql: str,
    *,
    timescaledb: bool = False,
    cursor: psycopg.Cursor[Any] | None = None,
) -> list[Any]:
    """The panel's rows, its SQL expanded as Grafana would for the datasource's mode (on
    `cursor` when given, to read its column names after)."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    ctx = Context(start=end - timedelta(hours=6), end=end, interval="1m", timescaledb=timescaledb)
    ctx = replace(ctx, variables=variables(conn, dashboard, ctx))
    return (cursor or conn.cursor()).execute(expand(sql, ctx)).fetchall()


#: What each panel must show after the simulated run: the column that witnesses it, and
#: "positive" (a value > 0 in that column), "value" (a non-null value) or "any" (the run
#: does not guarantee one: the column must still be there; the reason is given). A count
#: that is 0, a NULL percentile or a missing column fails: returning a row proves nothing
#: for an aggregate, which always returns one.
WITNESS: dict[str, tuple[str, str] | list[tuple[str, str]]] = {
    # two panels share this title: the stat, then the map's table (in dashboard order)
    "city-overview/Open incidents/A": [("open incidents", "positive"), ("incident_id", "value")],
    "city-overview/Priority 1 open/A": ("priority 1", "any"),  # depends on the draw
    "city-overview/Needs location/A": ("needs location", "any"),  # ditto
    "city-overview/Opened in range/A": ("opened", "positive"),
    "city-overview/Hotline calls in range/A": ("calls", "positive"),
    "city-overview/Out of area (open)/A": ("out of area", "any"),  # none is the norm
    "city-overview/Open incidents by category/A": ("open", "positive"),
    "city-overview/Open incidents by district/A": ("open", "positive"),
    "city-overview/Hotline calls (12345)/A": ("calls", "positive"),
    "city-overview/Newest incidents/A": ("incident_id", "value"),
    "dispatch-sla/Open tasks/A": ("open tasks", "positive"),
    "dispatch-sla/Overdue tasks/A": ("overdue", "any"),  # deadlines are hours away
    "dispatch-sla/Time to acknowledge/A": ("p50", "value"),  # the run acknowledges tasks
    "dispatch-sla/Time to resolve/A": ("p50", "value"),  # and resolves some
    "dispatch-sla/SLA compliance/A": ("acknowledged on time", "value"),
    "dispatch-sla/Open and overdue tasks per department/A": ("open", "positive"),
    "dispatch-sla/SLA compliance over time/A": ("acknowledged on time", "value"),
    "dispatch-sla/Department scorecard/A": ("open", "positive"),
    "dispatch-sla/Deliveries by status/A": ("messages", "positive"),
    "dispatch-sla/Failing deliveries/A": ("destination", "any"),  # none fail in the run
    "pipeline-health/Records in range/A": ("ok", "positive"),
    "pipeline-health/Dead letters in range/A": ("dead letters", "positive"),  # 2% malformed
    "pipeline-health/needs_location backlog/A": ("backlog", "any"),
    "pipeline-health/Oldest unlocated incident/A": ("age", "any"),
    "pipeline-health/Deliveries failing/A": ("failing", "any"),
    "pipeline-health/Deliveries dead/A": ("dead", "any"),
    "pipeline-health/Records/s per stage/A": ("records/s", "positive"),
    "pipeline-health/Events ingested/s/A": ("events/s", "positive"),
    "pipeline-health/Dead letters by stage and reason/A": ("dead letters", "positive"),
    "pipeline-health/Dead letters by reason/A": ("dead letters", "positive"),
    "pipeline-health/Delivery attempts by outcome/A": ("sent", "positive"),
    "pipeline-health/Failing and dead deliveries by destination/A": ("destination", "any"),
    "sensors/Readings in range/A": ("readings", "positive"),
    "sensors/Reporting devices/A": ("devices", "positive"),
    "sensors/IoT alarms in range/A": ("alarms", "positive"),
    "sensors/Silent devices (> 30 min)/A": ("silent", "positive"),  # registered, never sent
    "sensors/Samples per metric/A": ("samples", "positive"),
    "sensors/Water level (level_m)/A": ("value", "value"),
    "sensors/Noise (laeq_db)/A": ("value", "value"),
    "sensors/Manhole covers (tilt_deg)/A": ("value", "value"),
    "sensors/IoT alarms by category/A": ("alarms", "positive"),
    "sensors/Latest IoT alarms/A": ("category", "value"),
    "sensors/Silent devices/A": ("device_id", "value"),
}


def test_every_panel_has_a_witness() -> None:
    assert {f"{d}/{p}" for d, p, _ in panel_queries()} == set(WITNESS)


def witnessed() -> list[tuple[str, str, str, tuple[str, str]]]:
    """Every panel query with its witness (panels sharing a title in dashboard order)."""
    seen: dict[str, int] = {}
    out = []
    for dashboard, panel, sql in panel_queries():
        key = f"{dashboard}/{panel}"
        spec = WITNESS[key]
        nth = seen.get(key, 0)
        seen[key] = nth + 1
        out.append((dashboard, panel, sql, spec[nth] if isinstance(spec, list) else spec))
    return out


@pytest.mark.parametrize(("dashboard", "panel", "sql", "witness"), witnessed())
def test_every_panel_shows_what_the_run_produced(
    simulated: Settings, dashboard: str, panel: str, sql: str, witness: tuple[str, str]
) -> None:
    doc = json.loads((PROJECT_ROOT / "grafana" / "dashboards" / f"{dashboard}.json").read_text())
    column, kind = witness
    with reader(simulated) as conn:
        cur = conn.execute("SELECT 1")  # a cursor to read the column names from
        rows = run_panel(conn, doc, sql, cursor=cur)
        names = [c.name for c in cur.description or []]
    assert column in names, f"{dashboard}: {panel} has columns {names}, not {column!r}"
    values = [row[names.index(column)] for row in rows]
    if kind == "positive":
        assert any(v is not None and float(v) > 0 for v in values), (panel, column, values[:5])
    elif kind == "value":
        assert any(v is not None for v in values), (panel, column, values[:5])


def test_a_panel_naming_a_missing_column_fails(simulated: Settings) -> None:
    assert DASHBOARDS, "no dashboards"
    doc = json.loads(DASHBOARDS[0].read_text())
    sql = "SELECT count(no_such_column) FROM incidents WHERE $__timeFilter(last_seen)"
    with reader(simulated) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        run_panel(conn, doc, sql)


@pytest.mark.parametrize(
    "table",
    [
        "personal_contacts",
        "open311_requests",
        "api_tokens",
        "deadline_extensions",
        "privacy_erasures",
    ],
)
def test_the_reader_cannot_read_what_no_dashboard_reads(simulated: Settings, table: str) -> None:
    with reader(simulated) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT * FROM {table} LIMIT 1")


def test_there_are_dashboards_with_queries() -> None:
    assert len(DASHBOARDS) >= 4 and len(panel_queries()) >= 12
    assert all(isinstance(p, Path) for p in DASHBOARDS)
