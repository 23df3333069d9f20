"""The schema of a feed definition file (YAML): how one vendor's records become canonical
events and readings. Validated with pydantic; errors point at the file, line and field.

A feed either reports events itself (each record is an alarm or a report: `event`), or
sends telemetry (`readings`) that `alarms` rules turn into events, or both.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from citybrain.schemas.fields import Duration, Strict, TimeZoneName, parse_duration


class Source(Strict):
    topic: str = Field(pattern=r"^raw\.[a-z0-9._-]+$")
    key: str = Field("device_id", description="Which mapped field the record key carries.")
    format: Literal["json", "csv"] = "json"
    encoding: str = "utf-8"
    csv_columns: list[str] | None = None
    csv_delimiter: str = ","
    max_bytes: int = Field(1_048_576, gt=0)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown text encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _csv_needs_columns(self) -> Source:
        if self.format == "csv" and not self.csv_columns:
            raise ValueError("format csv needs csv_columns")
        return self


class MqttTransport(Strict):
    """The vendor publishes to an MQTT broker; `citybrain bridge mqtt` subscribes."""

    topic: str = Field(description="Topic filter, MQTT wildcards allowed: vendor/+/smoke.")
    qos: Literal[1] = Field(
        1,
        description="Subscription QoS 1: a message is acknowledged (PUBACK) only once Kafka "
        "has it, so the broker sends it again to a bridge that died before.",
    )

    @field_validator("topic")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        from citybrain.ingest.topics import filter_problem

        problem = filter_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r} is not an MQTT topic filter: {problem}")
        return value


class HttpTransport(Strict):
    """The vendor POSTs batches to `/ingest/v1/{feed}` with an ingest token."""

    max_records: int | None = Field(
        None, gt=0, description="Records a request may carry (default: the API's setting)."
    )


class ViaMqtt(Strict):
    mqtt: MqttTransport


class ViaHttp(Strict):
    http: HttpTransport


def _transport_shape(value: object) -> str | None:
    if isinstance(value, str):
        return "transport"
    if isinstance(value, dict):
        return "mqtt" if "mqtt" in value else "http" if "http" in value else None
    return "mqtt" if isinstance(value, ViaMqtt) else "http" if isinstance(value, ViaHttp) else None


#: `kafka` (the vendor writes the raw topic), `http`, or `{mqtt: {topic: ...}}` /
#: `{http: {...}}` with options
Transport = Annotated[
    Annotated[Literal["kafka", "http"], Tag("transport")]
    | Annotated[ViaMqtt, Tag("mqtt")]
    | Annotated[ViaHttp, Tag("http")],
    Discriminator(
        _transport_shape,
        custom_error_type="transport",
        custom_error_message="give kafka, http, {mqtt: {topic: ...}} or {http: {...}}",
    ),
]


class Timestamp(Strict):
    path: str
    format: str = Field("iso8601", description="iso8601, epoch_s, epoch_ms or a strptime format")
    timezone: TimeZoneName = "Asia/Shanghai"
    max_future: Duration = "5m"
    max_age: Duration = Field(
        "730d", description="Older than this at receipt: a stale_timestamp dead letter."
    )


class Mapped(Strict):
    """A value taken from the payload, optionally translated through a table."""

    path: str | None = None
    const: str | int | float | None = None
    map: dict[str, str | int] | None = None
    default: str | int | float | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Mapped:
        if self.path is None and self.const is None:
            raise ValueError("give a path or a const")
        return self


class Location(Strict):
    lon: str | None = None
    lat: str | None = None
    crs: Literal["WGS-84", "GCJ-02", "BD-09"] = "WGS-84"
    address: str | None = None
    device_registry: str | None = Field(None, description="CSV next to the feed file.")
    device_registry_crs: Literal["WGS-84", "GCJ-02", "BD-09"] = "WGS-84"


class EventMapping(Strict):
    """Each record is an event (alarm, clear or report)."""

    id: list[str] = Field(min_length=1, description="Paths whose values identify the record.")
    kind: Mapped = Mapped(const="alarm")
    category: Mapped
    severity: Mapped = Mapped(const=3)
    text: str | None = None
    max_text: int = Field(
        4000, gt=0, description="Characters of free text stored (the original size is kept)."
    )
    caller_phone: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class Reading(Strict):
    metric: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    path: str
    unit: str
    to_unit: str | None = None
    plausible: tuple[float, float] | None = Field(
        None,
        description="[low, high] in the stored unit: outside, an implausible_value dead letter.",
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> Reading:
        if self.plausible is not None and not self.plausible[0] < self.plausible[1]:
            raise ValueError(f"plausible: {list(self.plausible)} must be [low, high], low < high")
        return self


class ThresholdRule(Strict):
    rule: Literal["threshold"]
    metric: str
    above: float | None = None
    below: float | None = None
    held_for: str = "0s"
    category: str
    severity: int = Field(3, ge=1, le=4)

    @model_validator(mode="after")
    def _bound(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above / below")
        parse_duration(self.held_for)
        return self


class RateRule(Strict):
    rule: Literal["rate_of_change"]
    metric: str
    rise: float = Field(gt=0, description="Alarm when the value rises by this much ...")
    within: Duration = Field(description="... within this long.")
    category: str
    severity: int = Field(3, ge=1, le=4)


class SilenceRule(Strict):
    rule: Literal["silence"]
    after: Duration
    category: str = "device_offline"
    severity: int = Field(4, ge=1, le=4)


AlarmRule = Annotated[ThresholdRule | RateRule | SilenceRule, Field(discriminator="rule")]


class FeedDefinition(Strict):
    """The schema of `<feed>.yaml`."""

    feed: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str
    source_kind: Literal["iot", "hotline", "open311"]
    source: Source
    transport: Transport = Field(
        "kafka", description="How the vendor delivers: kafka, http, or {mqtt: {topic: ...}}."
    )
    device_id: str | None = Field(None, description="Path of the device id.")
    observed_at: Timestamp
    location: Location = Location()
    event: EventMapping | None = None
    readings: list[Reading] = Field(default_factory=list)
    alarms: list[AlarmRule] = Field(default_factory=list)
    samples: str | None = Field(None, description="JSONL of sample payloads, next to the file.")

    @property
    def transport_kind(self) -> Literal["kafka", "mqtt", "http"]:
        if isinstance(self.transport, ViaMqtt):
            return "mqtt"
        if isinstance(self.transport, ViaHttp) or self.transport == "http":
            return "http"
        return "kafka"

    @property
    def mqtt(self) -> MqttTransport | None:
        return self.transport.mqtt if isinstance(self.transport, ViaMqtt) else None

    @property
    def http(self) -> HttpTransport | None:
        if isinstance(self.transport, ViaHttp):
            return self.transport.http
        return HttpTransport() if self.transport == "http" else None

    @model_validator(mode="after")
    def _has_output(self) -> FeedDefinition:
        if self.event is None and not self.readings:
            raise ValueError("a feed needs `event` or `readings` (or both)")
        metrics = {r.metric for r in self.readings}
        for rule in self.alarms:
            metric = getattr(rule, "metric", None)
            if metric is not None and metric not in metrics:
                raise ValueError(f"alarm rule on unknown metric {metric!r}")
        if (self.readings or self.alarms) and self.device_id is None:
            raise ValueError("readings and alarms need device_id")
        return self
