"""Storage modes: TimescaleDB when the extension is there, plain PostgreSQL when not.

A migration file is split into sections by `-- citybrain:mode all|timescale|plain` lines;
`render` keeps the sections of one mode (pure, unit-tested). Lines before the first
marker belong to every mode. A `/* citybrain:partition-by col */` marker after a CREATE
TABLE becomes `PARTITION BY RANGE (col)` in plain mode and nothing in TimescaleDB mode
(where a later `create_hypertable` partitions the table), so a time-partitioned table is
declared once for both modes.
"""

from __future__ import annotations

import re
from typing import Literal

Mode = Literal["timescale", "plain"]
MODES: tuple[Mode, ...] = ("timescale", "plain")
_MARKER = re.compile(r"^--\s*citybrain:mode\s+(\w+)\s*$")
_PARTITION_BY = re.compile(r"/\*\s*citybrain:partition-by\s+(\w+)\s*\*/")


class ModeError(ValueError):
    """A migration names an unknown mode, or the database is in another mode."""


def render(sql: str, mode: Mode, source: str = "<migration>") -> str:
    """The statements of `sql` that apply to `mode`."""
    keep = True
    out: list[str] = []
    for number, line in enumerate(sql.splitlines(), start=1):
        match = _MARKER.match(line.strip())
        if match:
            section = match[1]
            if section not in ("all", *MODES):
                raise ModeError(f"{source}:{number}: unknown mode {section!r}")
            keep = section in ("all", mode)
            out.append("")  # keep line numbers stable for error messages
            continue
        out.append(line if keep else "")
    # a time-partitioned table: a hypertable later in TimescaleDB mode, range partitions here
    partition = r"PARTITION BY RANGE (\1)" if mode == "plain" else ""
    return _PARTITION_BY.sub(partition, "\n".join(out))


def choose_mode(requested: str, timescale_available: bool) -> Mode:
    """The mode to use for a requested setting (`auto`, `timescale`, `plain`)."""
    if requested == "auto":
        return "timescale" if timescale_available else "plain"
    if requested == "timescale" and not timescale_available:
        raise ModeError(
            "CITYBRAIN_DB_MODE=timescale but the timescaledb extension is not available on "
            "this server; install TimescaleDB or use CITYBRAIN_DB_MODE=plain"
        )
    if requested not in MODES:
        raise ModeError(f"unknown CITYBRAIN_DB_MODE {requested!r}: use auto, timescale or plain")
    return requested
