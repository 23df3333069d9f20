"""The stages. A stage is one folder: its thin agent loop(s) (`agent.py`, run by the
stage helper `citybrain.streams.stage`), its store (`store.py`, the SQL it runs) and, for
dispatch, its delivery adapters (`notify/<channel>.py`). Each stage module has an
`install(ctx)` that registers its agents, tables and timers on the worker's app; the
composition root (`citybrain.worker.build_worker`) calls it for the stages a worker runs
(`CITYBRAIN_STAGES`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext

#: Every stage, in the order of the data flow, and the module that installs it (status:
#: departments' reports and operators' task commands; maintenance: partitions and dashboard
#: views; monitor: the pipeline counters; ping: the wiring probe).
STAGES: dict[str, str] = {
    "normalize": "citybrain.agents.normalize.agent",
    "correlate": "citybrain.agents.correlate.agent",
    "persist": "citybrain.agents.persist.agent",
    "dispatch": "citybrain.agents.dispatch.agent",
    "status": "citybrain.agents.dispatch.status",
    "maintenance": "citybrain.agents.maintenance.agent",
    "monitor": "citybrain.agents.monitor.agent",
    "ping": "citybrain.agents.ping.agent",
}


def stage_names(stages: Iterable[str] | str) -> list[str]:
    """The stages named (`all`, or a list / comma-separated names); unknown names are an
    error that names them."""
    if isinstance(stages, str):
        stages = list(STAGES) if stages.strip() == "all" else stages.split(",")
    names = list(dict.fromkeys(s.strip() for s in stages if s.strip()))
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    return names


def install(ctx: StageContext, stages: Iterable[str] | str) -> list[str]:
    """Install the given stages on the context's app."""
    names = stage_names(stages)
    for name in names:
        module = importlib.import_module(STAGES[name])
        cast(Callable[["StageContext"], None], module.install)(ctx)
    return names
