"""The persist stage's store: one idempotent batch write of event rows."""

from __future__ import annotations

from collections.abc import Sequence

from citybrain.core.event_rows import Row
from citybrain.schemas.tables import EVENTS
from citybrain.settings import Settings
from citybrain.streams.db import get_writer


async def write_events(settings: Settings, rows: Sequence[Row]) -> None:
    """Upsert the rows in one transaction (an event stored before is left as it is)."""
    writer = await get_writer(settings)
    await writer.write(EVENTS, list(rows))
