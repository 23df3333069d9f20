"""Prometheus metrics shared by every stage (one registry, exposed by the worker)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECORDS = Counter(
    "citybrain_records_total",
    "Records handled per stage and outcome (ok, dead_letter, ...).",
    ["stage", "outcome"],
)
DEAD_LETTERS = Counter(
    "citybrain_dead_letters_total",
    "Records sent to a dead-letter topic, by stage and reason.",
    ["stage", "reason"],
)
DB_RETRIES = Counter(
    "citybrain_db_retries_total",
    "Database operations retried after a transient error.",
    ["operation"],
)
DELIVERIES = Counter(
    "citybrain_deliveries_total",
    "Delivery attempts of task messages, by channel (kafka, webhook) and outcome "
    "(sent, retry, fail).",
    ["channel", "outcome"],
)
RELEASED = Counter(
    "citybrain_released_messages_total",
    "Records given up unprocessed at a rebalance or stop, by topic: not acknowledged, read "
    "again from the committed offset (streams.inflight).",
    ["topic"],
)
STALLS = Counter(
    "citybrain_worker_stalls_total",
    "Workers of this app that exited because they waited too long (CITYBRAIN_STALL_TIMEOUT) "
    "in a rebalance or for in-flight records; counted by the next worker started here.",
    ["phase"],
)
STALL_WAIT_SECONDS = Gauge(
    "citybrain_stall_wait_seconds",
    "How long the worker has been waiting, without progress, in each phase (rebalance, "
    "wait_empty); 0 when it is not.",
    ["phase"],
)
BATCH_SECONDS = Histogram(
    "citybrain_batch_seconds",
    "Time to process one batch, per stage.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

BRIDGE_MESSAGES = Counter(
    "citybrain_bridge_messages_total",
    "MQTT messages of `citybrain bridge mqtt`, by feed and outcome: received, bridged "
    "(written to the raw topic), dead_letter, retried (a Kafka failure, sent again), acked "
    "(acknowledged to the broker).",
    ["feed", "outcome"],
)
BRIDGE_IN_FLIGHT = Gauge(
    "citybrain_bridge_in_flight",
    "MQTT messages the bridge has received and not yet acknowledged to the broker.",
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on host:port (0 disables it)."""
    if port:
        start_http_server(port, addr=host)
