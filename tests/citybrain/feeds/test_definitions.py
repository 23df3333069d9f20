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
