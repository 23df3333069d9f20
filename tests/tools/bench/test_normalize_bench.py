"""The normalize bench's steady phase starts when the last worker logged "Worker ready"."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from citybrain_tools.bench.normalize import last_ready


def _line(event: str, at: str) -> str:
    return json.dumps({"event": event, "level": "info", "timestamp": at})


def test_the_last_ready_of_all_workers_counts(tmp_path: Path) -> None:
    (tmp_path / "worker-0.log").write_text(
        "\n".join(
            [
                _line("[^---Recovery]: Worker ready", "2026-12-01T10:00:01Z"),
                "a line that is not JSON, Worker ready",
                _line("[^---Recovery]: Worker ready", "2026-12-01T10:00:09Z"),  # rebalanced
            ]
        )
    )
    (tmp_path / "worker-1.log").write_text(
        _line("[^---Recovery]: Worker ready", "2026-12-01T10:00:07Z")
    )
    expected = datetime.fromisoformat("2026-12-01T10:00:09+00:00").timestamp()
    assert last_ready(sorted(tmp_path.glob("worker-*.log"))) == expected


def test_no_ready_worker_gives_zero(tmp_path: Path) -> None:
    (tmp_path / "worker-0.log").write_text(_line("starting", "2026-12-01T10:00:01Z"))
    assert last_ready([tmp_path / "worker-0.log"]) == 0.0
