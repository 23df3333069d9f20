"""The local stack without Docker: KRaft Kafka (one broker or three), a PostgreSQL 15
cluster, and mosquitto when a feed comes by MQTT.

`up()` is idempotent: services already running are left alone. Each service waits for
readiness with a timeout and raises `StackError` naming itself and its log file.
"""

from __future__ import annotations

from citybrain.settings import Settings
from citybrain.stack.kafka import KafkaService
from citybrain.stack.kafka_config import Shape
from citybrain.stack.mosquitto import MosquittoService
from citybrain.stack.postgres import PostgresService
from citybrain.stack.process import ServiceStatus, StackError

__all__ = [
    "KafkaService",
    "MosquittoService",
    "PostgresService",
    "ServiceStatus",
    "Shape",
    "StackError",
    "down",
    "status",
    "up",
]


Service = KafkaService | PostgresService | MosquittoService


def services(settings: Settings, shape: Shape | None = None) -> list[Service]:
    """The services of the local stack, in start order; Kafka in `shape` (default: the
    one `stack up` last started, else the settings'); mosquitto when a feed comes by MQTT
    or it runs."""
    found: list[Service] = [PostgresService(settings), KafkaService(settings, shape)]
    mosquitto = MosquittoService(settings)
    if wants_mqtt(settings) or mosquitto.pid() is not None:
        found.append(mosquitto)
    return found


def wants_mqtt(settings: Settings) -> bool:
    """Whether an installed feed (built-in, or in CITYBRAIN_FEEDS_DIR) comes by MQTT; with
    feed folders that do not load (`citybrain feeds validate` says why), the built-ins."""
    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import BUILTIN_DIR, feed_folders, load_feeds

    try:
        feeds = load_feeds(*feed_folders(settings.feeds_dir))
    except ConfigError:
        feeds = load_feeds(BUILTIN_DIR)
    return any(f.definition.mqtt is not None for f in feeds)


def up(settings: Settings, shape: Shape | None = None) -> list[ServiceStatus]:
    """Start every service that is not running; return their status."""
    result = []
    for service in services(settings, shape):
        service.up()
        result.append(service.status())
    return result


def down(settings: Settings) -> None:
    """Stop every service (mosquitto, then Kafka, so no client writes into a dying
    database)."""
    for service in reversed(services(settings)):
        service.down()


def status(settings: Settings) -> list[ServiceStatus]:
    """The status of each service."""
    return [service.status() for service in services(settings)]
