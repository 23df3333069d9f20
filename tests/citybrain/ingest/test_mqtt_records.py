"""What the bridge writes for a message (pure): the feed its topic belongs to, the record's
topic, key and headers, the dead letter (valid against the dead-letter headers' schema)
and which Kafka failures are for good."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feeds
from citybrain.ingest.mqtt_records import (
    NoFeed,
    Routes,
    bridged_record,
    dead_letter,
    producer_broken,
    record_key,
    refused_for_good,
)
from citybrain.schemas.feed_definition import MqttTransport, ViaMqtt
from citybrain.settings import PROJECT_ROOT
from citybrain.streams.dlq import MAX_DEAD_LETTER_VALUE


@pytest.fixture(scope="module")
def feeds() -> list[Feed]:
    return load_feeds(BUILTIN_DIR)


@pytest.fixture(scope="module")
def manhole(feeds: list[Feed]) -> Feed:
    return next(f for f in feeds if f.name == "manhole-cover")


def smoke_by_mqtt(feeds: list[Feed]) -> Feed:
    smoke = next(f for f in feeds if f.name == "smoke-alarm")
    transport = ViaMqtt(mqtt=MqttTransport(topic="vendor/+/smoke/#"))
    return replace(smoke, definition=smoke.definition.model_copy(update={"transport": transport}))


def test_only_mqtt_feeds_are_subscribed_with_their_qos(feeds: list[Feed]) -> None:
    routes = Routes([*feeds, smoke_by_mqtt(feeds)])
    assert routes.subscriptions() == [("manhole/+/report", 1), ("vendor/+/smoke/#", 1)]


@pytest.mark.parametrize(
    ("topic", "feed"),
    [
        ("manhole/MH00003/report", "manhole-cover"),
        ("manhole/MH00003/report/extra", None),
        ("manhole//report", "manhole-cover"),  # an empty level is a level
        ("vendor/acme/smoke", "smoke-alarm"),
        ("vendor/acme/smoke/room/2", "smoke-alarm"),
        ("vendor/acme/gas", None),
        ("$SYS/broker/uptime", None),
    ],
)
def test_the_feed_a_topic_belongs_to(feeds: list[Feed], topic: str, feed: str | None) -> None:
    routes = Routes([*feeds, smoke_by_mqtt(feeds)])
    found = routes.feed_for(topic)
    assert (found.name if found else None) == feed
    assert routes.feed_for(topic) is found  # cached


def test_the_record_goes_to_the_raw_topic_as_it_came_keyed_by_device(manhole: Feed) -> None:
    payload = b'{"imei": "MH00003", "time": "2026-11-24T09:10:00+08:00", "tilt_deg": 1.2}'
    record = bridged_record(manhole, "manhole/MH00003/report", payload, 1, "bridge-a")
    assert record.topic == "raw.iot.manhole-cover"
    assert record.value == payload
    assert record.key == b"MH00003"
    assert dict(record.headers) == {
        "transport": b"mqtt",
        "mqtt.topic": b"manhole/MH00003/report",
        "mqtt.qos": b"1",
        "mqtt.client_id": b"bridge-a",
    }


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (b'{"imei": 861234}', b"861234"),  # a number is a device id too
        (b'{"imei": ""}', b"manhole/x/report"),
        (b'{"imei": true}', b"manhole/x/report"),
        (b'{"imei": {"a": 1}}', b"manhole/x/report"),
        (b'{"other": "MH1"}', b"manhole/x/report"),
        (b"[1, 2]", b"manhole/x/report"),
        (b"not json", b"manhole/x/report"),
        (b"\xff\xfe", b"manhole/x/report"),
        (b"", b"manhole/x/report"),
    ],
)
def test_without_a_device_id_in_json_the_key_is_the_topic(
    manhole: Feed, payload: bytes, key: bytes
) -> None:
    assert record_key(manhole, "manhole/x/report", payload) == key


def test_a_nested_device_id_path_is_followed(feeds: list[Feed]) -> None:
    smoke = smoke_by_mqtt(feeds)
    nested = replace(smoke, definition=smoke.definition.model_copy(update={"device_id": "d.id"}))
    assert record_key(nested, "t", json.dumps({"d": {"id": "S-1"}}).encode()) == b"S-1"


def _schema_check(headers: list[tuple[str, bytes]]) -> None:
    from jsonschema import Draft202012Validator

    schema_path = PROJECT_ROOT / "schemas" / "json" / "dead_letter_headers.v1.json"
    schema = json.loads(schema_path.read_text())
    Draft202012Validator(schema).validate({k: v.decode() for k, v in headers})


def test_a_message_no_feed_has_is_a_dead_letter_of_raw_mqtt(manhole: Feed) -> None:
    record = dead_letter(
        None, "nobody/x", b'{"tel": "13812345678"}', 1, "bridge-a", "no_feed", NoFeed("x")
    )
    assert record.topic == "raw.mqtt.dlq"
    assert record.key == b"nobody/x"
    assert b"13812345678" not in record.value  # phone numbers masked, as every dead letter
    headers = dict(record.headers)
    assert headers["dlq.stage"] == b"bridge"
    assert headers["dlq.reason"] == b"no_feed"
    assert headers["dlq.mqtt.topic"] == b"nobody/x"
    assert headers["dlq.feed"] == b""
    _schema_check(record.headers)


def test_a_message_too_large_for_kafka_is_a_cut_dead_letter_of_its_feed(manhole: Feed) -> None:
    class MessageSizeTooLargeError(Exception):
        pass

    big = b"x" * (MAX_DEAD_LETTER_VALUE + 10)
    error = MessageSizeTooLargeError("too big")
    reason = refused_for_good(error)
    assert reason == "payload_too_large"
    record = dead_letter(manhole, "manhole/MH1/report", big, 1, "bridge-a", reason, error)
    assert record.topic == "raw.iot.manhole-cover.dlq"
    assert len(record.value) == MAX_DEAD_LETTER_VALUE
    headers = dict(record.headers)
    assert headers["dlq.value.truncated_from"] == str(len(big)).encode()
    assert headers["dlq.error.class"] == b"MessageSizeTooLargeError"
    assert headers["dlq.feed"] == b"manhole-cover"
    _schema_check(record.headers)


def test_only_a_refused_record_is_for_good_anything_else_is_retried() -> None:
    from kafka import errors

    assert refused_for_good(errors.MessageSizeTooLargeError()) == "payload_too_large"
    assert refused_for_good(errors.InvalidTopicError()) == "kafka_refused"
    for passing in (
        errors.KafkaTimeoutError(),
        errors.NotEnoughReplicasError(),
        errors.KafkaConnectionError(),
        errors.TopicAuthorizationFailedError(),  # a setting to fix: retried, never dropped
        errors.IllegalStateError(),
        OSError("connection reset"),
    ):
        assert refused_for_good(passing) is None, passing
    assert producer_broken(errors.IllegalStateError())
    assert producer_broken(errors.OutOfOrderSequenceNumberError())
    assert not producer_broken(errors.KafkaTimeoutError())
