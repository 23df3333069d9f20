"""A fault scenario proves its fault happened: a broker this stack did not start (no pid
file) or a database that is not running cannot be "killed", and that fails the scenario
instead of reporting figures of a run without a fault."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain.settings import Settings
from citybrain_tools.chaos import faults
from citybrain_tools.chaos.scenarios import BrokerKill, DatabaseStop


def elsewhere(tmp_path: Path) -> Settings:
    """A stack folder with no pid files, its services on ports nobody listens on."""
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
        db_port=1,
    )


def test_an_adopted_broker_cannot_be_killed_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(faults.FaultNotInjected, match="not started by this stack"):
        faults.kill_broker(elsewhere(tmp_path))


def test_a_database_not_running_here_cannot_be_stopped(tmp_path: Path) -> None:
    with pytest.raises(faults.FaultNotInjected, match="not running"):
        faults.stop_postgres(elsewhere(tmp_path))


def test_a_killed_process_is_told_from_a_running_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert faults._alive(child.pid)
    child.kill()
    child.wait(10)
    assert not faults._alive(child.pid)
    assert faults._alive(os.getpid())


def test_without_its_proof_a_fault_scenario_does_not_pass() -> None:
    settled = {"settled": True}
    assert not BrokerKill(**settled).ok  # no pids: no kill proven
    assert not BrokerKill(**settled, broker_killed_pid=7, broker_new_pid=7).ok
    assert BrokerKill(**settled, broker_killed_pid=7, broker_new_pid=9).ok
    assert not DatabaseStop(**settled).ok
    assert DatabaseStop(**settled, database_refused=True).ok
