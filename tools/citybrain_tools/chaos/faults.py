"""The faults: kill -9 and restart a worker, hard-kill and restart the broker, stop and
start PostgreSQL. They act only on processes started here and on the stack the settings
name (its pid files and data folder), never on anything found by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack.kafka import KafkaService
from citybrain.stack.postgres import PostgresService
from citybrain.stack.process import pid_alive, port_open
from citybrain.streams.watchdog import EXIT_STALLED
from citybrain_tools.bench.proc import free_port
from citybrain_tools.kafka import start_group_at_end


class Worker:
    """A `citybrain worker` subprocess (its own ports, logging to a file)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        #: False once stopped or killed on purpose: its exit is not for a supervisor
        self.wanted = False

    def start(self) -> Worker:
        self.wanted = True
        self.env["CITYBRAIN_WORKER_WEB_PORT"] = str(free_port())
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "citybrain.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no clean shutdown, no commit on the way out; proven (the pid is gone)."""
        self.wanted = False
        if self.proc is None or self.proc.poll() is not None:
            raise FaultNotInjected("the worker to kill is not running")
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if _alive(self.proc.pid):
            raise FaultNotInjected(f"worker pid {self.proc.pid} still runs after SIGKILL")

    def stop(self) -> None:
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(FaultNotInjected):  # it may end by itself meanwhile
                    self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Workers:
    """Workers of one consumer group (a fresh app id), started from the current end of
    every existing topic so that other runs' history is not replayed (committed offsets,
    so nothing after that point is missed whatever the reset policy)."""

    def __init__(
        self, settings: Settings, log_dir: Path, *, supervise: bool = False, **env: str
    ) -> None:
        """`supervise`: start again a worker that exits on its own (as systemd or Kubernetes
        would), recording its exit status in `exits`."""
        self.settings = settings
        self.app_id = f"chaos-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "CITYBRAIN_APP_ID": self.app_id,
            "CITYBRAIN_METRICS_PORT": "0",
            "CITYBRAIN_LOG_FORMAT": "json",
            "CITYBRAIN_KAFKA_SESSION_TIMEOUT": "8",
            # a worker hears of a join or a leave within a second (not 2.7 s): the scenarios
            # rebalance often, and each rebalance waits for the members' next heartbeat
            "CITYBRAIN_KAFKA_HEARTBEAT_INTERVAL": "1",
            **env,
        }
        self.started: list[Worker] = []
        #: workers that exited on their own, as (log path, exit status), restarted here
        self.exits: list[tuple[str, int]] = []
        self._watching = threading.Event()
        start_group_at_end(settings, self.app_id)
        if supervise:
            threading.Thread(target=self._supervise, daemon=True).start()

    @property
    def stall_exits(self) -> int:
        """Workers that the stall watchdog ended (`streams.watchdog`)."""
        return sum(1 for _, status in self.exits if status == EXIT_STALLED)

    def _supervise(self) -> None:
        """The supervisor a deployment has (systemd, Kubernetes): a worker that exits on
        its own is recorded and started again."""
        while not self._watching.wait(0.5):
            for worker in list(self.started):
                proc = worker.proc
                if worker.wanted and proc is not None and proc.poll() is not None:
                    self.exits.append((str(worker.log_path), proc.returncode))
                    worker.start()

    def start(self, **env: str) -> Worker:
        path = self.log_dir / f"{self.app_id}-worker-{len(self.started)}.log"
        worker = Worker({**self.env, **env}, path).start()
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        self._watching.set()
        for worker in self.started:
            worker.stop()


class FaultNotInjected(RuntimeError):
    """The fault a scenario asked for did not happen (nothing to kill, or the service still
    answers): the scenario fails instead of reporting figures of a run without a fault."""


def _refuses(host: str, port: int, within: float = 10.0) -> bool:
    """Whether host:port refuses connections within `within` seconds."""
    deadline = time.monotonic() + within
    while port_open(host, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_broker(settings: Settings) -> int:
    """SIGKILL the stack's broker (by its pid file) and prove it: its pid is gone and its
    port refuses connections. Returns the killed pid. A broker this stack did not start
    (no pid file: `stack up` adopted one already running) cannot be killed: that raises."""
    service = KafkaService(settings)
    pid = service.pid()
    if pid is None:
        raise FaultNotInjected(
            f"no broker pid file under {service.root}: the broker at {service.address} was "
            "not started by this stack, so it cannot be killed"
        )
    service.kill()
    if _alive(pid):
        raise FaultNotInjected(f"the broker (pid {pid}) is still running after SIGKILL")
    if not _refuses(service.host, service.port):
        raise FaultNotInjected(f"{service.address} still accepts connections after the kill")
    return pid


def start_broker(settings: Settings, killed: int | None = None) -> int:
    """Start the broker again; its new pid (which must differ from the killed one)."""
    service = KafkaService(settings)
    service.up()
    pid = service.pid()
    if pid is None or pid == killed:
        raise FaultNotInjected(f"the broker did not start as a new process (pid {pid})")
    return pid


def stop_postgres(settings: Settings) -> None:
    """Stop the stack's PostgreSQL at once (immediate mode: like a crash), and prove it:
    it refuses connections."""
    service = PostgresService(settings)
    if not service.running():
        raise FaultNotInjected("PostgreSQL is not running under this stack: nothing to stop")
    service.kill()
    if not _refuses(settings.db_host, settings.db_port):
        raise FaultNotInjected(
            f"{settings.db_host}:{settings.db_port} still accepts connections after the stop"
        )


def start_postgres(settings: Settings) -> None:
    PostgresService(settings).up()


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie counts as gone)."""
    return pid_alive(pid)


def broker_pid(settings: Settings) -> int | None:
    return KafkaService(settings).pid()


def wait(seconds: float) -> None:
    time.sleep(max(0.0, seconds))
