"""Offsets for the benchmarks and the fault scenarios: a topic's partitions and end
offsets, a consumer group's committed offsets, a group set to start at the end of every
topic or at the start of one, and the messages written after given offsets. Each call
opens its clients and closes them (the callers poll now and then, not in a hot loop)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options


def partitions(consumer: Any, topics: Iterable[str]) -> list[Any]:
    """Every partition of the `topics` that exist (TopicPartitions), from the broker's
    metadata."""
    from kafka import TopicPartition

    return [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]


def read_to_end(
    consumer: Any,
    tps: list[Any],
    since_ms: int | None = None,
    start: dict[Any, int] | None = None,
    timeout: float = 120.0,
) -> Iterator[Any]:
    """Every message of the partitions `tps` (assigned to `consumer` here) to the end
    offsets of the moment of the call, with no wait for an idle topic: from the `start`
    offsets (0 for a partition not in it), else from the first message written at or after
    `since_ms` (epoch milliseconds), else from the beginning. Stops after `timeout` s (a
    partition that cannot be read to its end is then short)."""
    import time

    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    if start is not None:
        for tp in tps:
            consumer.seek(tp, start.get(tp, 0))
    elif since_ms is None:
        consumer.seek_to_beginning(*tps)
    else:
        found = consumer.offsets_for_times({tp: since_ms for tp in tps})
        for tp in tps:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])
    deadline = time.monotonic() + timeout
    behind = {tp for tp in tps if consumer.position(tp) < ends[tp]}
    while behind and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            yield from records
        behind = {tp for tp in behind if consumer.position(tp) < ends[tp]}


def numbered(settings: Settings, topic: str) -> list[Any]:
    """The partitions of a topic this run created (`settings.topic_partitions` of them)."""
    from kafka import TopicPartition

    return [TopicPartition(topic, n) for n in range(settings.topic_partitions)]


def end_offsets(settings: Settings, topics: Iterable[str]) -> dict[Any, int]:
    """The end offset of every partition of `topics` (the next offset to be written)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list, **kafka_python_options(settings)
    )
    try:
        tps = partitions(consumer, topics)
        return dict(consumer.end_offsets(tps)) if tps else {}
    finally:
        consumer.close()


def committed(settings: Settings, group: str, tps: Iterable[Any]) -> dict[Any, int | None]:
    """The group's committed offset on each partition (None: nothing committed)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        return {tp: consumer.committed(tp) for tp in tps}
    finally:
        consumer.close()


def group_offsets(admin: Any, group: str, tps: list[Any]) -> dict[Any, int]:
    """The group's committed offsets on `tps` read with an admin client kept open (-1 or
    absent: nothing committed)."""
    if hasattr(admin, "list_group_offsets"):  # kafka-python 3
        offsets = admin.list_group_offsets({group: tps}).get(group, {})
    else:
        offsets = admin.list_consumer_group_offsets(group, partitions=tps)
    return {tp: getattr(o, "offset", o) for tp, o in offsets.items()}


def start_group_at_end(settings: Settings, group: str) -> None:
    """Commit, for `group`, the end offset of every partition of every existing topic."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        tps = partitions(consumer, [t for t in consumer.topics() if not t.startswith("__")])
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items() if o > 0})
    finally:
        consumer.close()


def start_group_at_start(admin: Any, group: str, tps: Iterable[Any]) -> None:
    """Set `group`'s offsets on `tps` to 0: it reads them from their start, whatever the
    reset policy."""
    from kafka.structs import OffsetAndMetadata

    admin.alter_group_offsets(group, {tp: OffsetAndMetadata(0, "", -1) for tp in tps})


def messages_after(
    settings: Settings, topics: Iterable[str], start: dict[Any, int]
) -> Iterator[Any]:
    """Every message of `topics` after the `start` offsets (from the beginning of the
    partitions not in `start`) to their end offsets of the moment of the call."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8_000_000,
    )
    try:
        yield from read_to_end(consumer, partitions(consumer, topics), start=start)
    finally:
        consumer.close()


def ensure_topic(settings: Settings, topic: str, partitions: int) -> None:
    """Create `topic` unless it exists."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_list, **kafka_python_options(settings)
    )
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
