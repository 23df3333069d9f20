"""A worker's niceness counts against the other processes, not only within its session: a
process that leads its own session gives it to its autogroup too (run in child processes,
so the test runner keeps its own priority)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import json, os
from pathlib import Path
from citybrain.streams.priority import lower_priority
done = lower_priority({nice}, own_session={own})
group = Path("/proc/self/autogroup")
print(json.dumps({{
    "done": done,
    "leads_session": os.getsid(0) == os.getpid(),
    "nice": os.nice(0),
    "autogroup": group.read_text().strip() if group.exists() else None,
}}))
"""


def _child(nice: int, own: bool) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(nice=nice, own=own)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


def test_a_child_in_a_session_of_its_own_gives_its_niceness_to_its_autogroup() -> None:
    before = os.nice(0)
    got = _child(7, own=True)
    assert got["leads_session"] is True
    assert got["nice"] == min(19, before + 7)
    if Path("/proc/self/autogroup").exists():
        assert str(got["autogroup"]).endswith("nice 7")
        assert "autogroup nice 7" in str(got["done"])


def test_a_process_in_the_callers_session_leaves_the_session_alone() -> None:
    mine = Path("/proc/self/autogroup")
    before = mine.read_text() if mine.exists() else None
    got = _child(3, own=False)
    assert got["leads_session"] is False and got["done"] == "nice 3"
    if before is not None:  # the caller's (this session's) group kept its niceness
        assert mine.read_text() == before


@pytest.mark.parametrize("nice", [0, -1])
def test_no_niceness_changes_nothing(nice: int) -> None:
    assert _child(nice, own=True)["done"] == "unchanged"
