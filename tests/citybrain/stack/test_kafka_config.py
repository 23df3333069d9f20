"""The local Kafka's shape (pure): one broker keeps its old layout, a cluster of three gets
ports 100 apart, its own folders and logs, static voters and replicated internal topics,
and `--sasl` adds a SASL_SSL listener with SCRAM-SHA-512 on port + 2."""

from __future__ import annotations

from pathlib import Path

from citybrain.stack.kafka_config import (
    BrokerPlace,
    Shape,
    Tls,
    bootstrap,
    places,
    sasl_bootstrap,
    server_properties,
)

DATA, LOGS = Path("/d"), Path("/d/log")


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")


def _places(brokers: int, sasl: bool = False) -> list[BrokerPlace]:
    return places("127.0.0.1", 9092, 9093, DATA, LOGS, Shape(brokers, sasl))


def test_one_broker_keeps_its_layout() -> None:
    [one] = _places(1)
    assert (one.node_id, one.port, one.controller_port, one.sasl_port) == (1, 9092, 9093, None)
    assert (one.root, one.log_file) == (DATA / "kafka", LOGS / "kafka.log")
    props = _props(server_properties(one, [one], 4, None))
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"


def test_three_brokers_are_a_quorum_with_replicated_internal_topics() -> None:
    cluster = _places(3)
    assert [(b.node_id, b.port, b.controller_port) for b in cluster] == [
        (1, 9092, 9093),
        (2, 9192, 9193),
        (3, 9292, 9293),
    ]
    assert [b.root.name for b in cluster] == ["broker-1", "broker-2", "broker-3"]
    assert len({b.log_file for b in cluster}) == 3
    assert bootstrap(cluster) == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"
    props = _props(server_properties(cluster[1], cluster, 4, None))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
    )
    for key, value in [
        ("default.replication.factor", "3"),
        ("min.insync.replicas", "2"),
        ("offsets.topic.replication.factor", "3"),
        ("transaction.state.log.min.isr", "2"),
        ("unclean.leader.election.enable", "false"),
    ]:
        assert props[key] == value, key
    assert props["log.dirs"] == str(DATA / "kafka-cluster" / "broker-2" / "data")


def test_sasl_adds_a_scram_listener_on_port_plus_two() -> None:
    cluster = _places(3, sasl=True)
    assert [b.sasl_port for b in cluster] == [9094, 9194, 9294]
    assert sasl_bootstrap(cluster) == "127.0.0.1:9094,127.0.0.1:9194,127.0.0.1:9294"
    tls = Tls(Path("/d/kafka-tls/broker.p12"), "pw")
    props = _props(server_properties(cluster[0], cluster, 4, tls))
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:9094")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["ssl.keystore.location"] == "/d/kafka-tls/broker.p12"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_the_shape_is_remembered(tmp_path: Path) -> None:
    assert Shape.read(tmp_path) is None
    Shape(3, True).write(tmp_path)
    assert Shape.read(tmp_path) == Shape(3, True)
