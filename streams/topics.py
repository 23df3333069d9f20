"""The topic catalogue: one place names every topic, its key, value type and partitions.

Agents never spell a topic name themselves; they ask `topic(app, TOPICS.x)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from citybrain.dispatch.channels import dispatch_topic_name
from citybrain.streams.replication import TopicClass

if TYPE_CHECKING:
    import faust

    from citybrain.streams.app import App

__all__ = ["TOPICS", "Catalogue", "TopicSpec", "dispatch_topic_name", "dispatch_topic_spec"]


@dataclass(frozen=True)
class TopicSpec:
    """A topic and its contract: key, value (with its JSON Schemas under schemas/json/),
    partitions, and the stages (or tools) that write and read it."""

    name: str
    key: str
    value: str
    partitions: int | None
    description: str
    schemas: tuple[str, ...] = ()
    producers: str = ""
    consumers: str = ""
    #: its class: partitions and replicas come from the app's `TopicPolicy`
    kind: TopicClass = "stream"


@dataclass(frozen=True)
class Catalogue:
    """Every topic citybrain reads or writes (README's topic table lists the same)."""

    ping: TopicSpec = TopicSpec(
        name="pipeline.ping.v1",
        key="ping_id",
        value="ping JSON",
        partitions=None,
        description="Wiring probe: the ping agent stores every record in pipeline_pings.",
        schemas=("ping.v1.json",),
        producers="wiring probes (tests, the chaos side traffic)",
        consumers="ping",
    )
    events: TopicSpec = TopicSpec(
        name="events.v1",
        key="correlation cell (citybrain.core.cells.correlation_key)",
        value="canonical event JSON",
        partitions=None,
        description="Every normalised, geo-tagged event; read by correlate and persist.",
        schemas=("canonical_event.v1.json",),
        producers="normalize",
        consumers="persist, correlate (route)",
    )
    correlate: TopicSpec = TopicSpec(
        name="correlate.v1",
        key="constant 'city' (one partition: every cell's neighbours are local)",
        value="canonical event JSON, or an incident-status message (header "
        "citybrain.message=incident_status)",
        partitions=1,
        description="Events funnelled to the one owner of the correlation state, and the "
        "incidents' status changes it must know.",
        schemas=("canonical_event.v1.json", "incident_status.v1.json"),
        producers="normalize, correlate (route), status",
        consumers="correlate",
        kind="single",
    )
    incidents: TopicSpec = TopicSpec(
        name="incidents.v1",
        key="incident id",
        value="incident change JSON",
        partitions=None,
        description="Every change of an incident: opened, merged, reopened.",
        schemas=("incident.v1.json",),
        producers="correlate",
        consumers="dispatch",
    )
    dispatch_status: TopicSpec = TopicSpec(
        name="dispatch.status.v1",
        key="dispatch id",
        value="status report JSON: acknowledged, in_progress, resolved (note), rejected (reason)",
        partitions=None,
        description="Departments' reports on their tasks (from the API or their systems).",
        schemas=("dispatch_status.v1.json",),
        producers="HTTP API, departments' systems",
        consumers="status",
    )
    commands: TopicSpec = TopicSpec(
        name="commands.v1",
        key="dispatch id",
        value="operator command JSON: extend_deadline",
        partitions=None,
        description="Operators' decisions, applied by the stage that owns the state.",
        schemas=("command.v1.json",),
        producers="HTTP API",
        consumers="status",
    )
    dispatch_dead_letters: TopicSpec = TopicSpec(
        name="dispatch.deliveries.dlq",
        key="message id",
        value="the task message that could not be delivered; its headers name the "
        "destination, the attempts and the last error",
        partitions=None,
        description="Deliveries that failed permanently or ran out of attempts.",
        schemas=("task.v1.json", "dead_letter_headers.v1.json"),
        producers="dispatch (outbox)",
        consumers="operators (replay by hand)",
        kind="dead_letters",
    )
    # dispatch.<department>.v1: one per department (`dispatch_topic_spec`), keyed by
    # dispatch id, carrying task messages (schemas/json/task.v1.json).
    # <topic>.dlq: every stage's rejects (`streams.dlq`), the original value and the
    # headers of schemas/json/dead_letter_headers.v1.json.
    # raw.iot.<feed>, raw.hotline, raw.open311: one per feed definition, keyed by device
    # id (or ticket / request id); their names and payloads live in the feed files.

    def all(self) -> list[TopicSpec]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


TOPICS = Catalogue()


def dispatch_topic_spec(department: str) -> TopicSpec:
    return TopicSpec(
        name=dispatch_topic_name(department),
        key="dispatch id",
        value="task message JSON",
        partitions=None,
        description=f"Tasks for department {department}.",
        schemas=("task.v1.json",),
        producers="dispatch (outbox)",
        consumers=f"department {department}",
        kind="departments",
    )


def topic(app: App, spec: TopicSpec, **options: Any) -> faust.TopicT:
    """The Faust topic for a catalogue entry (raw bytes in, agents decode), with the
    partitions, replicas and `min.insync.replicas` of the app's policy for its class.

    `internal=True` makes the worker create the topic at start-up, before its consumer
    subscribes, instead of relying on the broker's auto-creation on first write."""
    config = {**app.policy.config(), **options.pop("config", {})}
    return app.topic(
        spec.name,
        partitions=spec.partitions or app.policy.partitions_of(spec.kind),
        config=config,
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
