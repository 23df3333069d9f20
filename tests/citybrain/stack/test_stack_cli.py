"""`citybrain stack` and `citybrain doctor` against the real local services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack import KafkaService

pytestmark = pytest.mark.integration
CITYBRAIN = str(Path(sys.executable).parent / "citybrain")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CITYBRAIN, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def test_stack_up_twice_then_status_shows_both_services(stack: Settings) -> None:
    for _ in range(2):
        result = cli("stack", "up")
        assert result.returncode == 0, result.stderr
    status = cli("stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "postgres  running 127.0.0.1:" in status.stdout
    assert "kafka     running 127.0.0.1:" in status.stdout
    assert "broker_id: 1" in status.stdout
    assert "version: 4.4" in status.stdout
    assert "timescaledb:" in status.stdout


def test_doctor_passes_on_a_healthy_stack(stack: Settings) -> None:
    result = cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] kafka" in result.stdout


def test_doctor_names_the_broker_address_when_the_broker_is_stopped(stack: Settings) -> None:
    kafka = KafkaService(stack)
    kafka.down()
    try:
        assert cli("stack", "status").returncode == 1
        result = cli("doctor")
        assert result.returncode != 0
        assert f"Kafka broker at {stack.kafka_bootstrap_servers} is not reachable" in result.stdout
        assert "citybrain stack up" in result.stdout
    finally:
        kafka.up()


def test_doctor_names_an_unreachable_database(stack: Settings) -> None:
    result = cli("doctor", env={"CITYBRAIN_DB_PORT": "1"})
    assert result.returncode != 0
    assert "database postgresql://citybrain@127.0.0.1:1/citybrain is not reachable" in result.stdout


def test_stack_down_stops_both_and_up_brings_them_back(stack: Settings) -> None:
    assert cli("stack", "down").returncode == 0
    try:
        status = cli("stack", "status")
        assert status.returncode == 1
        assert "postgres  down" in status.stdout
        assert "kafka     down" in status.stdout
    finally:
        up = cli("stack", "up")
    assert up.returncode == 0, up.stderr
    # ready means ready for consumer groups too: the first group request right after
    # "up" (a bench resetting its group's offsets) once met CoordinatorNotAvailable
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_list)
    try:
        topic = f"stack-test.{os.getpid()}"
        admin.create_topics([NewTopic(topic, 1, 1)])
        admin.alter_group_offsets(
            f"stack-test-{os.getpid()}", {TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)}
        )
        admin.delete_topics([topic])
    finally:
        admin.close()


def test_a_service_that_does_not_come_up_is_named_with_its_log(
    stack: Settings, tmp_path: Path
) -> None:
    from citybrain.stack import StackError
    from tests.conftest import free_port

    broken = stack.model_copy(
        update={
            "data_dir": tmp_path,
            "kafka_bootstrap_servers": f"127.0.0.1:{free_port()}",
            "kafka_controller_port": free_port(),
            "kafka_heap": "1k",  # the JVM refuses to start with this heap
            "stack_timeout": 20.0,
        }
    )
    with pytest.raises(StackError) as info:
        KafkaService(broken).up()
    message = str(info.value)
    assert message.startswith("kafka did not come up at 127.0.0.1:")
    assert str(tmp_path / "log" / "kafka.log") in message
