"""The MQTT bridge's Kafka side, in a thread of its own: writes each received message to
its feed's raw topic with an idempotent producer (acks=all) and reports it written only
once Kafka acknowledged it; dead-letters a message Kafka refuses for good (or whose topic
no feed has); retries every other failure with backoff, without end (never dropped); and
makes its producer anew, with backoff, while Kafka cannot be reached or after it broke."""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from citybrain.backoff import backoff_delay
from citybrain.ingest.acks import Ticket
from citybrain.ingest.mqtt_records import (
    NoFeed,
    Routes,
    bridged_record,
    dead_letter,
    producer_broken,
    refused_for_good,
)
from citybrain.logs import get_logger
from citybrain.metrics import BRIDGE_MESSAGES, DEAD_LETTERS
from citybrain.settings import Settings
from citybrain.stack.mosquitto_config import KAFKA_MAX_REQUEST
from citybrain.streams.dlq import MAX_DEAD_LETTER_VALUE

log = get_logger("citybrain.bridge")


@dataclass
class Inbound:
    """A message received from the broker, on its way to Kafka."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    ticket: Ticket | None = None  # its place among the acknowledgements (None: QoS 0)
    attempts: int = 0
    dead: tuple[str, BaseException] | None = None  # refused for good: the dead letter's reason
    bare: bool = False  # its dead letter was refused too: sent without the payload
    feed: str = field(default="", compare=False)


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """The producer's options: the project's connection (TLS, SASL), every replica's
    acknowledgement, idempotence, unlimited retries within a delivery timeout."""
    from citybrain.streams.clients import kafka_python_options

    return {
        "bootstrap_servers": settings.kafka_bootstrap_list,
        "client_id": f"citybrain-bridge-{client_id}",
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": settings.kafka_linger_ms,
        "max_request_size": KAFKA_MAX_REQUEST,
        "max_block_ms": 10_000,
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": 60_000,
        "bootstrap_timeout_ms": 10_000,
        "reconnect_backoff_max_ms": 5_000,
        **kafka_python_options(settings),
    }


class KafkaWriter:
    """Writes `Inbound` messages; `written(item)` is called (from the producer's thread)
    once Kafka has the message or its dead letter."""

    def __init__(
        self,
        settings: Settings,
        routes: Routes,
        client_id: str,
        written: Callable[[Inbound], None],
        make_producer: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.client_id = client_id
        self._written = written
        self._make_producer = make_producer or self._kafka_producer
        self._events: queue.Queue[tuple[Inbound, BaseException | None]] = queue.Queue()
        self._retry: list[tuple[float, int, Inbound]] = []
        self._order = itertools.count()
        self._producer: Any = None
        self._connect_failures = 0
        self._outstanding = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stop_timeout = 15.0
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # the writer thread died of it

    # --- the bridge's side -----------------------------------------------------------
    def put(self, item: Inbound) -> None:
        self._events.put((item, None))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="bridge-kafka", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float) -> int:
        """Write what was received (for at most `timeout` s), then close the producer; how
        many messages were left unwritten (the broker sends them again)."""
        self._stop_timeout = timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 10)
        return self.pending

    @property
    def pending(self) -> int:
        """Messages received and not yet written."""
        return self._events.qsize() + len(self._retry) + self._outstanding

    # --- the writer thread ---------------------------------------------------------------
    def _kafka_producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(**producer_config(self.settings, self.client_id))

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the bridge exits when its writer is gone
            self.error = exc
            log.exception("bridge_writer_failed")
        finally:
            self._close_producer(5.0)

    def _loop(self) -> None:
        stop_by: float | None = None
        while True:
            if self._stopping.is_set():
                stop_by = stop_by or time.monotonic() + self._stop_timeout
                if self.pending == 0 or time.monotonic() > stop_by:
                    return
            ready = self._take(self._wait_time())
            if not ready:
                continue
            if self._producer is None and not self._connect(ready):
                continue
            for item in ready:
                self._send(item)

    def _wait_time(self) -> float:
        if not self._retry:
            return 0.2
        return min(0.2, max(0.0, self._retry[0][0] - time.monotonic()))

    def _take(self, wait: float) -> list[Inbound]:
        """New messages and failures that came, and retries now due."""
        ready: list[Inbound] = []
        try:
            events = [self._events.get(timeout=wait)] if wait > 0 else []
        except queue.Empty:
            events = []
        while len(events) < 5000:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        for item, error in events:
            if error is None:
                ready.append(item)
            else:
                self._failed(item, error)
        now = time.monotonic()
        while self._retry and self._retry[0][0] <= now:
            ready.append(heapq.heappop(self._retry)[2])
        return ready

    def _schedule(self, item: Inbound, delay: float) -> None:
        heapq.heappush(self._retry, (time.monotonic() + delay, next(self._order), item))

    def _connect(self, ready: list[Inbound]) -> bool:
        try:
            self._producer = self._make_producer()
        except Exception as exc:
            self._connect_failures += 1
            delay = backoff_delay(min(self._connect_failures, 8), base=0.5, cap=15.0)
            log.warning(
                "bridge_kafka_unreachable",
                bootstrap=self.settings.kafka_bootstrap_servers,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=round(delay, 2),
                waiting=self.pending + len(ready),
            )
            for item in ready:
                self._schedule(item, delay)
            return False
        if self._connect_failures:
            log.info("bridge_kafka_connected", after_failures=self._connect_failures)
        self._connect_failures = 0
        return True

    def _close_producer(self, timeout: float) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=timeout)
            except Exception as exc:
                log.warning("bridge_kafka_close_failed", error=f"{type(exc).__name__}: {exc}")

    def _send(self, item: Inbound) -> None:
        feed = self.routes.feed_for(item.topic)
        item.feed = feed.name if feed else ""
        if feed is None and item.dead is None:
            item.dead = ("no_feed", NoFeed(f"no MQTT feed has the topic {item.topic!r}"))
        if item.dead is not None:
            reason, error = item.dead
            keep = 0 if item.bare else MAX_DEAD_LETTER_VALUE
            record = dead_letter(
                feed, item.topic, item.payload, item.qos, self.client_id, reason, error, keep
            )
        else:
            assert feed is not None
            record = bridged_record(feed, item.topic, item.payload, item.qos, self.client_id)
        try:
            future = self._producer.send(
                record.topic, key=record.key, value=record.value, headers=record.headers
            )
        except Exception as exc:  # refused before sending (too large, no metadata in time)
            self._failed(item, exc)
            return
        with self._lock:
            self._outstanding += 1
        future.add_callback(self._ok, item)
        future.add_errback(self._error, item)

    def _ok(self, item: Inbound, _metadata: Any) -> None:
        with self._lock:
            self._outstanding -= 1
        if item.dead is not None:
            BRIDGE_MESSAGES.labels(item.feed, "dead_letter").inc()
            DEAD_LETTERS.labels("bridge", item.dead[0]).inc()
        else:
            BRIDGE_MESSAGES.labels(item.feed, "bridged").inc()
        self._written(item)

    def _error(self, item: Inbound, error: BaseException) -> None:
        with self._lock:
            self._outstanding -= 1
        self._events.put((item, error))

    def _failed(self, item: Inbound, error: BaseException) -> None:
        """A send that failed: a dead letter when refused for good, else sent again later."""
        reason = refused_for_good(error)
        if reason is not None and item.dead is None:
            log.warning(
                "bridge_dead_letter",
                topic=item.topic,
                reason=reason,
                error=f"{type(error).__name__}: {error}",
            )
            item.dead = (reason, error)
            self._schedule(item, 0.0)
            return
        if reason is not None and not item.bare:  # the dead letter itself refused: no payload
            item.bare = True
            self._schedule(item, 0.0)
            return
        item.attempts += 1
        delay = backoff_delay(min(item.attempts, 8), base=0.5, cap=30.0)
        BRIDGE_MESSAGES.labels(item.feed, "retried").inc()
        if item.attempts == 1 or item.attempts % 10 == 0:
            log.warning(
                "bridge_kafka_retry",
                topic=item.topic,
                attempt=item.attempts,
                error=f"{type(error).__name__}: {error}",
                retry_in_s=round(delay, 2),
            )
        if producer_broken(error) and self._producer is not None:
            self._close_producer(0.0)
        self._schedule(item, delay)
