"""A worker runs the stages it is given (CITYBRAIN_STAGES); an unknown stage is refused
by name before the worker starts."""

from __future__ import annotations

import os
import subprocess

import pytest

from citybrain import agents
from tests.conftest import VENV_BIN


def test_unknown_stages_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown stage\(s\) normalise, persit; known: normalize"):
        agents.register(["normalise", "persit"])


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


def test_every_stage_is_a_module_of_the_package() -> None:
    from pathlib import Path

    modules = {p.stem for p in Path(agents.__file__).parent.glob("*.py")} - {"__init__"}
    assert set(agents.STAGES) == modules
