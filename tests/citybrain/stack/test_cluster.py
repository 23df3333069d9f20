"""The local cluster of three brokers (`citybrain stack up --brokers 3`): every broker
registered, the topic policy from its size (3 replicas, min.insync.replicas 2), the
topics a worker creates made by it, and an existing topic that differs warned about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack import KafkaService
from citybrain.streams.replication import describe, resolve_policy
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_three_brokers_and_the_policy_they_allow(cluster: Settings) -> None:
    kafka = KafkaService(cluster)
    status = kafka.status()
    assert status.running, status.details
    assert status.details["broker_id"] == "1,2,3"
    policy = resolve_policy(cluster, wait_s=30)
    assert (policy.replicas, policy.min_insync) == (3, 2)


def test_a_worker_makes_its_topics_by_the_policy_and_warns_about_others(
    cluster: Settings,
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    app_id = f"test-cluster-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap_list)
    stray = f"stray.{uuid.uuid4().hex[:6]}.v1"
    admin.create_topics([NewTopic(stray, 1, 1)])  # one replica: not the policy
    admin.close()
    web_port = free_port()
    env = {
        **os.environ,
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS": cluster.kafka_bootstrap_servers,
        "CITYBRAIN_APP_ID": app_id,
        "CITYBRAIN_STAGES": "ping",
        "CITYBRAIN_METRICS_PORT": "0",
        "CITYBRAIN_WORKER_WEB_PORT": str(web_port),
        "CITYBRAIN_LOG_FORMAT": "json",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "citybrain.cli", "worker"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        states = {}
        # the topics may be there from an earlier test: wait for the worker to be up too
        # (its start, where it checks the topics, comes before its web server)
        while time.monotonic() < deadline:
            _, states = describe(cluster)
            made = "pipeline.ping.v1" in states and "pipeline.ping.v1.dlq" in states
            if made and _answers(f"http://127.0.0.1:{web_port}/healthz"):
                break
            time.sleep(1)
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=60)
    ping, dead_letters = states["pipeline.ping.v1"], states["pipeline.ping.v1.dlq"]
    assert (ping.replicas, ping.min_insync) == (3, 2)
    assert (dead_letters.replicas, dead_letters.min_insync, dead_letters.partitions) == (3, 2, 2)
    warnings = [
        json.loads(line)
        for line in out.splitlines()
        if line.startswith("{") and "does not match the policy" in line
    ]
    assert any(w["topic"].startswith(f"{stray}: replicas 1 (policy 3)") for w in warnings), out[
        -3000:
    ]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local probe)
            return bool(response.status == 200)
    except OSError:
        return False
