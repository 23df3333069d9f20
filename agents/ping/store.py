"""The ping stage's store: one idempotent upsert per batch, keyed by ping_id."""

from __future__ import annotations

from collections.abc import Sequence

from citybrain.core.ping import Ping
from citybrain.schemas.tables import PIPELINE_PINGS
from citybrain.settings import Settings
from citybrain.streams.db import get_writer


async def write_pings(settings: Settings, pings: Sequence[Ping]) -> None:
    """Write the batch in one transaction; a ping seen before is left as it is."""
    writer = await get_writer(settings)
    await writer.write(PIPELINE_PINGS, [(p.ping_id, p.sent_at, p.note) for p in pings])
