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

    def all(self) -> list[TopicSpec]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


TOPICS = Catalogue()


def topic(app: faust.App, spec: TopicSpec, **options: Any) -> faust.TopicT:
    """The Faust topic for a catalogue entry (raw bytes in, agents decode)."""
    return app.topic(
        spec.name,
        partitions=spec.partitions,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        **options,
    )
