"""`bridge-kill`: unique QoS 1 alarms published to the MQTT broker at a steady rate while
`citybrain bridge mqtt` is killed (-9) again and again, each kill proven (the pid gone)
and the bridge started again at once.

The run's messages belong to a feed of its own (`chaos-mqtt`, the smoke-alarm mapping
declared `transport: {mqtt: {topic: chaos/+/alarm}}`, in a folder given to the bridge and
the worker as CITYBRAIN_FEEDS_DIR), so that every message is one event. The figures: lost
(every published message is an event row and on the raw topic), the repeats (copies
written to Kafka by a bridge killed between Kafka's acknowledgement and its PUBACK) and
that event-id idempotency absorbed them (one row per message), plus what every traffic
scenario counts (`scenarios.Common`).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from citybrain.feeds.definition import BUILTIN_DIR
from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack.mosquitto import bridge_password
from citybrain.streams.clients import kafka_python_options
from citybrain_tools import kafka
from citybrain_tools.bench.proc import free_port
from citybrain_tools.chaos import faults, traffic
from citybrain_tools.chaos.scenarios import BridgeKill, Progress, _finish, _log_dir, _quiet

FEED = "chaos-mqtt"
RAW_TOPIC = f"raw.iot.{FEED}"


def feed_folder(root: Path) -> Path:
    """A folder with the run's feed: the smoke-alarm mapping, by MQTT on chaos/+/alarm."""
    folder = root / "feeds"
    folder.mkdir(parents=True, exist_ok=True)
    text = (BUILTIN_DIR / "smoke-alarm.yaml").read_text(encoding="utf-8")
    text = text.replace("feed: smoke-alarm", f"feed: {FEED}", 1)
    text = text.replace("topic: raw.iot.smoke-alarm", f"topic: {RAW_TOPIC}", 1)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("samples:"))
    text += '\ntransport: {mqtt: {topic: "chaos/+/alarm", qos: 1}}\n'
    (folder / f"{FEED}.yaml").write_text(text, encoding="utf-8")
    return folder


def ensure_topic(settings: Settings) -> None:
    """The raw topic exists before the workers' group is started at every topic's end."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_list, **kafka_python_options(settings)
    )
    try:
        if RAW_TOPIC not in admin.list_topics():
            with contextlib.suppress(Exception):  # made meanwhile by someone else
                admin.create_topics([NewTopic(RAW_TOPIC, settings.topic_partitions, 1)])
    finally:
        admin.close()


class Bridge:
    """`citybrain bridge mqtt` as a subprocess of this run (its client id, its log)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Bridge:
        self.env["CITYBRAIN_BRIDGE_METRICS_PORT"] = str(free_port())
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "citybrain.cli", "bridge", "mqtt"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        return self

    def subscribed_count(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count('"bridge_subscribed"')
        except OSError:
            return 0

    def kill(self) -> int:
        """kill -9, proven: the pid is gone. Returns the pid."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise faults.FaultNotInjected("the bridge to kill is not running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if faults._alive(proc.pid):
            raise faults.FaultNotInjected(f"bridge pid {proc.pid} still runs after SIGKILL")
        return proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Publisher:
    """Publishes the run's alarms at `rate`/s, QoS 1, in a thread; `acked` counts those the
    broker acknowledged."""

    def __init__(self, settings: Settings, run: str, items: list[bytes], rate: float) -> None:
        self.settings, self.run, self.items, self.rate = settings, run, items, rate
        self.acked = 0
        self.error: str | None = None
        self.done = threading.Event()

    def start(self) -> Publisher:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client

        client = Client(CallbackAPIVersion.VERSION2, client_id=f"chaos-pub-{self.run}")
        client.username_pw_set(self.settings.mqtt_username, bridge_password(self.settings))
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        lock = threading.Lock()

        def on_publish(*_: Any) -> None:
            with lock:
                self.acked += 1

        client.on_publish = on_publish
        try:
            client.connect(self.settings.mqtt_host, self.settings.mqtt_port)
            client.loop_start()
            started = time.monotonic()
            topic = f"chaos/{self.run}/alarm"
            for n, payload in enumerate(self.items, 1):
                client.publish(topic, payload, qos=1)
                ahead = started + n / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            deadline = time.monotonic() + 120
            while self.acked < len(self.items) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.acked < len(self.items):
                self.error = f"the broker acknowledged {self.acked} of {len(self.items)}"
            client.disconnect()
            client.loop_stop()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()


def raw_copies(settings: Settings, run: str, start: dict[Any, int]) -> Counter[bytes]:
    """How often each of the run's messages is on the raw topic (by its device id)."""
    needle = f'"deviceSerial": "CH{run}-'.encode()
    copies: Counter[bytes] = Counter()
    for message in kafka.messages_after(settings, [RAW_TOPIC], start):
        if needle in message.value:
            copies[message.key] += 1
    return copies


def bridge_kill(
    settings: Settings,
    events: int = 5000,
    rate: float = 200.0,
    kills: int = 5,
    every: tuple[float, float] = (3.0, 6.0),
    down_for: float = 1.0,
    per_site: int = 100,
    timeout: float = 600.0,
    progress: Progress = _quiet,
) -> BridgeKill:
    """Publish `events` unique alarms at `rate`/s; kill -9 the bridge `kills` times, every
    `every` seconds (uniform), starting it again `down_for` s later."""
    from citybrain.ingest.mqtt_bridge import forget_session

    result = BridgeKill()
    run = traffic.new_run_id()
    root = _log_dir(settings) / f"bridge-{run}"
    root.mkdir(parents=True, exist_ok=True)
    feeds = feed_folder(root)
    ensure_topic(settings)
    start = kafka.end_offsets(settings, [RAW_TOPIC])
    workers = faults.Workers(settings, root, CITYBRAIN_FEEDS_DIR=str(feeds))
    client_id = f"chaos-bridge-{run}"
    env = {
        **os.environ,
        "CITYBRAIN_FEEDS_DIR": str(feeds),
        "CITYBRAIN_MQTT_CLIENT_ID": client_id,
        "CITYBRAIN_LOG_FORMAT": "json",
    }
    bridge = Bridge(env, root / "bridge.log")
    started = time.monotonic()
    try:
        workers.start()
        bridge.start()
        if not traffic.wait_until(lambda: bridge.subscribed_count() >= 1, 60, 0.2):
            raise faults.FaultNotInjected(f"the bridge did not subscribe; see {bridge.log_path}")
        items = [v for _, v in traffic.records(run, events, per_site)]
        publisher = Publisher(settings, run, items, rate).start()
        rng = random.Random()  # noqa: S311 - kill timing, not cryptography
        while result.kills < kills and not publisher.done.is_set():
            if publisher.done.wait(rng.uniform(*every)):
                break
            result.killed_pids.append(bridge.kill())
            result.kills += 1
            progress(
                f"bridge kill {result.kills}: pid {result.killed_pids[-1]} gone "
                f"({publisher.acked}/{events} published)"
            )
            time.sleep(down_for)
            bridge.start()
        publisher.done.wait(timeout)
        result.published = publisher.acked
        result.publish_error = publisher.error
        progress(f"published {publisher.acked}/{events}; waiting for every event")
        _finish(result, settings, run, events, per_site, started, timeout)
        copies = raw_copies(settings, run, start)
        result.on_raw_topic = sum(copies.values())
        result.missing_on_raw_topic = events - len(copies)
        result.repeats = sum(n - 1 for n in copies.values())
        result.repeated_messages = sum(1 for n in copies.values() if n > 1)
        result.event_rows = traffic.landed(settings, run, per_site).rows
        progress(
            f"{result.on_raw_topic} records on {RAW_TOPIC} for {events} messages: "
            f"{result.repeats} repeats, {result.event_rows} event rows"
        )
    finally:
        bridge.stop()
        workers.stop_all()
        with contextlib.suppress(Exception):
            forget_session(settings, client_id)
    return result
