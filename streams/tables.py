"""Faust tables for the stages: a read-only view for pure code (`TableView`), and writing
many keys at once, the changelog acknowledged before returning (`put_many`).

`table[key] = value` puts the changelog record in the producer's buffer, which a
background task empties one record per event-loop turn; a stage that writes hundreds of
keys per batch then spends its time waiting for that buffer. `put_many` sets the keys in
the table's local store and sends their changelog records straight to the producer (the
same topic, key, value and serializers as Faust's own `send_changelog`), then waits for the
broker's acknowledgements: when it returns, a restart would recover these values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
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


class TableView(Mapping[str, dict[str, Any]]):
    """Read-only view of a Faust table for pure code; `pending`: the states of the batch
    still being finished, which the table does not hold yet."""

    def __init__(
        self, table: TableT | None, pending: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        self.table = table
        self.pending = pending or {}

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = self.pending.get(key)
        if value is None and self.table is not None:
            value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return dict(value)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
