"""The local mosquitto's configuration file (pure): where its files are, and the text of
`mosquitto.conf` rendered from them.

What it holds, and why: one listener on the settings' host and port; logins from a
password file only (`allow_anonymous false`); persistence on, so a persistent session's
queued QoS 1/2 messages survive a broker restart; per-client queues far above mosquitto's
default of 1000 (beyond which it drops messages silently) so that a bridge away for a while
loses nothing; a wide in-flight window for throughput; and a payload limit below what one
Kafka record may carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The Kafka producer's largest request (kafka-python's and the brokers' default, 1 MiB).
KAFKA_MAX_REQUEST = 1_048_576
#: Largest payload the broker accepts (16 MiB: bounded memory). A message larger than one
#: Kafka record still reaches the bridge, which dead-letters it with `payload_too_large`
#: (the payload cut, its size kept) where everyone can see it; a message the broker
#: refused would be gone from the platform's view (an MQTT 3.1.1 publisher is not told).
MESSAGE_SIZE_LIMIT = 16 * 1_048_576
#: QoS 1/2 messages queued per client above those in flight (mosquitto's default 1000, and
#: it drops beyond): a million, hours of every MQTT feed while the bridge is away.
MAX_QUEUED_MESSAGES = 1_000_000
#: QoS 1/2 messages sent to a client and not yet acknowledged (default 20). For MQTT 5
#: clients the client's receive maximum (`CITYBRAIN_MQTT_IN_FLIGHT`) decides.
MAX_INFLIGHT_MESSAGES = 1000
#: Seconds between saves of the in-memory database (a clean stop saves too).
AUTOSAVE_INTERVAL = 30


@dataclass(frozen=True)
class MosquittoPlace:
    """The local broker's address and files."""

    host: str
    port: int
    root: Path  # <data_dir>/mosquitto
    log_file: Path

    @property
    def conf(self) -> Path:
        return self.root / "mosquitto.conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "mosquitto.pid"

    @property
    def password_file(self) -> Path:
        return self.root / "passwd"

    @property
    def bridge_password_file(self) -> Path:
        """The generated password of the bridge's login (when CITYBRAIN_MQTT_PASSWORD is
        unset): readable by its owner only, never in the repository."""
        return self.root / "bridge.password"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def place(host: str, port: int, data_dir: Path, log_dir: Path) -> MosquittoPlace:
    return MosquittoPlace(host, port, data_dir.resolve() / "mosquitto", log_dir / "mosquitto.log")


def mosquitto_conf(where: MosquittoPlace, user: str | None = None) -> str:
    """The broker's configuration. `user`: the OS user it drops to when started as root."""
    lines = [
        "# Written by `citybrain stack up`; edit the settings, not this file.",
        f"listener {where.port} {where.host}",
        "allow_anonymous false",
        f"password_file {where.password_file}",
        "persistence true",
        f"persistence_location {where.data}/",
        f"autosave_interval {AUTOSAVE_INTERVAL}",
        f"pid_file {where.pid_file}",
        f"log_dest file {where.log_file}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_queued_bytes 0",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"message_size_limit {MESSAGE_SIZE_LIMIT}",
        "set_tcp_nodelay true",
    ]
    if user is not None:
        lines.append(f"user {user}")
    return "\n".join(lines) + "\n"
