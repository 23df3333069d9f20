"""The topic catalogue: one place names every topic, its key, value type and partitions.

Agents never spell a topic name themselves; they ask `topic(app, TOPICS.x)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust


@dataclass(frozen=True)
class TopicSpec:
    """A topic and its contract."""

    name: str
    key: str
    value: str
    partitions: int | None
    description: str


@dataclass(frozen=True)
class Catalogue:
    """Every topic citybrain reads or writes."""

    ping: TopicSpec = TopicSpec(
        name="pipeline.ping.v1",
        key="ping_id",
        value="JSON object {ping_id: str, sent_at: ISO-8601 timestamp, note?: str}",
        partitions=None,
        description="Wiring probe: the ping agent stores every record in pipeline_pings.",
    )

    events: TopicSpec = TopicSpec(
        name="events.v1",
        key="correlation cell (citybrain.core.cells.correlation_key)",
        value="canonical event JSON (schemas/json/canonical_event.v1.json)",
        partitions=None,
        description="Every normalised, geo-tagged event; read by correlate and persist.",
    )
    correlate: TopicSpec = TopicSpec(
        name="correlate.v1",
        key="constant 'city' (one partition: every cell's neighbours are local)",
        value="canonical event JSON",
        partitions=1,
        description="events.v1 funnelled to one owner of the correlation state.",
    )
    incidents: TopicSpec = TopicSpec(
        name="incidents.v1",
        key="incident id",
        value="incident change JSON (schema citybrain.incident/1)",
        partitions=None,
        description="Every change of an incident: opened, merged, reopened.",
    )
    dispatch_status: TopicSpec = TopicSpec(
        name="dispatch.status.v1",
        key="dispatch id",
        value="status report JSON (schemas/dispatch_status.py): acknowledged, in_progress, "
        "resolved (note), rejected (reason)",
        partitions=None,
        description="Departments' reports on their tasks (from the API or their systems).",
    )
    dispatch_dead_letters: TopicSpec = TopicSpec(
        name="dispatch.deliveries.dlq",
        key="message id",
        value="the task message that could not be delivered; headers name the destination, "
        "attempts and last error",
        partitions=None,
        description="Deliveries that failed permanently or ran out of attempts.",
    )
    # dispatch.<department>.v1: one per department (see `dispatch_topic_name`), keyed by
    # dispatch id, carrying task messages (schema citybrain.task/1).
    # raw.iot.<feed>, raw.hotline, raw.open311: one per feed definition, keyed by device
    # id (or ticket / request id); their names live in the feed files.

    def all(self) -> list[TopicSpec]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


TOPICS = Catalogue()


def dispatch_topic_name(department: str) -> str:
    """The topic a department's tasks are published to."""
    return f"dispatch.{department}.v1"


def dispatch_topic_spec(department: str) -> TopicSpec:
    return TopicSpec(
        name=dispatch_topic_name(department),
        key="dispatch id",
        value="task message JSON (schema citybrain.task/1)",
        partitions=None,
        description=f"Tasks for department {department}.",
    )


def topic(app: faust.App, spec: TopicSpec, **options: Any) -> faust.TopicT:
    """The Faust topic for a catalogue entry (raw bytes in, agents decode).

    `internal=True` makes the worker create the topic at start-up, before its consumer
    subscribes, instead of relying on the broker's auto-creation on first write."""
    return app.topic(
        spec.name,
        partitions=spec.partitions or app.conf.topic_partitions,
        internal=True,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        **options,
    )


def declare_on_start(app: faust.App, *topics: faust.TopicT) -> None:
    """Create output-only topics when the worker starts: Faust creates the topics its
    agents read, not those they only write, and a send to a missing topic stalls."""

    @app.task(on_leader=False)
    async def _declare() -> None:
        for t in topics:
            await t.maybe_declare()
