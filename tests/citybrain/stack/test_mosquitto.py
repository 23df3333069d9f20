"""The local mosquitto: `stack up` starts it (a built-in feed comes by MQTT) and `stack
status` shows it; one of its own (a fresh data folder and port) lets in only its login,
keeps a persistent session's queued QoS 1 messages through a restart, and stops."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack import MosquittoService, services, wants_mqtt
from citybrain.stack.mosquitto import bridge_password
from citybrain.stack.process import port_open
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.integration
CITYBRAIN = str(Path(sys.executable).parent / "citybrain")


def test_stack_up_starts_mosquitto_and_status_shows_it(stack: Settings) -> None:
    assert wants_mqtt(stack)  # manhole-cover comes by MQTT
    assert "mosquitto" in [s.name for s in services(stack)]
    status = MosquittoService(stack).status()
    assert status.running, status.details
    assert status.address == f"{stack.mqtt_host}:{stack.mqtt_port}"
    shown = subprocess.run(
        [CITYBRAIN, "stack", "status"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    assert f"mosquitto running {stack.mqtt_host}:{stack.mqtt_port}" in shown.stdout, shown.stdout
    assert "log: " + str(stack.resolved_log_dir / "mosquitto.log") in shown.stdout


@pytest.fixture
def own(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", mqtt_port=free_port(), stack_timeout=30.0)


def publish(s: Settings, topic: str, message: str, password: str | None = None) -> int:
    return subprocess.run(
        [
            "mosquitto_pub",
            *("-h", s.mqtt_host, "-p", str(s.mqtt_port), "-q", "1"),
            *("-u", s.mqtt_username, "-P", password or bridge_password(s)),
            *("-t", topic, "-m", message),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def subscriber(s: Settings, client_id: str, got: list[bytes], connected: threading.Event) -> object:
    from paho.mqtt.client import CallbackAPIVersion, Client
    from paho.mqtt.enums import MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(s.mqtt_username, bridge_password(s))

    def on_connect(c: Client, *_: object) -> None:
        c.subscribe("t/#", qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: connected.set()
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(s.mqtt_host, s.mqtt_port, clean_start=False, properties=props)
    client.loop_start()
    return client


def test_its_login_only_and_queued_messages_survive_a_restart(own: Settings) -> None:
    service = MosquittoService(own)
    service.up()
    try:
        pid = service.pid()
        assert pid is not None and port_open(own.mqtt_host, own.mqtt_port)
        password_file = own.data_dir / "mosquitto" / "bridge.password"
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        assert publish(own, "t/x", "hi", password="wrong") != 0  # refused
        # a persistent session subscribes, goes away; three QoS 1 messages wait for it
        got: list[bytes] = []
        ready = threading.Event()
        client_id = f"test-{uuid.uuid4().hex[:6]}"
        first = subscriber(own, client_id, got, ready)
        assert ready.wait(10)
        first.disconnect()  # type: ignore[attr-defined]
        first.loop_stop()  # type: ignore[attr-defined]
        for n in range(3):
            assert publish(own, "t/x", f"m{n}") == 0
        service.down()  # a clean stop saves the database
        assert service.pid() is None and not port_open(own.mqtt_host, own.mqtt_port)
        service.up()
        assert service.pid() not in (None, pid)
        again = subscriber(own, client_id, got, threading.Event())
        try:
            assert wait_for(lambda: len(got) >= 3, 15), got
            assert sorted(got) == [b"m0", b"m1", b"m2"]
        finally:
            again.disconnect()  # type: ignore[attr-defined]
            again.loop_stop()  # type: ignore[attr-defined]
    finally:
        service.down()
    assert not port_open(own.mqtt_host, own.mqtt_port)
    log = (own.resolved_log_dir / "mosquitto.log").read_text()
    assert "running" in log


def test_stack_down_with_a_data_dir_of_its_own_stops_its_mosquitto(own: Settings) -> None:
    service = MosquittoService(own)
    service.up()
    env = {
        **os.environ,
        "CITYBRAIN_DATA_DIR": str(own.data_dir),
        "CITYBRAIN_MQTT_PORT": str(own.mqtt_port),
        # nothing of the main stack: ports where nothing listens, a data folder of its own
        "CITYBRAIN_DB_PORT": str(free_port()),
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    down = subprocess.run(
        [CITYBRAIN, "stack", "down"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert service.pid() is None and not port_open(own.mqtt_host, own.mqtt_port)
