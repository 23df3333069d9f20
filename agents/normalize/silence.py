"""The silence rule's timer: devices of this worker's partitions quiet for too long raise
an alarm event (`citybrain.feeds.pipeline.silent_devices` decides)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from faust.types import TableT

from citybrain.agents.context import StageContext
from citybrain.feeds.definition import Feed
from citybrain.feeds.pipeline import alarm_event, silent_devices
from citybrain.geo.geotag import LocationRequest
from citybrain.logs import get_logger
from citybrain.schemas.events import Location, RawRef
from citybrain.schemas.feed_definition import SilenceRule, parse_duration
from citybrain.streams.publish import publish_event

log = get_logger(__name__)


def install_silence_sweep(
    ctx: StageContext, feed: Feed, table: TableT, events: Any, correlate: Any
) -> None:
    silence = next((r for r in feed.definition.alarms if isinstance(r, SilenceRule)), None)
    if silence is None:
        return
    interval = max(10.0, min(300.0, parse_duration(silence.after) / 6))

    async def sweep() -> int:
        now = datetime.now(UTC)
        found = silent_devices(feed, ((str(k), v) for k, v in list(table.items())), now)
        if not found:
            return 0
        requests = [LocationRequest(device_id=d) for d, _, _ in found]
        places = ctx.geotagger.place(requests, feed.devices)
        pending = []
        for (device_id, new_state, alarm), place in zip(found, places, strict=True):
            location = Location(
                status="needs_location" if place.lon is None else place.location_status,
                lon=place.lon,
                lat=place.lat,
                device_id=device_id,
                method=place.method,
                district=place.district,
                grid_cell=place.grid_cell,
                jurisdiction=dict(place.jurisdiction),
            )
            event = alarm_event(feed, alarm, location, RawRef(feed.topic, 0, 0, device_id), now)
            pending += await publish_event(events, correlate, event)
            table[device_id] = new_state
        await asyncio.gather(*pending)
        return len(found)

    async def silence_sweep() -> None:
        try:
            count = await sweep()
            if count:
                log.info("devices silent", feed=feed.name, count=count)
        except Exception:
            log.exception("silence sweep failed", feed=feed.name)

    silence_sweep.__name__ = f"silence_sweep_{feed.name.replace('-', '_')}"
    ctx.app.timer(interval=interval)(silence_sweep)
