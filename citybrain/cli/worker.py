"""`citybrain worker`: the Faust worker with the stages CITYBRAIN_STAGES names."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import typer

from citybrain.cli.common import cli_settings as _settings
from citybrain.cli.common import fail as _fail


def worker(
    role: Annotated[
        Literal["all", "telemetry", "reports"] | None,
        typer.Option(
            help="What this worker is for (CITYBRAIN_WORKER_ROLE): all, or one of the "
            "recommended deployment's two: telemetry (the feeds that send readings, in its "
            "own group, low priority) and reports (everything else)."
        ),
    ] = None,
) -> None:
    """Run the Faust worker with the stages CITYBRAIN_STAGES names (default: all; stops on
    Ctrl-C / SIGTERM). 以角色运行：--role telemetry（遥测）或 --role reports（报警与来电）。"""
    if role is not None:
        os.environ["CITYBRAIN_WORKER_ROLE"] = role
    settings = _settings()
    from citybrain.logs import configure_logging
    from citybrain.metrics import serve_metrics

    configure_logging(settings.log_level, settings.log_format)
    from citybrain.streams.priority import lower_priority

    # threads and children started later inherit it; a worker leading its own session
    # (setsid) gives it to its autogroup too (`streams.priority`)
    priority = lower_priority(settings.worker_nice)
    try:
        serve_metrics(settings.metrics_port, settings.metrics_host)
    except OSError as exc:
        raise _fail(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({exc.strerror}): is "
            "another worker running? Set CITYBRAIN_METRICS_PORT (0 turns metrics off)."
        ) from exc
    from citybrain import agents
    from citybrain.logs import get_logger
    from citybrain.worker import run_worker

    get_logger(__name__).info(
        "worker role", role=settings.worker_role, app_id=settings.app_id, priority=priority
    )

    try:
        stages = agents.stage_names(settings.stages)
    except ValueError as exc:
        raise _fail(f"CITYBRAIN_STAGES: {exc}") from exc
    run_worker(settings, stages)
