"""Manhole-cover reports published with `mosquitto_pub` become readings, alarms, incidents
and dispatches: the real mosquitto, `citybrain bridge mqtt`, Kafka, a worker (a fresh
consumer group started at the end of every topic) and the database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from citybrain.ingest.mqtt_bridge import forget_session
from citybrain.settings import Settings
from tests.citybrain.ingest.mqtt_helpers import bridge_process, publish_lines, start_group_at_end
from tests.conftest import wait_for

pytestmark = pytest.mark.integration
SHANGHAI = timezone(timedelta(hours=8))
DEVICES = ("MH00003", "MH00011")  # in the feed's device registry: placed on the map


def test_manhole_reports_by_mqtt_become_incidents_and_dispatches(
    stack: Settings, worker_factory: Callable[..., Any], tmp_path: Path
) -> None:
    group = f"test-mqtt-e2e-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    client_id = f"test-bridge-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "bridge.log"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    ms = int(at.timestamp() * 1000)
    try:
        with bridge_process(log, CITYBRAIN_MQTT_CLIENT_ID=client_id):
            subscribed = lambda: '"event": "bridge_subscribed"' in log.read_text()  # noqa: E731
            assert wait_for(subscribed, 60), log.read_text()
            # the group starts at the topics' ends as committed: no need to wait for it
            for device in DEVICES:
                doc = {
                    "imei": device,
                    "time": at.astimezone(SHANGHAI).isoformat(),
                    "tilt_deg": 23.8,  # above 15: the cover is open
                    "water_immersion": 0,
                }
                publish_lines(stack, f"manhole/{device}/report", [json.dumps(doc)])

            def landed() -> dict[str, tuple[int, int, int]]:
                """Per device: readings, alarm events in an incident, dispatches."""
                out = {}
                with psycopg.connect(stack.conninfo()) as conn:
                    for device in DEVICES:
                        event_id = f"manhole-cover:{device}:r0:alarm:{ms}"
                        row = conn.execute(
                            "SELECT (SELECT count(*) FROM readings WHERE device_id = %s"
                            "        AND ts = %s AND feed = 'manhole-cover'),"
                            " (SELECT count(*) FROM incident_reports WHERE event_id = %s),"
                            " (SELECT count(*) FROM dispatches d JOIN incident_reports r"
                            "   ON r.incident_id = d.incident_id WHERE r.event_id = %s)",
                            (device, at, event_id, event_id),
                        ).fetchone()
                        assert row is not None
                        out[device] = (int(row[0]), int(row[1]), int(row[2]))
                return out

            def done() -> bool:
                return all(r >= 2 and i == 1 and d >= 1 for r, i, d in landed().values())

            assert wait_for(done, 150, 1.0), (
                landed(),
                worker.log()[-3000:],
                log.read_text()[-2000:],
            )
    finally:
        forget_session(stack, client_id)
    with psycopg.connect(stack.conninfo()) as conn:
        rows = conn.execute(
            "SELECT e.category, d.department FROM events e"
            " JOIN incident_reports r ON r.event_id = e.event_id"
            " JOIN dispatches d ON d.incident_id = r.incident_id WHERE e.event_id = ANY(%s)",
            ([f"manhole-cover:{d}:r0:alarm:{ms}" for d in DEVICES],),
        ).fetchall()
    assert rows and {r[0] for r in rows} == {"manhole"}
