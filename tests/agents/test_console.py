"""The console end to end in a real browser (Debian's chromium driven by Playwright, CJK
fonts from Debian), on a real `citybrain api`, worker, broker and database.

A citizen's Open311 request with no usable address appears in the needs_location queue;
the operator places it on the map; it is dispatched; the department acknowledges and
resolves it in its workbench; the operator records a satisfied callback and closes the
case; the Open311 GET for the request says closed. A department can neither open another
department's task page nor give an operations command from the console. Screenshots of
every page go to `test-output/console/` (the README shows some)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.citybrain.api.test_console import Screen, api_url, browser, tokens  # noqa: F401
from tests.conftest import wait_for

pytestmark = pytest.mark.integration
#: a register entry of the Shanghai pack the operator searches for (it is in 浦东新区)
REGISTER_NAME = "世纪大道"


def test_the_command_center_loop_in_a_browser(
    stack: Settings,
    api_url: str,  # noqa: F811
    tokens: dict[str, str],  # noqa: F811
    browser: Any,  # noqa: F811
    worker_factory: Any,
) -> None:
    group = f"test-console-{uuid.uuid4().hex[:6]}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    marker = uuid.uuid4().hex[:8]
    # 受理: a citizen's request with only the district as its address
    posted = httpx.post(
        f"{api_url}/open311/v2/requests.json",
        data={
            "api_key": tokens["open311"],
            "service_code": "manhole",
            "address_string": "浦东新区",
            "description": f"井盖不见了 {marker}，请回电 13812345678",
        },
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    request_id = posted.json()[0]["service_request_id"]
    incident = _incident_of(stack, f"open311:{request_id}", worker)

    ops = Screen(browser, api_url, tokens["operations"], "operations")
    ops.until(
        lambda p: p.query_selector(f"a.incident-link:text-is('{incident}')"),
        "#/queues/needs_location",
        "#tab-needs_location",
    )
    # the live counts arrive as server-sent events
    assert wait_for(lambda: int(ops.page.inner_text("#count-needs_location")) >= 1, 15)
    ops.shot("queues-needs-location")
    ops.page.click(f"a.incident-link:text-is('{incident}')")
    ops.page.wait_for_selector("#incident-head")
    assert marker in ops.page.inner_text("#reports")
    assert "13812345678" not in ops.page.content()  # the caller's number is masked
    ops.shot("incident-needs-location")

    # 派单: the operator finds the place in the register, then clicks it on the map
    ops.page.fill("#place-search", REGISTER_NAME)
    ops.page.press("#place-search", "Enter")
    ops.page.click("#place-results li >> nth=0")
    box = ops.page.locator("#placemap").bounding_box()
    ops.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert re.match(r"^121\.\d+, 31\.\d+", ops.page.inner_text("#pending"))
    ops.page.fill("#place-reason", "来电人补充：世纪大道 / caller gave the road")
    ops.shot("placing-on-the-map")
    ops.page.click("#place-here")
    ops.page.wait_for_selector("#toast div:has-text('已执行')")
    ops.until(
        lambda p: p.query_selector("#tasks tr[data-department='municipal']"),
        f"#/incident/{incident}",
        "#incident-head",
    )
    assert "已定位" in ops.page.inner_text("#incident-head")
    ops.shot("incident-dispatched")

    # 承办: the department's workbench
    dept = Screen(browser, api_url, tokens["municipal"], "department")
    dept.until(
        lambda p: p.query_selector("#open-tasks a.task-link"), "#/workbench", "#nav-workbench"
    )
    dept.shot("workbench")
    task_id = _task_of(stack, incident, "municipal")
    dept.go(f"#/task/{task_id}", "#task-actions")
    dept.shot("task")
    dept.page.click("#do-acknowledge")
    dept.until(
        lambda p: p.query_selector("#task-head [data-status='acknowledged']"),
        f"#/task/{task_id}",
        "#task-head",
    )
    dept.page.fill("#task-note", f"井盖已更换 {marker}")
    dept.page.click("#do-resolve")
    dept.until(
        lambda p: p.query_selector("#task-head [data-status='resolved']"),
        f"#/task/{task_id}",
        "#task-head",
    )
    dept.shot("task-resolved")

    # a department can neither open another department's task nor command
    other = _other_departments_task(stack)
    dept.go(f"#/task/{other}", "#error")
    assert "没有这个" in dept.page.inner_text("#error")
    dept.shot("another-departments-task")
    dept.go(f"#/incident/{incident}", "#incident-head")
    assert dept.page.query_selector("#actions") is None  # no operations actions shown
    status = dept.page.evaluate(
        """async (id) => {
            const s = await (await fetch('/console/session')).json();
            const r = await fetch(`/api/v1/incidents/${id}/reopen`, {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token},
              body: JSON.stringify({reason: 'not mine'})});
            return r.status;
        }""",
        incident,
    )
    assert status == 403

    # 回访, 办结: a satisfied callback, then the case is closed after checking it
    ops.until(
        lambda p: p.query_selector("#incident-head [data-status='resolved']"),
        f"#/incident/{incident}",
        "#incident-head",
    )
    ops.page.select_option("#callback-outcome", "satisfied")
    ops.page.fill("#callback-reason", "市民表示满意 / the citizen is satisfied")
    ops.page.click("#do-callback")
    ops.page.wait_for_selector("#toast div:has-text('回访')")
    ops.page.wait_for_selector("#actions")
    ops.page.select_option("#close-verification", "callback")
    ops.page.fill("#close-reason", "回访满意，办结 / closed after the callback")
    ops.page.click("#do-close")
    ops.until(
        lambda p: p.query_selector("#incident-head [data-status='closed']"),
        f"#/incident/{incident}",
        "#incident-head",
    )
    timeline = ops.page.inner_text("#timeline")
    assert "close applied" in timeline and "值班长 张敏" in timeline
    ops.shot("incident-closed")
    ops.page.click("#lang")
    ops.page.wait_for_selector("#incident-head h2:has-text('Incident')")
    assert "Incident" in ops.page.inner_text("#incident-head")
    ops.shot("incident-closed-english")
    ops.go("#/map", "#map .leaflet-overlay-pane canvas")
    ops.shot("map")

    # the citizen's app sees it closed
    shown = httpx.get(f"{api_url}/open311/v2/requests/{request_id}.json", timeout=10).json()[0]
    assert shown["status"] == "closed", shown
    assert ops.errors == dept.errors == ops.refused == [], (ops.errors, dept.errors, ops.refused)
    # the department's refusals are the two it was meant to get: the task, the command
    assert {re.sub(r".*status of (\d+).*", r"\1", r) for r in dept.refused} == {"404", "403"}
    assert worker.alive()


def _incident_of(stack: Settings, event_id: str, worker: Any) -> str:
    def find() -> str | None:
        with psycopg.connect(stack.conninfo()) as conn:
            row = conn.execute(
                "SELECT incident_id FROM incident_reports WHERE event_id = %s", (event_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    assert wait_for(lambda: find() is not None, 120), worker.log()[-3000:]
    found = find()
    assert found is not None
    return found


def _task_of(stack: Settings, incident_id: str, department: str) -> str:
    with psycopg.connect(stack.conninfo()) as conn:
        row = conn.execute(
            "SELECT dispatch_id FROM dispatches WHERE incident_id = %s AND department = %s",
            (incident_id, department),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _other_departments_task(stack: Settings) -> str:
    """A task of the fire brigade (made here: the run may have none)."""
    run = uuid.uuid4().hex[:8]
    incident, dispatch = f"inc-c-{run}", f"dsp-c{run}"
    now = datetime.now(UTC)
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO incidents (incident_id, category, priority, status, first_seen,"
            " last_seen, reports_total, district) VALUES (%s, 'fire_smoke', 1, 'dispatched',"
            " %s, %s, 1, '310115')",
            (incident, now, now),
        )
        conn.execute(
            "INSERT INTO dispatches (dispatch_id, incident_id, department, status, priority,"
            " category, ack_deadline, resolve_deadline) VALUES (%s, %s, 'fire', 'dispatched',"
            " 1, 'fire_smoke', %s, %s)",
            (dispatch, incident, now + timedelta(minutes=5), now + timedelta(hours=1)),
        )
    return dispatch
