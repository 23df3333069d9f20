"""`citybrain run` in a city other than Shanghai, as a newcomer starts it: with
`CITYBRAIN_CITY_PACK=guiyang` it imports the Guiyang pack, runs the worker, the API and the
simulator, and the city's traffic becomes incidents in Guiyang's districts dispatched to
Guiyang's departments; a 12345 ticket giving only a Guiyang address is placed and
dispatched too. Real broker, database and processes; stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from citybrain.settings import PROJECT_ROOT, Settings
from tests.agents.normalize.test_agent import produce
from tests.conftest import VENV_BIN, free_port, wait_for

pytestmark = pytest.mark.integration


def guiyang_departments() -> set[str]:
    from citybrain.dispatch.routing import dispatch_files, load_routing

    routing = load_routing(*dispatch_files(Settings(city_pack="guiyang")))
    return set(routing.by_code)


def test_citybrain_run_works_in_guiyang(stack: Settings, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    app_id = f"test-run-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "CITYBRAIN_CITY_PACK": "guiyang",
        "CITYBRAIN_APP_ID": app_id,
        "CITYBRAIN_LOG_DIR": str(tmp_path / "log"),
        "CITYBRAIN_API_PORT": str(free_port()),
        "CITYBRAIN_WORKER_WEB_PORT": str(free_port()),
        "CITYBRAIN_METRICS_PORT": str(free_port()),
        "CITYBRAIN_KAFKA_SESSION_TIMEOUT": "8",
        # a new consumer group starts at the topics' end: the stack's history (other tests'
        # Shanghai traffic) is not this run's
        "CITYBRAIN_KAFKA_OFFSET_RESET": "latest",
    }
    proc = subprocess.Popen(  # as a newcomer runs it: the simulator at its default rate
        [str(VENV_BIN / "citybrain"), "run"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def logs() -> str:
        text = log.read_text(errors="replace")[-3000:]
        worker = tmp_path / "log" / "worker.log"
        return text + ("\n--- worker\n" + worker.read_text(errors="replace")[-3000:])

    def guiyang_dispatches() -> list[tuple[str, str]]:
        with psycopg.connect(stack.conninfo()) as conn:
            rows = conn.execute(
                "SELECT i.district, d.department FROM dispatches d"
                " JOIN incidents i ON i.incident_id = d.incident_id"
                " WHERE d.created_at >= %s",
                (started,),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    try:
        assert wait_for(lambda: b"citybrain is running" in log.read_bytes(), 240), logs()
        # the simulator's traffic: incidents in Guiyang's districts, Guiyang's departments
        assert wait_for(lambda: len(guiyang_dispatches()) >= 3, 180), logs()
        found = guiyang_dispatches()
        # Guiyang's districts, and Guiyang's departments (its pack's departments.yaml)
        assert {d[:4] for d, _ in found if d != "None"} == {"5201"}, found
        assert {code for _, code in found} <= guiyang_departments(), found
        # a caller who gives only an address in Guiyang (no coordinates)
        ticket = f"RUN{uuid.uuid4().hex[:10]}"
        at = datetime.now(UTC) - timedelta(minutes=1)
        doc = {
            "ticketNo": ticket,
            "acceptTime": (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S"),
            "callerPhone": "13800138000",
            "channel": "电话",
            "category": "燃气-燃气异味",
            "urgency": "特急",
            "content": "市民来电反映：楼道里有很重的燃气味",
            "address": "贵阳市云岩区北京路",
        }
        produce(stack, "raw.hotline", [(ticket.encode(), json.dumps(doc).encode())])

        def ticket_dispatches() -> list[tuple[str, str, str]]:
            with psycopg.connect(stack.conninfo()) as conn:
                return conn.execute(
                    "SELECT i.district, d.department, d.role FROM incident_reports r"
                    " JOIN incidents i ON i.incident_id = r.incident_id"
                    " JOIN dispatches d ON d.incident_id = i.incident_id"
                    " WHERE r.event_id = %s",
                    (f"hotline-12345:{ticket}",),
                ).fetchall()

        assert wait_for(lambda: len(ticket_dispatches()) == 3, 120), logs()
        rows = ticket_dispatches()
        assert {r[0] for r in rows} == {"520103"}
        assert ("gas-gy-urban", "lead") in {(r[1], r[2]) for r in rows}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    assert "stopping..." in log.read_text(errors="replace")
