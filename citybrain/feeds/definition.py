"""Loading feed definitions: YAML files validated against `schemas.feed_definition`, with
errors naming the file, line and field; the built-in feeds ship in `builtin/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from citybrain.config_errors import ConfigError, explain, line_of, load_yaml
from citybrain.feeds.units import converter
from citybrain.geo.devices import DeviceRegistry
from citybrain.schemas.feed_definition import FeedDefinition, parse_duration

BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass
class Feed:
    """A validated definition with what it needs at run time."""

    definition: FeedDefinition
    path: Path
    zone: ZoneInfo
    max_future_s: float
    max_age_s: float
    units: dict[str, tuple[float, float]]
    devices: DeviceRegistry | None

    @property
    def name(self) -> str:
        return self.definition.feed

    @property
    def topic(self) -> str:
        return self.definition.source.topic

    def sample_path(self) -> Path | None:
        s = self.definition.samples
        return self.path.parent / s if s else None


def load_feed(path: Path) -> Feed:
    """Validate one feed file; ConfigError lines are `file:line: field: message`."""
    raw, text = load_yaml(path)
    try:
        definition = FeedDefinition.model_validate(raw)
    except ValidationError as exc:
        raise explain(path, text, exc) from exc
    units = {}
    for reading in definition.readings:
        try:
            units[reading.metric] = converter(reading.unit, reading.to_unit)
        except ValueError as exc:
            raise ConfigError(f"{path}: readings.{reading.metric}: {exc}") from exc
    devices = None
    if definition.location.device_registry:
        registry = path.parent / definition.location.device_registry
        if not registry.is_file():
            raise ConfigError(f"{path}: location.device_registry: {registry} does not exist")
        devices = DeviceRegistry.from_csv(registry, definition.location.device_registry_crs)
    return Feed(
        definition=definition,
        path=path,
        zone=ZoneInfo(definition.observed_at.timezone),
        max_future_s=parse_duration(definition.observed_at.max_future),
        max_age_s=parse_duration(definition.observed_at.max_age),
        units=units,
        devices=devices,
    )


def load_feeds(*folders: Path) -> list[Feed]:
    """Every `*.yaml` feed in the folders (built-ins first); names and topics are unique."""
    feeds: list[Feed] = []
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            feeds.append(load_feed(path))
    check_together(feeds)
    return feeds


def check_together(feeds: list[Feed]) -> None:
    """Feeds that run in one deployment: names and raw topics unique, MQTT filters
    disjoint; ConfigError naming both files otherwise."""
    seen: dict[str, Path] = {}
    topics: dict[str, Path] = {}
    for feed in feeds:
        if feed.name in seen:
            raise ConfigError(
                f"{feed.path}: feed {feed.name!r} is also defined in {seen[feed.name]}"
            )
        if feed.topic in topics:
            raise ConfigError(
                f"{feed.path}: topic {feed.topic} is also read by {topics[feed.topic]}"
            )
        seen[feed.name] = feed.path
        topics[feed.topic] = feed.path
    _no_shared_mqtt_topics(feeds)


def _no_shared_mqtt_topics(feeds: list[Feed]) -> None:
    """Two feeds whose MQTT filters could both match one topic: a message would belong to
    both (the bridge could not tell which feed it is), so the pair is refused."""
    from citybrain.ingest.topics import overlap

    mqtt = [(f, f.definition.mqtt) for f in feeds if f.definition.mqtt is not None]
    for index, (feed, spec) in enumerate(mqtt):
        for other, other_spec in mqtt[:index]:
            assert spec is not None and other_spec is not None
            if overlap(spec.topic, other_spec.topic):
                line = line_of(feed.path.read_text("utf-8"), ("transport", "mqtt", "topic"))
                raise ConfigError(
                    f"{feed.path}:{line or 1}: transport.mqtt.topic: {spec.topic!r} overlaps "
                    f"{other_spec.topic!r} of feed {other.name!r} ({other.path}): a message "
                    "could belong to both"
                )


def with_city_devices(feeds: list[Feed], city_pack: str | Path) -> list[Feed]:
    """The feeds with the city pack's sensor registries (`devices:` in its pack.yaml) in
    place of their definitions' own; a registry for a feed that does not exist is an error."""
    from dataclasses import replace

    from citybrain.geo.pack import read_manifest

    folder, spec, _ = read_manifest(city_pack)
    if not spec.devices:
        return feeds
    names = {f.name for f in feeds}
    unknown = sorted(set(spec.devices) - names)
    if unknown:
        raise ConfigError(f"{folder / 'pack.yaml'}: devices: no feed called {', '.join(unknown)}")
    out = []
    for feed in feeds:
        registry = spec.devices.get(feed.name)
        if registry is not None:
            path = folder / registry.file
            if not path.is_file():
                raise ConfigError(f"{folder / 'pack.yaml'}: devices.{feed.name}: {path} is missing")
            feed = replace(feed, devices=DeviceRegistry.from_csv(path, registry.crs))
        out.append(feed)
    return out


def feed_folders(extra: str | None) -> list[Path]:
    """The built-in folder plus `CITYBRAIN_FEEDS_DIR` folders (colon separated)."""
    folders = [BUILTIN_DIR]
    if extra:
        folders += [Path(p) for p in extra.split(":") if p]
    return folders


def select_feeds(feeds: list[Feed], spec: str) -> list[Feed]:
    """The feeds a worker normalizes (`CITYBRAIN_NORMALIZE_FEEDS`): `all`, `telemetry`
    (feeds with readings), `reports` (feeds without) or comma-separated names; an unknown
    name is an error that lists the known ones."""
    spec = spec.strip()
    if spec in ("", "all"):
        return list(feeds)
    if spec == "telemetry":
        return [f for f in feeds if f.definition.readings]
    if spec == "reports":
        return [f for f in feeds if not f.definition.readings]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    known = {f.name for f in feeds}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"CITYBRAIN_NORMALIZE_FEEDS: unknown feed(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return [f for f in feeds if f.name in names]
