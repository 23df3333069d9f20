"""The stall watchdog's decisions (pure, with a clock of our own) and its exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citybrain.metrics import STALLS
from citybrain.streams.watchdog import EXIT_STALLED, LOOP, Wait, Watchdog, overdue


@pytest.mark.parametrize(
    ("waits", "now", "expected"),
    [
        ([], 100.0, None),
        ([Wait("wait_empty", 0.0, 50.0)], 100.0, None),  # progress 50 s ago: under 60
        ([Wait("wait_empty", 0.0, 30.0)], 100.0, ("wait_empty", 70.0)),
        ([Wait("wait_empty", 0.0, 95.0), Wait("assign", 0.0, 20.0)], 100.0, ("assign", 80.0)),
        ([Wait("revoke", 0.0, 40.0)], 100.0, None),  # exactly the limit is not over it
        ([Wait("revoke", 0.0, 39.96)], 100.0, ("revoke", 100.0 - 39.96)),  # over, and says so
    ],
)
def test_overdue_names_the_phase_that_waited_longest_without_progress(
    waits: list[Wait], now: float, expected: tuple[str, float] | None
) -> None:
    stall = overdue(waits, now, 60.0)
    assert (None if stall is None else (stall.phase, stall.waited)) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_restarts_a_phase_clock_and_a_silent_loop_is_a_stall() -> None:
    clock = Clock()
    dog = Watchdog(60.0, clock=clock, exit=lambda status: None)
    dog.begin("wait_empty")
    clock.now += 50
    dog.progress("wait_empty", 3)  # three records in flight: news
    clock.now += 50
    assert dog.check() is None
    dog.progress("wait_empty", 3)  # no change: no progress
    clock.now += 11
    stall = dog.check()
    assert stall is not None and (stall.phase, stall.waited) == ("wait_empty", 61.0)
    dog.end("wait_empty")
    assert dog.check() is None
    dog.loop = object()  # type: ignore[assignment]  # watching the event loop's beat
    dog.beat()
    clock.now += 61
    stall = dog.check()
    assert stall is not None and stall.phase == LOOP


def test_fire_logs_records_and_exits_with_the_stall_status_then_the_next_worker_counts_it(
    tmp_path: Path,
) -> None:
    exits: list[int] = []
    clock = Clock()
    dog = Watchdog(
        5.0,
        tmp_path,
        describe=lambda: {"in_flight": ["events.v1[3]@23874 refcount=1"], "in_flight_count": 1},
        exit=exits.append,
        clock=clock,
    )
    dog.begin("wait_empty")
    clock.now += 6
    stall = dog.check()
    assert stall is not None
    dog.fire(stall)
    assert exits == [EXIT_STALLED]
    (record,) = tmp_path.glob("stall-*.json")
    data = json.loads(record.read_text())
    assert data["phase"] == "wait_empty" and data["in_flight"] == ["events.v1[3]@23874 refcount=1"]

    before = STALLS.labels("wait_empty")._value.get()
    assert Watchdog(5.0, tmp_path).count_previous() == 1
    assert STALLS.labels("wait_empty")._value.get() == before + 1
    assert list(tmp_path.glob("stall-*.json")) == []  # counted once


def test_sigusr2_logs_every_task_of_every_loop_with_where_it_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's SIGUSR2 (mode's enters pdb) logs each task of each event loop, the
    consumer thread's too, with where it waits."""
    import asyncio
    import threading

    from citybrain.streams import watchdog
    from citybrain.streams.runtime import Worker

    logged: list[dict[str, object]] = []
    monkeypatch.setattr(watchdog.log, "warning", lambda event, **kw: logged.append(kw))
    loop = asyncio.new_event_loop()
    release = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    async def waits_for_the_consumer_thread() -> None:
        await asyncio.sleep(30)

    def run() -> None:
        task = loop.create_task(waits_for_the_consumer_thread())
        tasks.append(task)
        loop.call_soon(release.set)
        loop.run_until_complete(asyncio.wait([task], timeout=5))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert release.wait(5)
        Worker._on_sigusr2(None)  # type: ignore[arg-type]  # what mode calls on SIGUSR2
        stacks = [s for entry in logged for s in entry["tasks"]]  # type: ignore[attr-defined]
        assert any("waits_for_the_consumer_thread" in s for s in stacks), stacks
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(10)
        loop.close()


def test_a_commit_is_a_watched_phase_from_its_start_to_its_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A commit flushes the producer first, and a flush that never ends (a batch for a
    partition whose leader died) stops every commit after it: watched, it is a stall."""
    import asyncio
    from types import SimpleNamespace

    from faust.transport.drivers import aiokafka as faust_aiokafka

    from citybrain.streams.transport import Consumer

    clock = Clock()
    dog = Watchdog(5.0, tmp_path, exit=lambda status: None, clock=clock)
    seen: list[list[str]] = []

    async def flush_then_commit(self: object, topics: object = None, **kw: object) -> bool:
        seen.append(list(dog.waits))
        clock.now += 6  # a flush that does not end
        return True

    monkeypatch.setattr(faust_aiokafka.Consumer, "force_commit", flush_then_commit)
    consumer = Consumer.__new__(Consumer)
    consumer.app = SimpleNamespace(watchdog=dog)  # type: ignore[assignment]
    assert asyncio.run(consumer.force_commit()) is True
    assert seen == [["commit"]]  # watched while it ran
    assert dog.waits == {} and dog.check() is None  # and no longer once it ended
    dog.begin("commit")  # one that does not end
    clock.now += 6
    stall = dog.check()
    assert stall is not None and stall.phase == "commit"
