"""The topic policy (pure): replicas and min.insync.replicas from the cluster's size or the
settings, what a cluster cannot give refused with the setting named, the class of each
topic, and the existing topics that do not match it."""

from __future__ import annotations

import pytest

from citybrain.settings import Settings
from citybrain.streams.replication import (
    PolicyError,
    TopicPolicy,
    TopicState,
    min_insync_for,
    mismatches,
    ours,
    replicas_for,
    topic_class,
)


@pytest.mark.parametrize(
    ("brokers", "configured", "replicas", "min_insync"),
    [
        (1, 0, 1, 1),
        (2, 0, 2, 1),
        (3, 0, 3, 2),
        (5, 0, 3, 2),  # three copies are enough; more brokers spread the partitions
        (5, 5, 5, 3),
        (3, 1, 1, 1),  # asked for one: one
    ],
)
def test_replicas_and_min_insync_from_the_cluster(
    brokers: int, configured: int, replicas: int, min_insync: int
) -> None:
    assert replicas_for(brokers, configured) == replicas
    assert min_insync_for(replicas) == min_insync


def test_the_policy_from_settings_and_the_cluster() -> None:
    settings = Settings(topic_partitions=6, topic_partitions_dead_letters=3)
    policy = TopicPolicy.of(settings, brokers=3)
    assert (policy.replicas, policy.min_insync) == (3, 2)
    assert policy.config() == {"min.insync.replicas": "2"}
    assert [policy.partitions_of(k) for k in ("stream", "single", "dead_letters")] == [6, 1, 3]
    assert TopicPolicy.of(settings).replicas == 1  # not asked: one broker assumed


@pytest.mark.parametrize(
    ("changes", "brokers", "named"),
    [
        ({"kafka_replication_factor": 3}, 1, "CITYBRAIN_KAFKA_REPLICATION_FACTOR=3"),
        ({"kafka_min_insync_replicas": 2}, 1, "CITYBRAIN_KAFKA_MIN_INSYNC_REPLICAS=2"),
        (
            {"kafka_replication_factor": 2, "kafka_min_insync_replicas": 3},
            3,
            "CITYBRAIN_KAFKA_MIN_INSYNC_REPLICAS=3",
        ),
    ],
)
def test_what_the_cluster_cannot_give_is_refused(
    changes: dict[str, int], brokers: int, named: str
) -> None:
    with pytest.raises(PolicyError, match=named):
        TopicPolicy.of(Settings(**changes), brokers=brokers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("events.v1", "stream"),
        ("raw.iot.smoke", "stream"),
        ("correlate.v1", "single"),
        ("citybrain-incident-cells-changelog", "single"),
        ("citybrain-alarm-state-smoke-alarm-changelog", "stream"),
        ("raw.hotline.dlq", "dead_letters"),
        ("dispatch.deliveries.dlq", "dead_letters"),
        ("dispatch.fire.v1", "departments"),
        ("dispatch.status.v1", "stream"),
    ],
)
def test_the_class_of_a_topic(name: str, kind: str) -> None:
    assert topic_class(name) == kind


@pytest.mark.parametrize(
    ("name", "platform"),
    [
        ("events.v1", True),
        ("raw.iot.smoke", True),
        ("raw.hotline.dlq", True),
        ("dispatch.water.v1", True),
        ("citybrain-incident-cells-changelog", True),
        ("other-app-incident-cells-changelog", False),
        ("__consumer_offsets", False),
        ("bench.e2e", False),
    ],
)
def test_which_topics_are_the_platforms(name: str, platform: bool) -> None:
    assert ours(name, "citybrain") is platform


def test_topics_that_do_not_match_are_named_with_what_differs() -> None:
    policy = TopicPolicy(replicas=3, min_insync=2, partitions=4, dead_letter_partitions=2)
    topics = {
        "events.v1": TopicState(partitions=4, replicas=3, min_insync=2),  # matches
        "incidents.v1": TopicState(partitions=4, replicas=1, min_insync=1),
        "raw.hotline.dlq": TopicState(partitions=1, replicas=3, min_insync=2),
        "raw.iot.smoke": TopicState(partitions=12, replicas=3, min_insync=None),  # the feed's
        "correlate.v1": TopicState(partitions=4, replicas=3, min_insync=2),
    }
    assert mismatches(topics, policy) == [
        "correlate.v1: partitions 4 (policy 1)",
        "incidents.v1: replicas 1 (policy 3), min.insync.replicas 1 (policy 2)",
        "raw.hotline.dlq: partitions 1 (policy 2)",
    ]
