"""Writing many keys of a Faust table at once, the changelog acknowledged before returning.

`table[key] = value` puts the changelog record in the producer's buffer, which a
background task empties one record per event-loop turn; a stage that writes hundreds of
keys per batch then spends its time waiting for that buffer. `put_many` sets the keys in
the table's local store and sends their changelog records straight to the producer (the
same topic, key, value and serializers as Faust's own `send_changelog`), then waits for the
broker's acknowledgements: when it returns, a restart would recover these values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.types import TableT


async def put_many(table: TableT, items: Mapping[Any, Any]) -> None:
    """Set every key of `items` in `table` and wait until its changelog has them."""
    collection: Any = table  # a faust Table: its serializers are not on TableT
    changelog = table.changelog_topic
    store = table.data
    pending = []
    for key, value in items.items():
        store[key] = value
        pending.append(
            await changelog.send(
                key=key,
                value=value,
                key_serializer=collection.key_serializer,
                value_serializer=collection.value_serializer,
                callback=collection._on_changelog_sent,
            )
        )
    if pending:
        await asyncio.gather(*pending)
