"""README agrees with the configuration it describes."""

from __future__ import annotations

import re
from pathlib import Path

from citybrain.dispatch.sla import SLA_FILE, load_sla_policy

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_working_hours_in_the_readme_are_the_shipped_policy_s() -> None:
    policy = load_sla_policy(SLA_FILE)
    said = re.search(r"the shipped policy: Mon–Fri ([0-9:–, ]+)\s+Asia/Shanghai", README)
    assert said, "README no longer states the shipped working hours"
    hours = [h.replace("-", "–") for h in policy.working_hours.hours]
    assert said.group(1).strip() == ", ".join(hours)
    assert policy.working_hours.timezone == "Asia/Shanghai"
    assert list(policy.working_hours.days) == ["mon", "tue", "wed", "thu", "fri"]
