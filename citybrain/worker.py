"""The composition root: a worker built from settings.

`build_worker(settings, stages)` creates the Faust app, the stages' shared context (the
city pack and the configuration, loaded once) and installs the stages the worker runs.
Nothing is registered at import time anywhere: two workers built in one process are
independent, and a worker built with `stages="status"` has only that stage's agents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from citybrain import agents
from citybrain.agents.context import StageContext
from citybrain.logs import get_logger
from citybrain.settings import Settings
from citybrain.streams.app import App, create_app
from citybrain.streams.health import install_probes
from citybrain.streams.replication import TopicPolicy


@dataclass(frozen=True)
class Worker:
    """A built worker: its app (run it with `faust.Worker(app)`), context and stages."""

    app: App
    context: StageContext
    stages: list[str]


def build_worker(
    settings: Settings,
    stages: Iterable[str] | str | None = None,
    policy: TopicPolicy | None = None,
) -> Worker:
    """The app with the given stages installed (default: the settings' `stages`), its
    topics made as `policy` says (default: the settings' own, unresolved). Unknown stage
    names raise `ValueError` before anything is built."""
    names = agents.stage_names(settings.stages if stages is None else stages)
    app = create_app(settings, policy)
    install_probes(app, settings)  # /healthz and /readyz on the worker's web port
    context = StageContext(app, settings)
    agents.install(context, names)
    return Worker(app, context, names)


def run_worker(settings: Settings, stages: Iterable[str] | str | None = None) -> None:
    """Ask the cluster for its size (the topic policy, `streams.replication`), build the
    worker and run it until Ctrl-C / SIGTERM (Faust's worker loop). A refused login, a
    policy the cluster cannot give or a cluster that never answers ends it with the reason."""
    from citybrain.streams.clients import KafkaLoginError
    from citybrain.streams.replication import PolicyError, resolve_policy
    from citybrain.streams.runtime import Worker as FaustWorker
    from citybrain.streams.runtime import tune_gc

    try:
        policy = resolve_policy(settings)
    except (KafkaLoginError, PolicyError, RuntimeError) as exc:
        get_logger(__name__).error("worker cannot start", error=str(exc))
        raise SystemExit(f"citybrain worker: {exc}") from exc
    worker = build_worker(settings, stages, policy)
    get_logger(__name__).info(
        "worker built", stages=worker.stages, agents=sorted(worker.app.agents)
    )
    tune_gc()  # after the stages and their configuration are loaded
    FaustWorker(  # faust's, with SIGUSR2 logging every task (`streams.runtime`)
        worker.app, loglevel=settings.log_level.lower(), override_logging=False
    ).execute_from_commandline()
