"""The figures of chaos scenarios as a table or JSON; `ok` says whether every lost and
duplicate figure is 0 (and each scenario's own checks held)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def as_dict(name: str, result: Any) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data.pop("recoveries_s", None)
    return {"scenario": name, "ok": bool(result.ok), **data}


def table(rows: list[dict[str, Any]]) -> str:
    """One block per scenario: figure, value."""
    lines = []
    for row in rows:
        lines.append(f"== {row['scenario']}: {'OK' if row['ok'] else 'FAILED'}")
        for key, value in row.items():
            if key in ("scenario", "ok"):
                continue
            if isinstance(value, list):
                value = "; ".join(map(str, value)) or "-"
            lines.append(f"  {key:<28} {value}")
    return "\n".join(lines)


def render(rows: list[dict[str, Any]], as_json: bool) -> str:
    return json.dumps(rows, indent=2) if as_json else table(rows)
