"""The tools' offset helpers against a stand-in of kafka-python's clients: which partitions,
which offsets, which calls."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from citybrain.settings import Settings
from citybrain_tools import kafka

TOPICS = {"events.v1": {0, 1}, "raw.iot.smoke-alarm": {0}, "__consumer_offsets": {0}}
ENDS = {TopicPartition("events.v1", 0): 7, TopicPartition("events.v1", 1): 0}


class FakeConsumer:
    """The part of KafkaConsumer the helpers use, recording what they did."""

    made: ClassVar[list[FakeConsumer]] = []

    def __init__(self, *topics: str, **config: Any) -> None:
        self.config = config
        self.assigned: list[TopicPartition] = []
        self.seeks: dict[TopicPartition, int] = {}
        self.commits: dict[TopicPartition, OffsetAndMetadata] = {}
        self.closed = False
        FakeConsumer.made.append(self)

    def topics(self) -> set[str]:
        return set(TOPICS)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return TOPICS.get(topic)

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: ENDS.get(tp, 3) for tp in tps}

    def committed(self, tp: TopicPartition) -> int | None:
        return 5 if tp.partition == 0 else None

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = list(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits = offsets

    def __iter__(self) -> Any:
        return iter([f"message {tp.topic}[{tp.partition}]@{o}" for tp, o in self.seeks.items()])

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> list[FakeConsumer]:
    import kafka as kafka_python

    FakeConsumer.made = []
    monkeypatch.setattr(kafka_python, "KafkaConsumer", FakeConsumer)
    return FakeConsumer.made


SETTINGS = Settings(topic_partitions=3)


def test_partitions_of_the_topics_that_exist() -> None:
    got = kafka.partitions(FakeConsumer(), ["events.v1", "missing"])
    assert sorted(got) == [TopicPartition("events.v1", 0), TopicPartition("events.v1", 1)]
    assert kafka.numbered(SETTINGS, "t") == [TopicPartition("t", n) for n in range(3)]


def test_end_offsets_and_committed_offsets(consumers: list[FakeConsumer]) -> None:
    assert kafka.end_offsets(SETTINGS, ["events.v1"]) == ENDS
    assert kafka.end_offsets(SETTINGS, ["missing"]) == {}
    tps = list(ENDS)
    assert kafka.committed(SETTINGS, "g", tps) == {tps[0]: 5, tps[1]: None}
    assert consumers[-1].config["group_id"] == "g"
    assert all(c.closed for c in consumers)


def test_a_group_starts_at_the_end_of_every_topic_but_the_internal_ones(
    consumers: list[FakeConsumer],
) -> None:
    kafka.start_group_at_end(SETTINGS, "g")
    (consumer,) = consumers
    assert {tp.topic for tp in consumer.assigned} == {"events.v1", "raw.iot.smoke-alarm"}
    # nothing to commit where the topic is empty
    assert {tp: o.offset for tp, o in consumer.commits.items()} == {
        TopicPartition("events.v1", 0): 7,
        TopicPartition("raw.iot.smoke-alarm", 0): 3,
    }
    assert consumer.closed


class FakeAdmin:
    def __init__(self) -> None:
        self.altered: tuple[str, dict[TopicPartition, OffsetAndMetadata]] | None = None

    def list_group_offsets(self, specs: dict[str, list[TopicPartition]]) -> dict[str, Any]:
        ((group, tps),) = specs.items()
        return {group: {tp: OffsetAndMetadata(-1 if tp.partition else 9, "", -1) for tp in tps}}

    def alter_group_offsets(self, group: str, offsets: dict[TopicPartition, Any]) -> None:
        self.altered = (group, offsets)


def test_group_offsets_and_a_group_read_from_the_start() -> None:
    admin = FakeAdmin()
    tps = kafka.numbered(SETTINGS, "t")
    assert kafka.group_offsets(admin, "g", tps) == {tps[0]: 9, tps[1]: -1, tps[2]: -1}
    kafka.start_group_at_start(admin, "g", tps)
    assert admin.altered is not None
    group, offsets = admin.altered
    assert group == "g" and {tp: o.offset for tp, o in offsets.items()} == dict.fromkeys(tps, 0)
