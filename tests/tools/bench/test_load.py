"""The benches' load generator on the real broker: every message offered is acknowledged
and on the topic (counted from the broker's offsets, not from what was handed over), at
the pace asked for, and a generator that cannot reach the broker is an error, not a wait."""

from __future__ import annotations

import uuid

import pytest

from citybrain.settings import Settings
from citybrain_tools.bench.load import messages, run_load
from citybrain_tools.kafka import end_offsets, ensure_topic

pytestmark = pytest.mark.integration


def test_every_offered_message_is_on_the_topic_at_the_pace_asked(stack: Settings) -> None:
    topic = f"bench.load.test-{uuid.uuid4().hex[:6]}"
    ensure_topic(stack, topic, partitions=4)
    result = run_load(stack.kafka_bootstrap_servers, topic, ["WL-1", "WL-2"], 4_000, 2.0, 2)
    on_topic = sum(end_offsets(stack, [topic]).values())
    assert result.messages == result.delivered == on_topic == 8_000
    assert result.failed == 0
    assert result.seconds >= 1.9  # paced over the two seconds, not sent in one burst
    assert 0.9 * 4_000 <= result.achieved_per_s <= 4_000 * 1.05


def test_each_message_is_a_distinct_reading_of_the_vendor_format() -> None:
    import json

    batch = messages([b"WL-1", b"WL-2"], 10, 4, 1_700_000_000_000)
    docs = [json.loads(v) for _, v in batch]
    assert [k for k, _ in batch] == [b"WL-1", b"WL-2", b"WL-1", b"WL-2"]
    assert len({(d["devId"], d["ts"]) for d in docs}) == 4
    assert docs[0]["data"] == {"level": "20.0", "unit": "cm", "bat": 3.6}


def test_a_generator_that_cannot_reach_the_broker_fails_instead_of_waiting() -> None:
    with pytest.raises(RuntimeError, match="load generator failed"):
        run_load("127.0.0.1:1", "nowhere", ["WL-1"], 100, 0.5, 1, timeout_s=2)
