"""How a stage publishes a canonical event: to `events.v1` (keyed by correlation cell, for
persistence and for anyone reading events) and straight to `correlate.v1` (the correlation
owner's single partition), so that a report skips the funnel's hop on its way to a
department. The copy on `events.v1` carries the `ROUTED` header: the funnel
(`agents.correlate.route`) forwards only events without it (those other producers wrote to
`events.v1`), so each event reaches the correlation owner once."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import faust

from citybrain.core.cells import correlation_key
from citybrain.schemas.events import CanonicalEvent

ROUTED = "citybrain.routed"
#: the single correlation owner's key on correlate.v1
CORRELATE_KEY = b"city"
#: the `citybrain.message` header of an operator's command forwarded to correlate.v1
COMMAND_KIND = b"command"


async def publish_event(
    events_topic: faust.TopicT, correlate_topic: faust.TopicT, event: CanonicalEvent
) -> list[Awaitable[Any]]:
    """Send one event to both topics; the futures of the brokers' acknowledgements."""
    value = event.to_json()
    key = correlation_key(event.location.lon, event.location.lat, event.location.district)
    return [
        await correlate_topic.send(key=CORRELATE_KEY, value=value),
        await events_topic.send(key=key.encode(), value=value, headers=[(ROUTED, b"1")]),
    ]


def was_routed(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """Whether a message on events.v1 went to correlate.v1 already (pure)."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(name == ROUTED for name, _ in pairs)
