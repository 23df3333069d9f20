"""The messages the stages write agree with their JSON Schemas (schemas/json): incident
changes (incidents.v1), department task messages (dispatch.<department>.v1 and webhooks),
status reports (dispatch.status.v1). Each is made by the pure code that makes it in the
pipeline, from the shipped samples, routes and SLA policy."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
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
from citybrain.schemas.commands import Command, ExtendDeadlineCommand
from citybrain.schemas.dispatch_status import StatusReportModel
from citybrain.schemas.incident_status import IncidentStatusModel
from citybrain.streams.dlq import dead_letter_headers, delivery_dead_letter_headers
from citybrain.streams.topics import TOPICS, dispatch_topic_spec
from tests.citybrain.dispatch.test_plan import CTX, OPS, T0, create, incident
from tests.citybrain.feeds.conftest import NOW


def validator(name: str) -> jsonschema.Draft202012Validator:
    doc = json.loads((files("citybrain.schemas") / "json" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(
        doc, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_incident_changes_of_the_sample_feeds_validate() -> None:
    pack = load_pack("shanghai")
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    correlator = Correlator(places=PlaceWords(load_gazetteer(pack)), neighbours=pack.neighbours())
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
    stored = json.loads(
        (files("citybrain.schemas") / "json" / "dispatch_status.v1.json").read_text()
    )
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


# --- the typed messages of the stages and the API, dead letters, the catalogue -----------------
@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("dispatch_status.v1.json", StatusReportModel),
        ("incident_status.v1.json", IncidentStatusModel),
        ("command.v1.json", Command),
    ],
)
def test_a_typed_message_s_schema_is_its_model_s_own(name: str, model: Any) -> None:
    stored = json.loads((files("citybrain.schemas") / "json" / name).read_text())
    assert {k: v for k, v in stored.items() if k not in ("$schema", "$id")} == (
        model.model_json_schema(by_alias=True)
    )


def test_the_incident_status_message_the_status_stage_sends_validates() -> None:
    sent = IncidentStatusModel(incident_id="inc-1", status="resolved").model_dump(by_alias=True)
    assert not list(validator("incident_status.v1.json").iter_errors(sent))
    assert list(validator("incident_status.v1.json").iter_errors({"control": "x", **sent}))


def test_the_command_the_api_sends_validates() -> None:
    command = ExtendDeadlineCommand(
        command_id="ext-1",
        dispatch_id="dsp-1",
        resolve_deadline=T0 + timedelta(days=2),
        actor="api:ops",
        reason="parts on order",
        at=T0,
    ).model_dump(by_alias=True, mode="json")
    check = validator("command.v1.json")
    assert not list(check.iter_errors(command))
    assert list(check.iter_errors({**command, "resolve_deadline": "2030-01-01T00:00:00"}))
    assert list(check.iter_errors({k: v for k, v in command.items() if k != "actor"}))


def _as_object(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {name: value.decode() for name, value in headers}


def test_dead_letter_headers_validate_for_a_reject_and_a_failed_delivery() -> None:
    check = validator("dead_letter_headers.v1.json")
    rejected = dead_letter_headers(
        stage="persist", error=ValueError("bad"), topic="events.v1", partition=2, offset=9
    )
    rejected.append(("dlq.reason", b"schema_violation"))
    failed = delivery_dead_letter_headers(
        stage="dispatch", destination="webhook:fire-119", attempts=8, error="HTTP 503"
    )
    for headers in (rejected, failed):
        assert not list(check.iter_errors(_as_object(headers)))
    # the headers the dispatch stage once built by hand (dlq.message) break the contract
    by_hand = {**_as_object(failed), "dlq.message": "HTTP 503"}
    assert list(check.iter_errors(by_hand))


def test_every_topic_names_json_schemas_that_exist_and_the_readme_lists_it() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for spec in [*TOPICS.all(), dispatch_topic_spec("<department>")]:
        assert spec.schemas and spec.producers and spec.consumers, spec.name
        for name in spec.schemas:
            validator(name)  # exists and is a valid schema
        row = next((line for line in readme.splitlines() if f"| `{spec.name}` |" in line), "")
        assert row, f"README's topic table lacks {spec.name}"
        for name in spec.schemas:
            assert f"schemas/json/{name}" in row, (spec.name, name)
