"""The stages, one module each. An agent is a thin loop: take a batch, call pure
functions, emit. `register` imports the stages a worker runs, which registers their
agents, tables and timers on `streams.app.app`; a worker runs all of them by default
(`CITYBRAIN_STAGES`)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

#: Every stage, in the order of the data flow (status: departments' reports; maintenance:
#: partitions and dashboard views; monitor: the pipeline counters; ping: the wiring probe).
STAGES = (
    "normalize",
    "correlate",
    "persist",
    "dispatch",
    "status",
    "maintenance",
    "monitor",
    "ping",
)


def register(stages: Iterable[str] = STAGES) -> list[str]:
    """Import (and so register) the given stages; unknown names are an error."""
    names = list(dict.fromkeys(stages))
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    for name in names:
        importlib.import_module(f"citybrain.agents.{name}")
    return names
