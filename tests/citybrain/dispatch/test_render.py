"""Task messages rendered for people (pure): every event in both languages from real
planner payloads, the city's time, masking, each platform's form and length."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from citybrain.dispatch.plan import plan_incident
from citybrain.dispatch.render import LIMIT_BYTES, fit, render, robot_message
from tests.citybrain.dispatch.test_plan import CTX, T0, incident

KINDS = [
    "task.created",
    "task.updated",
    "task.reopened",
    "task.reminder",
    "task.escalated",
    "task.urged",
    "task.cancelled",
]


def _payload(**extra: Any) -> dict[str, Any]:
    plan = plan_incident(incident("gas_leak", 1), {}, CTX, T0)
    lead = next(m for m in plan.messages if m.payload["role"] == "lead")
    return {**lead.payload, **extra}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_event_renders_in_both_languages(kind: str, language: str) -> None:
    payload = _payload(kind=kind, deadline=T0.isoformat(), urged_by="值班长", reason="群众再次来电")
    message = render(payload, language=language, console_url="https://city.example/")  # type: ignore[arg-type]
    label = "燃气泄漏" if language == "zh" else "gas leak"
    assert label in message.title
    assert message.link == f"https://city.example/console/#/task/{payload['dispatch_id']}"
    assert any(
        f"/api/v1/tasks/{payload['dispatch_id']}/acknowledge" in line for line in message.lines
    )
    assert "{" not in message.title + "".join(message.lines)  # every placeholder filled


def test_deadlines_are_in_the_citys_time() -> None:
    payload = _payload(ack_deadline="2026-12-05T06:30:00+00:00")
    lines = "\n".join(render(payload).lines)
    assert "12-05 14:30" in lines
    assert "12-05 06:30" in "\n".join(render(payload, timezone="UTC").lines)


def test_numbers_in_free_text_are_masked_and_an_unplaced_report_says_so() -> None:
    payload = _payload(kind="task.urged", urged_by="ops", reason="来电人 13912345678 说又漏气了")
    payload["details"] = {**payload["details"], "address": "丰庆路 88 号 电话 021-58881234"}
    text = "\n".join(render(payload).lines)
    assert "13912345678" not in text and "58881234" not in text
    unplaced = _payload()
    unplaced["details"] = {**unplaced["details"], "location_status": "needs_location"}
    assert "位置待定" in "\n".join(render(unplaced).lines)


def test_each_platform_gets_its_own_form() -> None:
    message = render(_payload(), console_url="https://city.example")
    wecom = robot_message("wecom", message)
    assert wecom["msgtype"] == "markdown" and message.title in wecom["markdown"]["content"]
    ding = robot_message("dingtalk", message)
    assert ding["markdown"]["title"] == message.title
    feishu = robot_message("feishu", message)
    rows = feishu["content"]["post"]["zh_cn"]["content"]
    assert rows[-1] == [
        {"tag": "a", "text": "查看工单", "href": message.link},
        {"tag": "a", "text": "地图位置", "href": message.map_link},
    ]
    assert (
        message.map_link == f"https://city.example/console/#/incident/{_payload()['incident_id']}"
    )


@pytest.mark.parametrize("form", ["wecom", "dingtalk", "email"])
def test_a_message_too_long_is_cut_at_a_line_and_says_so(form: str) -> None:
    long = "\n".join(f"第 {n} 条报告：某小区门口井盖缺失，行人经过有危险" for n in range(400))
    cut = fit(long, form)  # type: ignore[arg-type]
    assert len(cut.encode()) <= LIMIT_BYTES[form]  # type: ignore[index]
    if len(long.encode()) > LIMIT_BYTES[form]:  # type: ignore[index]
        assert cut.endswith("请打开工单查看）")
        assert all(line in long.split("\n") for line in cut.split("\n")[:-1])


def test_a_feishu_post_too_long_is_cut_too() -> None:
    payload = _payload(kind="task.urged", urged_by="ops", reason="很长的说明" * 3000)
    message = render(payload, console_url="https://city.example")
    post = robot_message("feishu", message)
    assert len(orjson.dumps(post)) <= LIMIT_BYTES["feishu"] + 2_000  # the JSON around it
    rows = post["content"]["post"]["zh_cn"]["content"]
    assert rows[0][0]["text"].startswith("ops 催办") and rows[-1][0]["tag"] == "a"
