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
    # raw.iot.<feed>, raw.hotline, raw.open311: one per feed definition, keyed by device
    # id (or ticket / request id); their names live in the feed files.

    def all(self) -> list[TopicSpec]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


TOPICS = Catalogue()


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
