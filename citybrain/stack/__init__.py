"""The local stack without Docker: KRaft Kafka (one broker or three) and a PostgreSQL 15
cluster.

`up()` is idempotent: services already running are left alone. Each service waits for
readiness with a timeout and raises `StackError` naming itself and its log file.
"""

from __future__ import annotations

from citybrain.settings import Settings
from citybrain.stack.kafka import KafkaService
from citybrain.stack.kafka_config import Shape
from citybrain.stack.postgres import PostgresService
from citybrain.stack.process import ServiceStatus, StackError

__all__ = [
    "KafkaService",
    "PostgresService",
    "ServiceStatus",
    "Shape",
    "StackError",
    "down",
    "status",
    "up",
]


def services(
    settings: Settings, shape: Shape | None = None
) -> list[KafkaService | PostgresService]:
    """The services of the local stack, in start order; Kafka in `shape` (default: the
    one `stack up` last started, else the settings')."""
    return [PostgresService(settings), KafkaService(settings, shape)]


def up(settings: Settings, shape: Shape | None = None) -> list[ServiceStatus]:
    """Start every service that is not running; return their status."""
    result = []
    for service in services(settings, shape):
        service.up()
        result.append(service.status())
    return result


def down(settings: Settings) -> None:
    """Stop every service (Kafka first, so no client writes into a dying database)."""
    for service in reversed(services(settings)):
        service.down()


def status(settings: Settings) -> list[ServiceStatus]:
    """The status of each service."""
    return [service.status() for service in services(settings)]
