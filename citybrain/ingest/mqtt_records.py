"""What the MQTT bridge writes for one message (pure): which feed a topic belongs to, the
Kafka record of a message (the feed's raw topic, a key, headers naming where it came
from), the dead letter of one that no feed or Kafka takes, and which Kafka failures are
for good (a dead letter) rather than for now (retried)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from citybrain.ingest.topics import matches
from citybrain.streams.dlq import MAX_DEAD_LETTER_VALUE, bridged_dead_letter_headers, mask_payload

if TYPE_CHECKING:
    from citybrain.feeds.definition import Feed

#: the raw topic named for a message whose topic matches no feed (its dead letters go to
#: `raw.mqtt.dlq`): a subscription left in the bridge's session by an older definition
UNROUTED = "raw.mqtt"
TRANSPORT = "mqtt"
#: the headers of a bridged record
H_TRANSPORT = "transport"
H_TOPIC = "mqtt.topic"
H_QOS = "mqtt.qos"
H_CLIENT = "mqtt.client_id"


@dataclass(frozen=True)
class Record:
    """A Kafka record to write."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Routes:
    """The MQTT feeds: their subscriptions, and the feed of a topic."""

    def __init__(self, feeds: list[Feed]) -> None:
        self.feeds = [f for f in feeds if f.definition.mqtt is not None]
        self._by_topic: dict[str, Feed | None] = {}

    def subscriptions(self) -> list[tuple[str, int]]:
        """(topic filter, QoS) of each MQTT feed."""
        out = []
        for feed in self.feeds:
            spec = feed.definition.mqtt
            assert spec is not None
            out.append((spec.topic, int(spec.qos)))
        return out

    def feed_for(self, topic: str) -> Feed | None:
        """The feed whose filter matches `topic` (filters never overlap: `load_feeds`)."""
        if topic in self._by_topic:
            return self._by_topic.get(topic)
        if len(self._by_topic) > 100_000:  # a topic per device: keep the cache bounded
            self._by_topic.clear()
        found = None
        for feed in self.feeds:
            spec = feed.definition.mqtt
            if spec is not None and matches(spec.topic, topic):
                found = feed
                break
        self._by_topic[topic] = found
        return found


def record_key(feed: Feed, mqtt_topic: str, payload: bytes) -> bytes:
    """The device id at the feed's `device_id` path when the payload is a JSON object that
    has one (a string or a number), else the MQTT topic."""
    definition = feed.definition
    path = definition.device_id
    if path and definition.source.format == "json":
        from citybrain.feeds.normalize import get_path

        try:
            doc = json.loads(payload.decode(definition.source.encoding))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if isinstance(doc, dict):
            value = get_path(doc, path)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                if text:
                    return text.encode()
    return mqtt_topic.encode()


def bridge_headers(mqtt_topic: str, qos: int, client_id: str) -> list[tuple[str, bytes]]:
    return [
        (H_TRANSPORT, TRANSPORT.encode()),
        (H_TOPIC, mqtt_topic.encode()),
        (H_QOS, str(qos).encode()),
        (H_CLIENT, client_id.encode()),
    ]


def bridged_record(feed: Feed, mqtt_topic: str, payload: bytes, qos: int, client_id: str) -> Record:
    """The record of a message for its feed's raw topic: the payload as it came."""
    return Record(
        feed.topic,
        record_key(feed, mqtt_topic, payload),
        payload,
        bridge_headers(mqtt_topic, qos, client_id),
    )


def dead_letter(
    feed: Feed | None,
    mqtt_topic: str,
    payload: bytes,
    qos: int,
    client_id: str,
    reason: str,
    error: BaseException,
    keep: int = MAX_DEAD_LETTER_VALUE,
) -> Record:
    """The dead letter of a message: to its feed's `<raw topic>.dlq` (`raw.mqtt.dlq` when
    no feed has its topic), the payload masked and cut to `keep` bytes (what a dead letter
    keeps; 0 when even that was refused)."""
    headers = bridged_dead_letter_headers(
        reason=reason,
        error=error,
        feed=feed.name if feed else "",
        mqtt_topic=mqtt_topic,
        qos=qos,
        client_id=client_id,
    )
    value = mask_payload(payload) or b""
    if len(value) > keep:
        headers.append(("dlq.value.truncated_from", str(len(value)).encode()))
        value = value[:keep]
    topic = (feed.topic if feed else UNROUTED) + ".dlq"
    return Record(topic, mqtt_topic.encode(), value, headers)


class NoFeed(LookupError):
    """A message whose topic matches no MQTT feed."""


#: Kafka errors that no retry mends: the record itself is refused (by class name, so the
#: client library stays out of this pure module)
FOR_GOOD = {
    "MessageSizeTooLargeError": "payload_too_large",
    "RecordListTooLargeError": "payload_too_large",
    "InvalidRecordError": "kafka_refused",
    "InvalidTopicError": "kafka_refused",
    "CorruptRecordError": "kafka_refused",
    "CorruptRecordException": "kafka_refused",
}
#: errors after which the producer itself is made anew (its idempotence state is broken)
PRODUCER_BROKEN = {
    "IllegalStateError",
    "OutOfOrderSequenceNumberError",
    "UnknownProducerIdError",
    "InvalidProducerEpochError",
    "ProducerFencedError",
    "KafkaConfigurationError",
}


def refused_for_good(error: BaseException) -> str | None:
    """The dead-letter reason when Kafka refuses this record for good; None when the
    failure may pass (the broker away, a timeout, no leader...): then it is retried."""
    return FOR_GOOD.get(type(error).__name__)


def producer_broken(error: BaseException) -> bool:
    return type(error).__name__ in PRODUCER_BROKEN
