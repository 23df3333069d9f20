"""Feed definitions: the built-ins load; errors name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.config_errors import ConfigError
from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feed, load_feeds, select_feeds

GOOD = """\
feed: bridge-vibration
description: test
source_kind: iot
source:
  topic: raw.iot.bridge-vibration
device_id: sensor
observed_at: {path: ts, format: epoch_ms}
location: {lon: lon, lat: lat}
readings:
  - {metric: accel_g, path: accel, unit: g, to_unit: m/s2}
alarms:
  - {rule: threshold, metric: accel_g, above: 2.5, held_for: 0s, category: structure, severity: 1}
"""


def test_all_builtin_feeds_load(feeds: dict[str, Feed]) -> None:
    assert set(feeds) == {
        "smoke-alarm",
        "water-level",
        "manhole-cover",
        "gas-leak",
        "air-quality",
        "noise",
        "streetlight",
        "hotline-12345",
        "open311",
    }
    assert feeds["gas-leak"].definition.source.encoding == "gbk"
    assert feeds["air-quality"].definition.source.format == "csv"
    assert len(load_feeds(BUILTIN_DIR)) == 9


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("source_kind: iot", "source_kind: sensor", ":3: source_kind: Input should be"),
        (
            "topic: raw.iot.bridge-vibration",
            "topic: bridge",
            ":5: source.topic: String should match",
        ),
        (
            "format: epoch_ms}",
            "format: epoch_ms, timezone: Mars/Olympus}",
            ":7: observed_at.timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        ("held_for: 0s", "held_for: soon", ":12: alarms.0.threshold: Value error"),
        (
            "unit: g, to_unit: m/s2",
            "unit: g, to_unit: furlong",
            "readings.accel_g: no conversion from 'g' to 'furlong'",
        ),
        ("metric: accel_g, above", "metric: speed, above", "alarm rule on unknown metric 'speed'"),
        (
            "  topic: raw.iot.bridge-vibration",
            "  topic: raw.iot.bridge-vibration\n  encoding: klingon",
            ":6: source.encoding: Value error, unknown text encoding 'klingon'",
        ),
        (
            "source_kind: iot",
            "source_kind: iot\ntransport: mqtt",
            ":4: transport: Input should be 'kafka' or 'http'",
        ),
        (
            "source_kind: iot",
            'source_kind: iot\ntransport: {mqtt: {topic: "bridge/#/vib"}}',
            ":4: transport.mqtt.topic: Value error, 'bridge/#/vib' is not an MQTT topic filter:"
            " '#' must be the whole last level (level 2: '#')",
        ),
        (
            "source_kind: iot",
            'source_kind: iot\ntransport: {mqtt: {topic: "bridge/+", qos: 0}}',
            ":4: transport.mqtt.qos: Input should be 1",
        ),
        (
            "source_kind: iot",
            "source_kind: iot\ntransport: {ftp: {}}",
            ":4: transport: give kafka, http, {mqtt: {topic: ...}} or {http: {...}}",
        ),
    ],
)
def test_errors_point_at_file_line_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = tmp_path / "bridge.yaml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_feed(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_a_good_new_feed_loads(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(GOOD)
    feed = load_feed(path)
    assert feed.units["accel_g"] == (9.80665, 0.0)


@pytest.mark.parametrize(
    ("transport", "kind"),
    [
        ("", "kafka"),
        ("transport: kafka", "kafka"),
        ("transport: http", "http"),
        ("transport: {http: {max_records: 500}}", "http"),
        ('transport: {mqtt: {topic: "bridge/+/vibration"}}', "mqtt"),
    ],
)
def test_a_feed_declares_its_transport(tmp_path: Path, transport: str, kind: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(GOOD.replace("source_kind: iot", f"source_kind: iot\n{transport}"))
    d = load_feed(path).definition
    assert d.transport_kind == kind
    assert (d.mqtt is not None) == (kind == "mqtt")
    assert (d.http is not None) == (kind == "http")


def test_two_feeds_whose_mqtt_filters_overlap_are_refused(tmp_path: Path) -> None:
    via = 'transport: {mqtt: {topic: "bridge/+/vib"}}'
    first = GOOD.replace("source_kind: iot", f"source_kind: iot\n{via}")
    second = (
        first.replace("feed: bridge-vibration", "feed: bridge-tilt")
        .replace("raw.iot.bridge-vibration", "raw.iot.bridge-tilt")
        .replace("bridge/+/vib", "bridge/B7/#")
    )
    (tmp_path / "a.yaml").write_text(first)
    (tmp_path / "b.yaml").write_text(second)
    with pytest.raises(ConfigError) as info:
        load_feeds(tmp_path)
    where = f"{tmp_path / 'b.yaml'}:4: transport.mqtt.topic"
    assert f"{where}: 'bridge/B7/#' overlaps 'bridge/+/vib'" in str(info.value)
    (tmp_path / "b.yaml").write_text(second.replace("bridge/B7/#", "bridge/B7/tilt"))
    assert len(load_feeds(tmp_path)) == 2


def test_the_builtin_feeds_declare_each_transport(feeds: dict[str, Feed]) -> None:
    assert feeds["manhole-cover"].definition.mqtt is not None
    assert feeds["streetlight"].definition.transport_kind == "http"
    assert feeds["smoke-alarm"].definition.transport_kind == "kafka"


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("feed: x\nsource: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:3: not valid YAML"):
        load_feed(path)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", "every"),
        ("", "every"),
        ("telemetry", "readings"),
        ("reports", "no readings"),
        ("hotline-12345, water-level", ["hotline-12345", "water-level"]),
    ],
)
def test_a_worker_normalizes_the_feeds_it_is_given(spec: str, expected: str | list[str]) -> None:
    feeds = load_feeds(BUILTIN_DIR)
    chosen = select_feeds(feeds, spec)
    if expected == "every":
        assert chosen == feeds
    elif expected == "readings":
        assert chosen and all(f.definition.readings for f in chosen)
        assert len(chosen) == sum(1 for f in feeds if f.definition.readings)
    elif expected == "no readings":
        assert chosen and not any(f.definition.readings for f in chosen)
        assert len(chosen) == sum(1 for f in feeds if not f.definition.readings)
    else:
        assert sorted(f.name for f in chosen) == expected


def test_an_unknown_feed_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown feed\(s\) bridge.*known: .*hotline-12345"):
        select_feeds(load_feeds(BUILTIN_DIR), "hotline-12345,bridge")
