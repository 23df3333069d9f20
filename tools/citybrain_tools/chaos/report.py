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
    """One block per scenario run: figure, value; with repeated runs, a summary of every
    run of each scenario at the end."""
    lines = []
    for row in rows:
        run = f" (run {row['run']})" if "run" in row else ""
        lines.append(f"== {row['scenario']}{run}: {'OK' if row['ok'] else 'FAILED'}")
        for key, value in row.items():
            if key in ("scenario", "ok", "run"):
                continue
            if isinstance(value, list):
                value = "; ".join(map(str, value)) or "-"
            if isinstance(value, str) and "\n" in value:  # a diagnosis: a block of its own
                lines.append(f"  {key}:")
                lines.extend(f"    {line}" for line in value.splitlines())
                continue
            lines.append(f"  {key:<28} {value}")
    if any("run" in row for row in rows):
        lines.extend(summary(rows))
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per scenario: runs OK of runs, and each run's verdict and times (never just the best)."""
    lines = ["== every run"]
    for name in dict.fromkeys(r["scenario"] for r in rows):
        runs = [r for r in rows if r["scenario"] == name]
        ok = sum(1 for r in runs if r["ok"])
        lines.append(f"  {name}: {ok}/{len(runs)} OK")
        for r in runs:
            times = ", ".join(
                f"{k} {r[k]}" for k in ("settle_s", "seconds") if r.get(k) is not None
            )
            figures = ", ".join(
                f"{k} {r[k]}"
                for k in ("joins", "leaves", "kills", "lost", "side_lost", "stall_exits", "repeats")
                if k in r
            )
            verdict = "OK" if r["ok"] else "FAILED"
            lines.append(f"    run {r.get('run', 1)}: {verdict}; {times}; {figures}")
    return lines


def render(rows: list[dict[str, Any]], as_json: bool) -> str:
    return json.dumps(rows, indent=2) if as_json else table(rows)
