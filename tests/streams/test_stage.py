"""The stage helper's loop on a batch, without a broker: decoding rejects, the stage's own
rejections, retries after a transient error (which start again from the decoding),
isolation of the record that fails on its own, and what is counted as ok."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import psycopg
import pytest
from faust.types import Message

from citybrain.streams import stage as stage_module
from citybrain.streams.stage import Batch, EmptyValue, Stage, _Runner, decode_batch, value_of


def record(value: bytes | None, offset: int) -> Message:
    return Message("t", 0, offset, 0.0, 0, [], b"k", value, None)


def decode(m: Message) -> int:
    return int(value_of(m))


class Recording(Stage):
    """A stage whose dead letters are recorded (the sending itself is `streams.dlq`'s,
    tested against the broker in tests/streams/test_dlq.py)."""

    def __init__(self) -> None:
        super().__init__(faust.App("stage-test", broker="kafka://127.0.0.1:1"), "test")
        self.sent: list[tuple[int, str]] = []

    async def dead_letters(self, batch: Batch[Any]) -> None:
        seen = {r.position: r.reason for r in batch.rejected}
        self.sent += sorted(seen.items())


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"x", "schema_violation"), (None, "empty_value")],
)
def test_a_record_that_does_not_decode_is_rejected_with_its_reason(
    value: bytes | None, reason: str
) -> None:
    batch = decode_batch([record(b"1", 0), record(value, 1), record(b"3", 2)], decode)
    assert batch.items == [1, 3]
    assert batch.positions == [0, 2]
    assert [(r.position, r.reason) for r in batch.rejected] == [(1, reason)]
    assert batch.ok == 2


def test_empty_value_names_its_reason() -> None:
    assert EmptyValue("x").reason == "empty_value"


def run(runner: _Runner[Any], records: list[Message]) -> None:
    asyncio.run(runner.run(records))


def test_the_stage_rejects_items_by_index_and_the_records_go_to_dead_letters() -> None:
    stage = Recording()

    async def process(batch: Batch[int]) -> None:
        for index, item in enumerate(batch.items):
            if item % 2:
                batch.reject(index, "odd", ValueError(str(item)))

    run(
        _Runner(stage, process, decode, None, ""),
        [record(b"2", 0), record(b"x", 1), record(b"3", 2)],
    )
    assert stage.sent == [(1, "schema_violation"), (2, "odd")]


def test_a_transient_error_retries_the_batch_from_its_decoding(monkeypatch: Any) -> None:
    monkeypatch.setattr("citybrain.streams.retry.backoff_delay", lambda *a, **k: 0.0)
    stage = Recording()
    attempts: list[list[int]] = []

    async def process(batch: Batch[int]) -> None:
        attempts.append(list(batch.items))
        batch.reject(0, "first", ValueError("x"))
        if len(attempts) == 1:
            raise psycopg.OperationalError("the database went away")

    run(_Runner(stage, process, decode, None, ""), [record(b"5", 0), record(b"6", 1)])
    assert attempts == [[5, 6], [5, 6]]
    assert stage.sent == [(0, "first")]  # the failed attempt's rejection is not kept twice


def test_isolation_dead_letters_only_the_record_that_fails_on_its_own() -> None:
    stage = Recording()
    stored: list[int] = []

    async def process(batch: Batch[int]) -> None:
        if 7 in batch.items:
            raise ValueError("the database refuses 7")
        stored.extend(batch.items)

    records = [record(b"1", 0), record(b"7", 1), record(b"9", 2)]
    run(_Runner(stage, process, decode, "storage_rejected", ""), records)
    assert stored == [1, 9]
    assert stage.sent == [(1, "storage_rejected")]


def test_without_isolation_an_error_stops_the_agent() -> None:
    async def process(batch: Batch[int]) -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run(_Runner(Recording(), process, decode, None, ""), [record(b"1", 0)])


def test_the_stage_may_say_how_many_records_count_as_ok() -> None:
    batch = decode_batch([record(b"1", 0), record(b"2", 1)], decode)
    assert batch.ok == 2
    batch.counted = 1
    assert batch.ok == 1


def test_a_pipelined_stage_must_read_a_batch_topic() -> None:
    stage = Recording()

    async def process(batch: Batch[int]) -> None:
        return None

    with pytest.raises(TypeError, match="BatchTopic"):
        stage.agent(stage.app.topic("t"), name="x", process=process, pipelined=True)
    assert stage_module.Stage is Stage
