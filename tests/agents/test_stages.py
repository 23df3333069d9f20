"""The composition root: a worker runs the stages it is given (CITYBRAIN_STAGES) and only
those; an unknown stage is refused by name before the worker starts; importing the
runtime does no I/O and registers nothing."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain import agents
from citybrain.settings import Settings
from citybrain.worker import build_worker
from tests.conftest import VENV_BIN

#: the agents each stage registers (a stage's folder may hold several)
AGENTS = {
    "normalize": None,  # one per feed: normalize-<feed>
    "correlate": {"correlate-route", "correlate-commands", "correlate"},
    "persist": {"persist-events"},
    "dispatch": {"dispatch"},
    "status": {"dispatch-status", "dispatch-commands"},
    "maintenance": set(),
    "monitor": set(),
    "ping": {"ping-recorder"},
}


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, app_id="stages-test")


def test_unknown_stages_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown stage\(s\) normalise, persit; known: normalize"):
        agents.stage_names(["normalise", "persit"])


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("all", list(agents.STAGES)),
        ("status", ["status"]),
        (" dispatch, status ,dispatch", ["dispatch", "status"]),
        (["ping"], ["ping"]),
    ],
)
def test_stage_names(given: str | list[str], names: list[str]) -> None:
    assert agents.stage_names(given) == names


@pytest.mark.parametrize("stage", [s for s in AGENTS if s != "normalize"])
def test_a_worker_built_with_one_stage_has_only_that_stage_s_agents(
    stage: str, tmp_path: Path
) -> None:
    worker = build_worker(settings(tmp_path), stage)
    assert set(worker.app.agents) == AGENTS[stage]
    assert worker.stages == [stage]


def test_a_status_worker_loads_no_feed_and_no_city_pack_when_built(tmp_path: Path) -> None:
    worker = build_worker(settings(tmp_path), "status")
    loaded = set(vars(worker.context))
    assert not loaded & {"feeds", "pack", "geotagger", "gazetteer"}


def test_the_normalize_stage_has_an_agent_per_feed_and_loads_its_configuration_once(
    tmp_path: Path,
) -> None:
    worker = build_worker(settings(tmp_path), "normalize,correlate")
    feeds = worker.context.feeds
    assert {f"normalize-{f.name}" for f in feeds} <= set(worker.app.agents)
    assert worker.context.feeds is feeds


def test_two_workers_in_one_process_are_independent(tmp_path: Path) -> None:
    one = build_worker(settings(tmp_path), "ping")
    two = build_worker(settings(tmp_path), "persist")
    assert set(one.app.agents) == {"ping-recorder"}
    assert set(two.app.agents) == {"persist-events"}


def test_every_stage_module_has_an_install() -> None:
    for module in agents.STAGES.values():
        assert callable(importlib.import_module(module).install)


def test_importing_the_runtime_does_no_io(tmp_path: Path) -> None:
    """Every module of citybrain.agents and citybrain.streams, and the composition root,
    imported in a fresh process with a data folder that does not exist: it still does not."""
    data = tmp_path / "data"
    code = (
        "import importlib, pkgutil, citybrain.agents, citybrain.streams, citybrain.worker\n"
        "for pkg in (citybrain.agents, citybrain.streams):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
    )
    env = {**os.environ, "CITYBRAIN_DATA_DIR": str(data)}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert not data.exists()


def test_the_worker_refuses_an_unknown_stage_before_it_starts() -> None:
    run = subprocess.run(
        [str(VENV_BIN / "citybrain"), "worker"],
        env={
            **os.environ,
            "CITYBRAIN_STAGES": "normalize,dispatcher",
            "CITYBRAIN_METRICS_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "CITYBRAIN_STAGES: unknown stage(s) dispatcher" in run.stderr
