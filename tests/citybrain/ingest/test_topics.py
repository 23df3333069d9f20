"""MQTT topic filters: validity, matching and overlap, as MQTT 3.1.1 section 4.7 has them."""

from __future__ import annotations

import pytest

from citybrain.ingest.topics import filter_problem, matches, overlap


@pytest.mark.parametrize(
    ("topic_filter", "problem"),
    [
        ("vendor/+/smoke", None),
        ("vendor/#", None),
        ("#", None),
        ("+", None),
        ("a//b", None),  # an empty level is a level
        ("", "an empty topic filter"),
        ("vendor/#/x", "'#' must be the whole last level (level 2: '#')"),
        ("vendor/smoke#", "'#' must be the whole last level (level 2: 'smoke#')"),
        ("vendor/sm+", "'+' must be a whole level (level 2: 'sm+')"),
        ("$SYS/#", "a filter on the broker's own $ topics"),
        ("a\x00b", "a NUL character"),
    ],
)
def test_filter_problem(topic_filter: str, problem: str | None) -> None:
    assert filter_problem(topic_filter) == problem


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matched"),
    [
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/tennis/+", "sport/tennis", False),
        ("sport/#", "sport", True),  # the parent level too
        ("sport/#", "sport/tennis/player1", True),
        ("sport/+", "sport/", True),  # an empty last level
        ("+/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/broker/load", False),  # wildcards never open $ topics
        ("+/broker/load", "$SYS/broker/load", False),
        ("manhole/+/report", "manhole/MH00003/report", True),
        ("manhole/+/report", "manhole/MH00003/status", False),
    ],
)
def test_matches(topic_filter: str, topic: str, matched: bool) -> None:
    assert matches(topic_filter, topic) is matched


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ("manhole/+/report", "manhole/#", True),
        ("manhole/+/report", "manhole/MH1/+", True),
        ("manhole/+/report", "manhole/+/status", False),
        ("a/+", "a", False),
        ("a/#", "a", True),
        ("a/b/c", "a/b", False),
        ("+/x", "y/+", True),
        ("#", "anything/at/all", True),
    ],
)
def test_overlap(a: str, b: str, shared: bool) -> None:
    assert overlap(a, b) is shared
    assert overlap(b, a) is shared
