"""The bench acts as the department on its probe tasks: its acknowledge and resolve reports
are valid `citybrain.dispatch-status/1` reports, each with its own idempotency key."""

from __future__ import annotations

import json

import pytest

from citybrain.schemas.dispatch_status import StatusReportModel
from citybrain_tools.bench.e2e import status_report

TASK = {"dispatch_id": "dsp-0123456789abcdef", "department": "gas-pudong"}


@pytest.mark.parametrize("status", ["acknowledged", "resolved"])
def test_the_bench_reports_as_a_department(status: str) -> None:
    report = StatusReportModel.model_validate(json.loads(status_report(TASK, status)))
    assert (report.dispatch_id, report.department, report.status) == (
        "dsp-0123456789abcdef",
        "gas-pudong",
        status,
    )


def test_each_report_has_its_own_key() -> None:
    keys = {json.loads(status_report(TASK, s))["report_id"] for s in ("acknowledged", "resolved")}
    assert len(keys) == 2
