"""MQTT topic filters (pure): which filters are valid, which topics they match, and whether
two feeds' filters could both match one topic (an ambiguous pair of feed definitions).

The rules are MQTT 3.1.1's (section 4.7): levels split on `/`; `+` is a whole level and
matches exactly one; `#` is the whole last level and matches that level's parent and
everything below it; a filter starting with a wildcard never matches a topic that starts
with `$` (the broker's own `$SYS/...`).
"""

from __future__ import annotations

from functools import lru_cache

#: MQTT's limit on a topic or filter (a UTF-8 string of at most 65,535 bytes)
MAX_BYTES = 65_535


def filter_problem(topic_filter: str) -> str | None:
    """Why `topic_filter` is not a valid MQTT subscription filter, or None when it is."""
    if not topic_filter:
        return "an empty topic filter"
    if len(topic_filter.encode()) > MAX_BYTES:
        return f"longer than {MAX_BYTES} bytes"
    if "\x00" in topic_filter:
        return "a NUL character"
    if topic_filter.startswith("$"):
        return "a filter on the broker's own $ topics"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"'#' must be the whole last level (level {index + 1}: {level!r})"
        if "+" in level and level != "+":
            return f"'+' must be a whole level (level {index + 1}: {level!r})"
    return None


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message published on `topic` is delivered to `topic_filter`."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    return _match(tuple(topic_filter.split("/")), tuple(topic.split("/")))


@lru_cache(maxsize=1024)
def _match(pattern: tuple[str, ...], levels: tuple[str, ...]) -> bool:
    if not pattern:
        return not levels
    head = pattern[0]
    if head == "#":
        return True  # the parent level itself, and everything below it
    if not levels:
        return False
    if head != "+" and head != levels[0]:
        return False
    return _match(pattern[1:], levels[1:])


def overlap(a: str, b: str) -> bool:
    """Whether some topic matches both filters (then a message could belong to two feeds)."""
    return _overlap(tuple(a.split("/")), tuple(b.split("/")))


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        # one is used up: the other must match nothing more, or be a trailing `#`
        rest = a or b
        return not rest or rest == ("#",)
    if a[0] == "#" or b[0] == "#":
        return True
    if a[0] != "+" and b[0] != "+" and a[0] != b[0]:
        return False
    return _overlap(a[1:], b[1:])
