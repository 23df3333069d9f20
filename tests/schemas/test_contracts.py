"""The messages the stages write agree with their JSON Schemas (schemas/json): incident
changes (incidents.v1), department task messages (dispatch.<department>.v1 and webhooks),
status reports (dispatch.status.v1). Each is made by the pure code that makes it in the
pipeline, from the shipped samples, routes and SLA policy."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from citybrain.correlation.core import Correlator
from citybrain.correlation.state import incident_message
from citybrain.dispatch.plan import (
    Message,
    StatusReport,
    plan_escalations,
    plan_incident,
    plan_status,
)
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.feeds.pipeline import normalize_batch
from citybrain.feeds.samples import read_samples
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.dispatch_status import StatusReportModel
from tests.citybrain.dispatch.test_plan import CTX, OPS, T0, create, incident
from tests.citybrain.feeds.conftest import NOW


def validator(name: str) -> jsonschema.Draft202012Validator:
    doc = json.loads((files("schemas") / "json" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(
        doc, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_incident_changes_of_the_sample_feeds_validate() -> None:
    pack = load_pack("shanghai")
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    correlator = Correlator(place_names=load_gazetteer(pack).full_district_names)
    check = validator("incident.v1.json")
    changes: set[str] = set()
    for feed in load_feeds(BUILTIN_DIR):
        path = feed.sample_path()
        assert path is not None
        for event in normalize_batch(feed, read_samples(feed, path), tagger, {}, NOW).events:
            change = correlator.add(event)
            if change is None:
                continue
            kind = "opened" if change.opened else ("reopened" if change.reopened else "merged")
            changes.add(kind)
            message = json.loads(
                json.dumps(incident_message(change.incident, kind, [event.event_id]))
            )
            check.validate(message)
    assert {"opened", "merged"} <= changes


def _task_messages() -> list[Message]:
    messages: list[Message] = []
    for category, priority in [("gas_leak", 1), ("flooding", 2), ("streetlight_out", 4)]:
        new = incident(category, priority)
        tasks = create(new)
        messages += plan_incident(new, {}, CTX, T0).messages
        messages += plan_incident(incident(category, 1, reports=60), tasks, CTX, T0).messages
        for task in tasks.values():
            for days in (0.01, 0.2, 3):
                messages += plan_escalations(task, CTX, T0 + timedelta(days=days), OPS).messages
            rejected = StatusReport(
                task.dispatch_id, task.department, "rejected", T0, reason="不归我们管"
            )
            messages += plan_status(rejected, task, tasks, new, CTX, T0).messages
    return messages


def test_department_task_messages_validate_for_every_kind() -> None:
    check = validator("task.v1.json")
    messages = _task_messages()
    for m in messages:
        check.validate(json.loads(json.dumps(m.payload, ensure_ascii=False)))
    assert {m.kind for m in messages} >= {
        "task.created",
        "task.updated",
        "task.reminder",
        "task.escalated",
    }


def test_the_status_report_schema_is_the_model_s_own() -> None:
    stored = json.loads((files("schemas") / "json" / "dispatch_status.v1.json").read_text())
    generated = StatusReportModel.model_json_schema(by_alias=True)
    assert {k: v for k, v in stored.items() if k not in ("$schema", "$id")} == generated


@pytest.mark.parametrize(
    ("report", "valid"),
    [
        (
            {
                "report_id": "r1",
                "dispatch_id": "dsp-1",
                "department": "fire",
                "status": "acknowledged",
                "at": "2026-11-24T10:00:00+08:00",
            },
            True,
        ),
        (
            {
                "report_id": "r1",
                "dispatch_id": "dsp-1",
                "department": "fire",
                "status": "done",
                "at": "2026-11-24T10:00:00+08:00",
            },
            False,
        ),
        (
            {
                "report_id": "r1",
                "dispatch_id": "dsp-1",
                "department": "Fire Dept",
                "status": "resolved",
                "at": "2026-11-24T10:00:00+08:00",
            },
            False,
        ),
    ],
)
def test_status_reports_validate_as_the_stage_reads_them(
    report: dict[str, Any], valid: bool
) -> None:
    errors = list(validator("dispatch_status.v1.json").iter_errors(report))
    assert (not errors) == valid, errors


@pytest.mark.parametrize(
    "broken",
    [{"priority": 7}, {"kind": "task.deleted"}, {"dispatch_id": "DSP 1"}, {"unknown": 1}],
)
def test_a_task_message_that_breaks_the_contract_fails_it(broken: dict[str, Any]) -> None:
    payload = json.loads(json.dumps(_task_messages()[0].payload))
    assert not list(validator("task.v1.json").iter_errors(payload))
    assert list(validator("task.v1.json").iter_errors({**payload, **broken}))
