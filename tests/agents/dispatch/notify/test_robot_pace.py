"""A robot's pace (pure): messages over the platform's limit get the next free slots in
the order they came; a "too fast" answer puts the refused message first after the wait
and every held message after it, in order."""

from __future__ import annotations

from citybrain.agents.dispatch.notify.robot import Pace


def test_messages_over_the_limit_get_slots_in_the_order_they_came() -> None:
    pace = Pace(per_minute=20)  # one every 3 s
    assert pace.slot("m1", 100.0) == 100.0  # the first goes at once
    assert [pace.slot(m, 100.5) for m in ("m2", "m3", "m4")] == [103.0, 106.0, 109.0]
    # asked again before their slots: the same slots (kept, not given away)
    assert pace.slot("m3", 104.0) == 106.0 and pace.slot("m2", 101.0) == 103.0
    # at its slot a message goes, and a newcomer comes after every held one
    assert pace.slot("m2", 103.0) == 103.0
    assert pace.slot("m5", 103.1) == 112.0
    assert list(pace.held) == ["m3", "m4", "m5"]


def test_too_fast_puts_the_refused_message_first_after_the_wait() -> None:
    pace = Pace(per_minute=20)
    pace.slot("m1", 0.0)
    held = [pace.slot(m, 0.0) for m in ("m2", "m3")]
    assert held == [3.0, 6.0]
    pace.pause("m1", 60.0, 1.0)  # the platform refused m1 at t=1 for a minute
    order = sorted(pace.held, key=pace.held.__getitem__)
    assert order == ["m1", "m2", "m3"]
    assert pace.held["m1"] == 61.0 and pace.held["m2"] > 61.0
    assert pace.slot("m4", 2.0) > pace.held["m3"]
    assert pace.slot("m1", 61.0) == 61.0  # goes at its time


def test_a_robots_token_and_secret_never_reach_a_log() -> None:
    from citybrain.agents.dispatch.notify.robot import masked
    from citybrain.dispatch.channels import RobotEndpoint

    robot = RobotEndpoint("r", "fire", "dingtalk", "tok-123", "SECabc", None, "zh")
    text = "InvalidURL: https://oapi.dingtalk.com/robot/send?access_token=tok-123&sign=SECabc"
    assert "tok-123" not in masked(text, robot) and "SECabc" not in masked(text, robot)


def test_a_payload_the_templates_cannot_read_is_rejected_not_raised() -> None:
    import asyncio
    from datetime import UTC, datetime

    from citybrain.agents.dispatch.notify import ForPeople
    from citybrain.agents.dispatch.notify.robot import RobotNotifier
    from citybrain.agents.dispatch.store import Outgoing
    from citybrain.dispatch.channels import RobotEndpoint
    from citybrain.dispatch.outbox import Delivery

    people = ForPeople.__new__(ForPeople)
    people.public_url, people.timezone, people.district_names = "http://x", "Asia/Shanghai", {}
    notifier = RobotNotifier.__new__(RobotNotifier)
    notifier.platform = notifier.kind = "wecom"
    notifier.robots = {"r": RobotEndpoint("r", "fire", "wecom", "k", None, None, "zh")}
    notifier.paces, notifier.people = {}, people
    delivery = Delivery(
        delivery_id="dsp-1:created",
        dispatch_id="dsp-1",
        destination="wecom:r",
        created_at=datetime.now(UTC),
    )
    broken = Outgoing(delivery, "fire", "task.created", {"kind": "task.created"})  # no category
    outcome = asyncio.run(notifier.send("r", broken, b"{}"))
    assert outcome.error_kind == "rejected" and "cannot render" in outcome.detail
