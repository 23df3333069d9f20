"""The local Kafka's shape and its broker configuration (pure): one broker or a cluster of
three, each broker's ports and folders, and the `server.properties` each one runs with.

One broker (the default) keeps the layout it always had: `<data_dir>/kafka`, `kafka.log`,
a dynamic quorum of its own controller. A cluster of N runs N brokers that are also the
controller quorum (static voters), broker n on the bootstrap port + 100 * (n - 1) and the
controller port + 100 * (n - 1), each under `<data_dir>/kafka-cluster/broker-<n>` with its
log `kafka-<n>.log`; internal topics get three replicas and `min.insync.replicas` 2. With
SASL each broker adds a SASL_SSL listener (SCRAM-SHA-512) on its port + 2.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path

#: the single broker's cluster id (base64url of b"citybrain-local1"), as it always was
SINGLE_CLUSTER_ID = "Y2l0eWJyYWluLWxvY2FsMQ"
#: the local cluster's (base64url of b"citybrain-clust3")
CLUSTER_ID = base64.urlsafe_b64encode(b"citybrain-clust3").decode().rstrip("=")
PORT_STEP = 100
SASL_OFFSET = 2


@dataclass(frozen=True)
class Shape:
    """What `citybrain stack up` started: the broker count and whether SASL is on
    (stored in `<data_dir>/kafka-stack.json`, so `status` and `down` know it)."""

    brokers: int = 1
    sasl: bool = False

    @classmethod
    def read(cls, data_dir: Path) -> Shape | None:
        path = data_dir / "kafka-stack.json"
        if not path.is_file():
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(brokers=int(doc.get("brokers", 1)), sasl=bool(doc.get("sasl", False)))

    def write(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "kafka-stack.json").write_text(json.dumps(asdict(self)), encoding="utf-8")


@dataclass(frozen=True)
class BrokerPlace:
    """One broker's id, ports and folders."""

    node_id: int
    host: str
    port: int
    controller_port: int
    sasl_port: int | None
    root: Path
    log_file: Path
    out_file: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def places(
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
    log_dir: Path,
    shape: Shape,
    sasl_port: int = 0,
) -> list[BrokerPlace]:
    """Each broker's place for `shape` (see the module doc). `sasl_port` 0: port + 2."""
    first_sasl = sasl_port or port + SASL_OFFSET
    if shape.brokers == 1:
        return [
            BrokerPlace(
                1,
                host,
                port,
                controller_port,
                first_sasl if shape.sasl else None,
                data_dir / "kafka",
                log_dir / "kafka.log",
                log_dir / "kafka.out",
            )
        ]
    return [
        BrokerPlace(
            n,
            host,
            port + PORT_STEP * (n - 1),
            controller_port + PORT_STEP * (n - 1),
            first_sasl + PORT_STEP * (n - 1) if shape.sasl else None,
            data_dir / "kafka-cluster" / f"broker-{n}",
            log_dir / f"kafka-{n}.log",
            log_dir / f"kafka-{n}.out",
        )
        for n in range(1, shape.brokers + 1)
    ]


@dataclass(frozen=True)
class Tls:
    """The broker's keystore (PKCS12) for the SASL_SSL listener."""

    keystore: Path
    password: str


def server_properties(
    me: BrokerPlace, everyone: list[BrokerPlace], partitions: int, tls: Tls | None
) -> str:
    """`server.properties` of one broker of `everyone`."""
    cluster = len(everyone) > 1
    listeners = [f"PLAINTEXT://{me.host}:{me.port}", f"CONTROLLER://{me.host}:{me.controller_port}"]
    advertised = [f"PLAINTEXT://{me.host}:{me.port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if me.sasl_port is not None:
        listeners.append(f"SASL_SSL://{me.host}:{me.sasl_port}")
        advertised.append(f"SASL_SSL://{me.host}:{me.sasl_port}")
        protocols.append("SASL_SSL:SASL_SSL")
    replicas, min_isr = (3, 2) if cluster else (1, 1)
    if cluster:
        voters = ",".join(f"{b.node_id}@{b.host}:{b.controller_port}" for b in everyone)
        quorum = f"controller.quorum.voters={voters}"
    else:
        quorum = f"controller.quorum.bootstrap.servers={me.host}:{me.controller_port}"
    lines = [
        "# Written by `citybrain stack up`; edit the settings, not this file.",
        "process.roles=broker,controller",
        f"node.id={me.node_id}",
        quorum,
        "listeners=" + ",".join(listeners),
        "advertised.listeners=" + ",".join(advertised),
        "listener.security.protocol.map=" + ",".join(protocols),
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={me.root / 'data'}",
        f"num.partitions={partitions}",
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={min_isr}",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=8",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "log.retention.hours=72",
        "log.segment.bytes=268435456",
        "message.max.bytes=2097152",
        "num.network.threads=2",
        "num.io.threads=4",
    ]
    if cluster:  # a broker back from a kill catches up before it leads again
        lines += ["unclean.leader.election.enable=false", "replica.lag.time.max.ms=10000"]
    if me.sasl_port is not None and tls is not None:
        lines += [
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={tls.keystore}",
            f"ssl.keystore.password={tls.password}",
            f"ssl.key.password={tls.password}",
            "ssl.client.auth=none",
        ]
    return "\n".join(lines) + "\n"


def bootstrap(everyone: list[BrokerPlace]) -> str:
    """The bootstrap servers of the PLAINTEXT listeners, as the setting takes them."""
    return ",".join(b.address for b in everyone)


def sasl_bootstrap(everyone: list[BrokerPlace]) -> str:
    """The bootstrap servers of the SASL_SSL listeners."""
    return ",".join(f"{b.host}:{b.sasl_port}" for b in everyone if b.sasl_port is not None)
