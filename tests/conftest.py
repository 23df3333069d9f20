"""Shared fixtures. Integration tests run against the real local stack, started here
(idempotently) if `deploy/local/test.sh` has not already started it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from citybrain.settings import PROJECT_ROOT, Settings

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll until `check()` is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The local stack, up and migrated. Fails (never skips) if it cannot start."""
    from citybrain.db.migrate import migrate
    from citybrain.stack import up

    up(settings)
    migrate(settings)
    return settings


@pytest.fixture(scope="session")
def sasl_stack(stack: Settings) -> Settings:
    """The local broker with its SASL_SSL listener (`citybrain stack up --sasl`, as the
    test command starts it; restarted with it when it runs without): the settings of a
    client that logs in as the platform's SCRAM user."""
    from citybrain.stack import KafkaService, Shape
    from citybrain.stack.kafka_tls import client_settings

    kafka = KafkaService(stack)
    if not kafka.shape.sasl:
        kafka.down()
        kafka = KafkaService(stack, Shape(kafka.shape.brokers, sasl=True))
        kafka.up()
    return client_settings(stack, kafka.sasl_bootstrap)


#: the test cluster's ports: the main stack's + this
CLUSTER_PORT_OFFSET = 1000


@pytest.fixture(scope="module")
def cluster(stack: Settings) -> Iterator[Settings]:
    """A local cluster of three brokers beside the main stack (its own folders, ports the
    main stack's + 1000), sharing its database; stopped at the end of the module (three
    idle JVMs do not sit through the rest of the suite)."""
    from citybrain.stack import KafkaService, Shape

    host, port = stack.kafka_bootstrap_list[0].rsplit(":", 1)
    settings = stack.model_copy(
        update={
            "data_dir": stack.data_dir / "test-cluster",
            "log_dir": stack.resolved_log_dir / "test-cluster",
            "kafka_controller_port": stack.kafka_controller_port + CLUSTER_PORT_OFFSET,
            "kafka_bootstrap_servers": f"{host}:{int(port) + CLUSTER_PORT_OFFSET}",
            "kafka_heap": "384m",
        }
    )
    kafka = KafkaService(settings, Shape(3))
    kafka.up()
    try:
        yield settings.model_copy(update={"kafka_bootstrap_servers": kafka.address})
    finally:
        # the tests' own throwaway cluster: killed, not shut down (three brokers stopped
        # together can wait out `down`'s 30 s for a quorum that leaves with them)
        kafka.kill()


TSDB_DIR = PROJECT_ROOT / "deploy" / "local" / "timescale"


@pytest.fixture(scope="session")
def timescale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real TimescaleDB (the WebAssembly build) on a free port, in memory, migrated.

    Settings point at it with the `insert` write method (its COPY FROM STDIN is broken).
    Fails, never skips, when the Node packages are missing: bootstrap installs them."""
    from citybrain.db.migrate import migrate

    assert (TSDB_DIR / "node_modules").is_dir(), (
        f"run deploy/local/bootstrap.sh: {TSDB_DIR}/node_modules is missing"
    )
    port = free_port()
    log_path = tmp_path_factory.mktemp("tsdb") / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=TSDB_DIR,
        env={
            **os.environ,
            "CITYBRAIN_TSDB_PORT": str(port),
            "CITYBRAIN_TSDB_DATA_DIR": "memory://",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = wait_for(
            lambda: b"ready on" in log_path.read_bytes() or proc.poll() is not None, 120
        )
        assert ready and proc.poll() is None, log_path.read_text(errors="replace")
        settings = Settings(
            database_url=f"postgresql://postgres:any@127.0.0.1:{port}/postgres?sslmode=disable",
            db_write_method="insert",
            db_prepared_statements=False,  # one shared backend: prepared names would clash
        )
        migrate(settings)
        yield settings
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


class WorkerProcess:
    """A `citybrain worker` subprocess with its own consumer group and ports."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "citybrain"), "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> WorkerProcess:
        """Until the worker has its partitions and has recovered its tables (Faust logs
        "Worker ready" then); fails with the log's tail if it exits or takes longer."""
        wait_for(lambda: b"Worker ready" in self.log_path.read_bytes() or not self.alive(), timeout)
        assert self.alive() and b"Worker ready" in self.log_path.read_bytes(), self.log()[-3000:]
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        """kill -9: no clean shutdown, no offset commit on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker_factory(stack: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers with a fresh app id (consumer group); all are stopped afterwards."""
    started: list[WorkerProcess] = []
    app_id = f"test-{uuid.uuid4().hex[:8]}"

    def make(**extra_env: str) -> WorkerProcess:
        env = {
            **os.environ,
            "CITYBRAIN_APP_ID": app_id,
            "CITYBRAIN_WORKER_WEB_PORT": str(free_port()),
            "CITYBRAIN_METRICS_PORT": "0",
            "CITYBRAIN_LOG_FORMAT": "json",
            "CITYBRAIN_KAFKA_SESSION_TIMEOUT": "8",
            **extra_env,
        }
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()
