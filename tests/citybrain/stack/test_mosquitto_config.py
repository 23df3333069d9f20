"""The local mosquitto's configuration (pure): its own port and files, logins only from its
password file, persistence, queues that never drop for a bridge away for a while, and a
payload limit below what one Kafka record carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.settings import Settings
from citybrain.stack.mosquitto_config import (
    KAFKA_MAX_REQUEST,
    MESSAGE_SIZE_LIMIT,
    mosquitto_conf,
    place,
)

WHERE = place("127.0.0.1", 18830, Path("/d"), Path("/d/log"))


def options(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out.setdefault(name, []).append(value)
    return out


def test_its_files_are_under_the_data_dir_and_the_log_beside_the_others() -> None:
    conf = options(mosquitto_conf(WHERE))
    assert conf["listener"] == ["18830 127.0.0.1"]
    assert conf["password_file"] == ["/d/mosquitto/passwd"]
    assert conf["persistence_location"] == ["/d/mosquitto/data/"]
    assert conf["pid_file"] == ["/d/mosquitto/mosquitto.pid"]
    assert conf["log_dest"] == ["file /d/log/mosquitto.log"]
    assert WHERE.bridge_password_file == Path("/d/mosquitto/bridge.password")


def test_only_its_users_log_in_and_queued_messages_survive_a_restart() -> None:
    conf = options(mosquitto_conf(WHERE))
    assert conf["allow_anonymous"] == ["false"]
    assert conf["persistence"] == ["true"]
    assert 0 < int(conf["autosave_interval"][0]) <= 60


def test_queues_are_far_above_the_default_that_drops_and_the_window_is_wide() -> None:
    conf = options(mosquitto_conf(WHERE))
    assert int(conf["max_queued_messages"][0]) >= 1_000_000  # default 1000, then dropped
    assert conf["max_queued_bytes"] == ["0"]  # no byte limit under the count
    assert int(conf["max_inflight_messages"][0]) >= 100  # default 20


def test_a_payload_too_large_for_kafka_still_reaches_the_bridge_to_be_dead_lettered() -> None:
    conf = options(mosquitto_conf(WHERE))
    limit = int(conf["message_size_limit"][0])
    assert limit == MESSAGE_SIZE_LIMIT
    assert KAFKA_MAX_REQUEST < limit <= 64 * 1_048_576  # over a record, bounded memory


def test_as_root_it_drops_to_the_user_given() -> None:
    assert "user" not in options(mosquitto_conf(WHERE))
    assert options(mosquitto_conf(WHERE, "mosquitto"))["user"] == ["mosquitto"]


def test_the_port_and_host_are_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYBRAIN_MQTT_PORT", raising=False)  # CI may run on other ports
    s = Settings(mqtt_port=18999, mqtt_host="127.0.0.2", data_dir=Path("/x"))
    where = place(s.mqtt_host, s.mqtt_port, s.data_dir, s.resolved_log_dir)
    assert options(mosquitto_conf(where))["listener"] == ["18999 127.0.0.2"]
    assert Settings().mqtt_port == 1883
