"""`citybrain worker`: the Faust worker with the stages CITYBRAIN_STAGES names."""

from __future__ import annotations

import os

from citybrain.cli.common import cli_settings as _settings
from citybrain.cli.common import fail as _fail


def worker() -> None:
    """Run the Faust worker with the stages CITYBRAIN_STAGES names (default: all; stops on
    Ctrl-C / SIGTERM)."""
    settings = _settings()
    from citybrain.logs import configure_logging
    from citybrain.metrics import serve_metrics

    configure_logging(settings.log_level, settings.log_format)
    if settings.worker_nice:
        os.nice(settings.worker_nice)  # threads and children started later inherit it
    try:
        serve_metrics(settings.metrics_port, settings.metrics_host)
    except OSError as exc:
        raise _fail(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({exc.strerror}): is "
            "another worker running? Set CITYBRAIN_METRICS_PORT (0 turns metrics off)."
        ) from exc
    from citybrain import agents
    from citybrain.worker import run_worker

    try:
        stages = agents.stage_names(settings.stages)
    except ValueError as exc:
        raise _fail(f"CITYBRAIN_STAGES: {exc}") from exc
    run_worker(settings, stages)
