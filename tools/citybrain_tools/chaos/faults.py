"""The faults: kill -9 and restart a worker, hard-kill and restart the broker, stop and
start PostgreSQL. They act only on processes started here and on the stack the settings
name (its pid files and data folder), never on anything found by name."""

from __future__ import annotations

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
        """kill -9: no clean shutdown, no commit on the way out."""
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
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


def kill_broker(settings: Settings) -> None:
    """SIGKILL the stack's broker (by its pid file)."""
    KafkaService(settings).kill()


def start_broker(settings: Settings) -> None:
    KafkaService(settings).up()


def stop_postgres(settings: Settings) -> None:
    """Stop the stack's PostgreSQL at once (immediate mode: like a crash)."""
    PostgresService(settings).kill()


def start_postgres(settings: Settings) -> None:
    PostgresService(settings).up()


def broker_pid(settings: Settings) -> int | None:
    return KafkaService(settings).pid()


def wait(seconds: float) -> None:
    time.sleep(max(0.0, seconds))
