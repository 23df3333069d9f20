"""The feed the telemetry benchmarks measure: a copy of the built-in water-level feed (its
device registry included) that reads a topic of the run's own, in a fresh folder for
CITYBRAIN_FEEDS_DIR."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from citybrain.feeds.definition import BUILTIN_DIR


def water_level_copy(
    feed: str, topic: str, prefix: str, alarms: bool = True
) -> tuple[Path, list[str]]:
    """The folder holding the copy (named `feed`, reading `topic`; without its alarm rules
    unless `alarms`) and the registered gauges' device ids."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "devices").mkdir()
    shutil.copy(BUILTIN_DIR / "devices" / "water-level.csv", work / "devices" / "water-level.csv")
    text = (BUILTIN_DIR / "water-level.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("feed: water-level", f"feed: {feed}")
        .replace("topic: raw.iot.water-level", f"topic: {topic}")
        .replace("samples: samples/water-level.jsonl", "")
    )
    if not alarms:
        text = text.split("alarms:")[0] + "\n"
    (work / f"{feed}.yaml").write_text(text, encoding="utf-8")
    devices = [
        line.split(",")[0]
        for line in (work / "devices" / "water-level.csv").read_text().splitlines()[1:]
    ]
    return work, devices
