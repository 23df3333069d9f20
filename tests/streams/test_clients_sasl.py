"""Every Kafka client library over SASL_SSL (SCRAM-SHA-512) against the local broker's
SASL listener (`citybrain stack up --sasl`): the platform's login works, a wrong password
and an untrusted certificate are refused with errors naming the setting to fix, and a
worker started with a wrong password ends at once saying so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from pydantic import SecretStr

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.streams.clients import (
    KafkaLoginError,
    aiokafka_options,
    check_login,
    kafka_python_options,
)

pytestmark = pytest.mark.integration


def test_the_platforms_login_reads_and_writes(sasl_stack: Settings) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    cluster = check_login(sasl_stack)
    assert cluster["brokers"]
    topic = f"test.sasl.{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(
        bootstrap_servers=sasl_stack.kafka_bootstrap_list,
        acks="all",
        **kafka_python_options(sasl_stack),
    )
    producer.send(topic, b"over SASL_SSL").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=sasl_stack.kafka_bootstrap_list,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,  # the most it waits for the message
        **kafka_python_options(sasl_stack),
    )
    first = next(iter(consumer), None)  # not the rest of the timeout for more
    consumer.close()
    assert first is not None and first.value == b"over SASL_SSL"


def test_aiokafka_the_apis_client_writes_over_sasl(sasl_stack: Settings) -> None:
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=sasl_stack.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            **aiokafka_options(sasl_stack),
        )
        await producer.start()
        try:
            await producer.send_and_wait(f"test.sasl.{uuid.uuid4().hex[:8]}", b"x")
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_wrong_password_is_refused_naming_the_setting(sasl_stack: Settings) -> None:
    wrong = sasl_stack.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    with pytest.raises(KafkaLoginError) as refused:
        check_login(wrong, timeout_s=5)
    message = str(refused.value)
    assert "CITYBRAIN_KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message


def test_a_broker_certificate_the_client_does_not_trust_is_refused(sasl_stack: Settings) -> None:
    untrusting = sasl_stack.model_copy(update={"kafka_ssl_cafile": None})  # the system's CAs
    with pytest.raises(KafkaLoginError, match="CITYBRAIN_KAFKA_SSL_CAFILE"):
        check_login(untrusting, timeout_s=5)


def test_a_worker_with_a_wrong_password_ends_saying_which_setting(sasl_stack: Settings) -> None:
    assert sasl_stack.kafka_ssl_cafile is not None and sasl_stack.kafka_sasl_username
    env = {
        **os.environ,
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS": sasl_stack.kafka_bootstrap_servers,
        "CITYBRAIN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CITYBRAIN_KAFKA_SASL_USERNAME": sasl_stack.kafka_sasl_username,
        "CITYBRAIN_KAFKA_SASL_PASSWORD": "not-the-password",
        "CITYBRAIN_KAFKA_SSL_CAFILE": str(sasl_stack.kafka_ssl_cafile),
        "CITYBRAIN_APP_ID": f"test-sasl-{uuid.uuid4().hex[:6]}",
        "CITYBRAIN_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "worker"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "CITYBRAIN_KAFKA_SASL_PASSWORD" in done.stdout + done.stderr
