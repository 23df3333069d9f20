"""Faust tables for the stages: a read-only view for pure code (`TableView`), and writing
many keys at once, the changelog acknowledged before returning (`put_many`).

`table[key] = value` puts the changelog record in the producer's buffer, which a
background task empties one record per event-loop turn; a stage that writes hundreds of
keys per batch then spends its time waiting for that buffer. `put_many` sets the keys in
the table's local store and sends their changelog records straight to the producer (the
same topic, key, value and serializers as Faust's own `send_changelog`), then waits for the
broker's acknowledgements: when it returns, a restart would recover these values.

`TableManager` is Faust's without its wait at start (see the class).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

from faust.tables import TableManager as FaustTableManager
from faust.types import TableT


class TableManager(FaustTableManager):
    """Faust's table manager, starting without Faust's fixed one-second sleep: that sleep
    leaves time for tables declared after the app starts, and a citybrain worker declares
    every table when it is built (`citybrain.worker.build_worker`), before it starts. Every
    worker start (and supervised restart) joins its group a second sooner. The body is
    Faust's `on_start` after the sleep (`tests/streams/test_tables.py` holds it to that)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


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
