"""How the platform's topics are made: replicas, `min.insync.replicas` and partitions per
class of topic (`TopicPolicy`), resolved from the settings and the cluster's size, and the
existing topics that do not match it (`mismatches`, warned about at a worker's start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from citybrain.settings import Settings

TopicClass = Literal["stream", "single", "dead_letters", "departments"]

#: topics of one partition by design (the correlation state has one owner)
SINGLE = ("correlate.v1",)
SINGLE_CHANGELOG = "-incident-cells-changelog"
#: topics that are not department task topics although they look like them
NOT_DEPARTMENTS = ("dispatch.status.v1",)


def replicas_for(brokers: int, configured: int = 0) -> int:
    """The replication factor: the configured one, or what the cluster allows (3 from
    three brokers up, else one per broker)."""
    return configured if configured > 0 else max(1, min(3, brokers))


def min_insync_for(replicas: int, configured: int = 0) -> int:
    """`min.insync.replicas`: the configured value, or a majority of the replicas from
    three up (2 of 3: a write survives one broker lost), 1 below."""
    if configured > 0:
        return configured
    return 1 if replicas < 3 else replicas // 2 + 1


class PolicyError(ValueError):
    """The settings ask for what the cluster cannot give."""


@dataclass(frozen=True)
class TopicPolicy:
    """What every topic the platform creates gets."""

    replicas: int = 1
    min_insync: int = 1
    partitions: int = 4
    dead_letter_partitions: int = 2
    department_partitions: int = 2

    @classmethod
    def of(cls, settings: Settings, brokers: int | None = None) -> TopicPolicy:
        """From the settings; `brokers` (the cluster's size) fills in what they leave to
        the cluster (None: not asked, one broker assumed) and checks what they ask for."""
        size = brokers if brokers is not None else 1
        replicas = replicas_for(size, settings.kafka_replication_factor)
        min_insync = min_insync_for(replicas, settings.kafka_min_insync_replicas)
        if brokers is not None and replicas > brokers:
            raise PolicyError(
                f"CITYBRAIN_KAFKA_REPLICATION_FACTOR={replicas} but the cluster has "
                f"{brokers} broker(s)"
            )
        if min_insync > replicas:
            raise PolicyError(
                f"CITYBRAIN_KAFKA_MIN_INSYNC_REPLICAS={min_insync} is more than the "
                f"{replicas} replica(s) a topic has: no write could ever be acknowledged"
            )
        return cls(
            replicas=replicas,
            min_insync=min_insync,
            partitions=settings.topic_partitions,
            dead_letter_partitions=settings.topic_partitions_dead_letters,
            department_partitions=settings.topic_partitions_departments,
        )

    def config(self) -> dict[str, str]:
        """The topic configuration every created topic gets."""
        return {"min.insync.replicas": str(self.min_insync)}

    def partitions_of(self, kind: TopicClass) -> int:
        return {
            "stream": self.partitions,
            "single": 1,
            "dead_letters": self.dead_letter_partitions,
            "departments": self.department_partitions,
        }[kind]


def topic_class(name: str) -> TopicClass:
    """The class of a topic the platform creates, from its name."""
    if name in SINGLE or name.endswith(SINGLE_CHANGELOG):
        return "single"
    if name.endswith(".dlq"):
        return "dead_letters"
    if name.startswith("dispatch.") and name.endswith(".v1") and name not in NOT_DEPARTMENTS:
        return "departments"
    return "stream"


@dataclass(frozen=True)
class TopicState:
    """An existing topic as the cluster describes it."""

    partitions: int
    replicas: int
    min_insync: int | None  # None: not known (the broker's default applies)


def mismatches(topics: dict[str, TopicState], policy: TopicPolicy) -> list[str]:
    """What differs between the existing topics and the policy, one line per topic (its
    name, what it has, what the policy gives). The partitions of stream topics are not
    compared: a feed's raw topic, or one an operator grew, may rightly have more."""
    lines = []
    for name in sorted(topics):
        state = topics[name]
        wrong = []
        if state.replicas != policy.replicas:
            wrong.append(f"replicas {state.replicas} (policy {policy.replicas})")
        if state.min_insync is not None and state.min_insync != policy.min_insync:
            wrong.append(f"min.insync.replicas {state.min_insync} (policy {policy.min_insync})")
        kind = topic_class(name)
        expected = policy.partitions_of(kind)
        if kind != "stream" and state.partitions != expected:
            wrong.append(f"partitions {state.partitions} (policy {expected})")
        if wrong:
            lines.append(f"{name}: " + ", ".join(wrong))
    return lines


def ours(name: str, app_id: str) -> bool:
    """Whether a topic is one the platform creates (not the broker's, not another app's)."""
    if name.startswith("__"):
        return False
    if name.endswith("-changelog") or name.endswith("-repartition"):
        return name.startswith(app_id + "-")
    return name.startswith(("raw.", "dispatch.")) or name.endswith((".v1", ".dlq"))


def resolve_policy(settings: Settings, wait_s: float = 120.0) -> TopicPolicy:
    """The policy for this cluster, asked at a worker's start: its size fills in what the
    settings leave open, and each existing topic that does not match is logged as a
    warning. Retries while the cluster does not answer, at most `wait_s`; a refused login
    (`KafkaLoginError`) or a policy the cluster cannot give (`PolicyError`) is raised at
    once: waiting would not mend them."""
    import time

    from citybrain.logs import get_logger
    from citybrain.streams.clients import KafkaLoginError

    log = get_logger(__name__)
    deadline = time.monotonic() + wait_s
    delay = 1.0
    while True:
        try:
            brokers, topics = describe(settings)
            break
        except KafkaLoginError:
            raise
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap_servers} did not answer for "
                    f"{wait_s:.0f}s (CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS): {exc}"
                ) from exc
            log.warning("kafka not answering yet; retrying", error=str(exc), retry_in=delay)
            time.sleep(delay)
            delay = min(10.0, delay * 2)
    policy = TopicPolicy.of(settings, brokers)
    log.info(
        "topic policy",
        brokers=brokers,
        replicas=policy.replicas,
        min_insync_replicas=policy.min_insync,
    )
    for line in mismatches(topics, policy):
        log.warning("existing topic does not match the policy", topic=line)
    return policy


def describe(settings: Settings) -> tuple[int, dict[str, TopicState]]:
    """The cluster's broker count and its topics that are the platform's (kafka-python
    admin, with the settings' security; a refused login raises `KafkaLoginError`)."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    from citybrain.streams.clients import kafka_python_options, refused_logins

    with refused_logins(settings):
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_list,
            client_id="citybrain-topic-check",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,
            **kafka_python_options(settings),
        )
    try:
        cluster: dict[str, Any] = admin.describe_cluster()
        brokers = len(cluster.get("brokers") or [])
        names = [n for n in admin.list_topics() if ours(n, settings.app_id)]
        states: dict[str, TopicState] = {}
        if names:
            described = admin.describe_topics(names)
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in names],
                config_filter="all",  # the effective value, the broker's default included
            )
            insync = _min_insync(configs)
            for topic in described:
                parts = topic.get("partitions") or []
                replicas = max((len(p.get("replica_nodes") or []) for p in parts), default=0)
                name = topic["name"]
                states[name] = TopicState(len(parts), replicas, insync.get(name))
    finally:
        admin.close()
    return brokers, states


def _min_insync(described: dict[str, Any]) -> dict[str, int]:
    """`min.insync.replicas` per topic from kafka-python 3's `describe_configs` answer
    (`{"topic": {name: {key: {"value": ...}}}}`)."""
    found: dict[str, int] = {}
    for name, entries in (described.get("topic") or {}).items():
        value = (entries.get("min.insync.replicas") or {}).get("value")
        if value is not None:
            found[str(name)] = int(value)
    return found
