"""Prometheus metrics shared by every stage (one registry, exposed by the worker)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

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
BATCH_SECONDS = Histogram(
    "citybrain_batch_seconds",
    "Time to process one batch, per stage.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def serve_metrics(port: int) -> None:
    """Expose /metrics on 127.0.0.1:port (0 disables it)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
