"""The Kafka transport the Faust app runs on: Faust's aiokafka driver with a cheaper drain.

Faust's consumer hands every fetched record to the conductor inside `Service.wait_first`,
racing the delivery against a rebalance (`suspend_flow`). That race costs four tasks and
an `asyncio.wait` per record, about 25 µs: a worker that does nothing else tops out near
35,000 records/s. Here the delivery coroutine is first run eagerly, in place; it nearly
always finishes without waiting (the record is appended to a queue or a batch), and only
when it does have to wait (a full buffer, flow control during a rebalance) is the rest of
it raced against `suspend_flow`, exactly as Faust does. A fetch waits at most 0.1 s (Faust:
1 s), so that paused partitions are read again soon after they are resumed. The read
offsets, gap tracking,
periodic commits and stop handling are Faust's own, copied from
`faust.transport.consumer.Consumer._drain_messages` (faust-streaming 0.15), except that a
rebalance's seek to the committed offsets holds the stream partitions back and a delivery
that spans such a seek leaves the read offset alone (`Consumer.perform_seek`).

The transport also brings `streams.batches.BatchingConductor`, which delivers the raw feed
topics to their agents a batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Generator, Iterator
from typing import Any, ClassVar

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from intervaltree import IntervalTree

from citybrain.streams.batches import BatchingConductor


class _Rest(Awaitable[Any]):
    """The remainder of a coroutine that was started by hand and is waiting on `pending`:
    awaiting this drives it to the end (sends, throws and close pass through)."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and the like: into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def start_eagerly(coro: Awaitable[Any]) -> _Rest | None:
    """Run `coro` until it first waits. None if it finished; else what is left of it."""
    assert isinstance(coro, Coroutine)
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return _Rest(coro, pending)


#: How long one fetch waits for records of the partitions being read. Faust waits 1 s; a
#: partition paused because its agent fell behind (`streams.batches`) is read again only
#: at the next fetch, so a long wait would leave the agent idle after it caught up.
FETCH_WAIT = 0.1


def next_commit(acked: list[int], head: int) -> tuple[int | None, int]:
    """The commit rule (pure): `acked` sorted, `head` the lowest offset not yet committed
    that was or will be delivered. The offset to commit is the end of the run of
    consecutive acked offsets that starts at `head`; None when `head` itself is not acked
    (read and still being processed). Also how many leading entries of `acked` that used
    up (those below `head` were committed already and are dropped too)."""
    n = len(acked)
    i = 0
    while i < n and acked[i] < head:
        i += 1
    if i == n or acked[i] != head:
        return None, i
    end = head
    while i < n and acked[i] <= end:  # duplicates cannot occur, but must not stop the run
        end = acked[i] + 1
        i += 1
    return end, i


@contextlib.contextmanager
def _phase(app: Any, name: str) -> Iterator[None]:
    """A phase the stall watchdog times, when the app has one."""
    watchdog = getattr(app, "watchdog", None)
    if watchdog is not None:
        watchdog.begin(name)
    try:
        yield
    finally:
        if watchdog is not None:
            watchdog.end(name)


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose drain loop delivers records eagerly, and whose
    commits never pass a record that was read but not yet acknowledged (faust issue 606).

    **The commit rule.** Faust (`faust.transport.consumer.Consumer._new_offset`) commits
    the end of the first run of consecutive acked offsets, and checks that the run starts
    where the last commit left off with `min(acked) - committed > 1`: off by one (committed
    5, acked 6 and 7: it commits 8, and 5 is never processed if the worker dies before 5 is
    done), and not at all when nothing was committed yet (None) or the committed offset is
    0. An agent with one actor acks in offset order and never meets the case; an agent with
    `concurrency > 1` does: a slow batch is acked after the later batches its siblings
    took, Faust commits past it, and a kill -9 during the slow batch loses it (faust-streaming
    issue 606). Here the run must start at the head: the committed offset, or for a
    partition with none, the first offset read since it was assigned or sought (offsets
    below the first one read were never delivered and need no ack). Also the gaps Faust
    records between two read offsets (compaction, transaction markers) included the later,
    read offset itself, so that one counted as acked before it was; `_add_gap` leaves it out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per partition, the first offset read since it was assigned or sought
        self._first_read: dict[TP, int] = {}
        #: seeks to the committed offsets so far: a delivery that spans one does not set
        #: the read offset (see `perform_seek` and the drain loop)
        self._seeks = 0

    def _to_message(self, tp: TP, record: Any) -> Any:
        self._first_read.setdefault(tp, record.offset)
        return super()._to_message(tp, record)

    async def perform_seek(self) -> None:
        """Seek every assigned partition to its committed offset, with the stream (not
        changelog) partitions held back meanwhile.

        Faust calls this at the end of a rebalance (`Recovery.on_recovery_completed`)
        right after `resume_partitions`, with the flow already resumed, and resumes the
        flow again afterwards, which clears every agent's queue. The seek runs in the
        consumer's thread, and it sets the read offsets only when it returns; a fetch
        that runs meanwhile in that thread delivers records from the committed position,
        and the read offsets are then put back under them. The drain loop takes what it
        reads next for a gap and counts the offsets in between as acked, while the
        records it delivered in the window go with the queues Faust clears: never
        processed, never fetched again (a kill -9 with a backlog, then a rebalance: about
        100 records per partition lost or, with the commit head check, never committed).
        Held back, no stream record is fetched or delivered until the positions and the
        read offsets agree again; records fetched before the seek are dropped unread by
        `getmany` (not active) and fetched again from the committed offset."""
        active = self._get_active_partitions()
        held = {tp for tp in active if not self._is_changelog_tp(tp)}
        active.difference_update(held)
        # pauses from before the rebalance are over (the queues were cleared); `getmany`
        # would still hand over the fetched records of a partition marked as paused
        self._buffered_partitions.difference_update(held)
        generation = self.app.consumer_generation_id
        self._seeks += 1
        try:
            await super().perform_seek()
            self._first_read.clear()
        finally:
            if self.app.consumer_generation_id == generation:  # else: a rebalance set them
                active.update(held - self._paused_partitions)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        """Fetch from a snapshot of the active partitions. The fetch runs later, in the
        consumer's thread, and aiokafka reads an empty set as "every partition": Faust
        checks the live set is not empty and passes it on, so a set emptied meanwhile
        (`perform_seek` holding the stream partitions back, the last one paused) fetched
        every partition, and `getmany` dropped the records of the inactive ones after
        their positions had moved past them."""
        snapshot = None if active_partitions is None else set(active_partitions)
        return await super()._getmany(snapshot, timeout)

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._first_read.pop(partition, None)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._first_read.pop(tp, None)
        with _phase(self.app, "revoke"):
            await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        watchdog = getattr(self.app, "watchdog", None)
        if watchdog is not None:
            watchdog.begin("assign")  # until the tables have recovered (App.on_rebalance_end)
        await super().on_partitions_assigned(assigned, generation_id)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Faust's commit, watched (`streams.watchdog`): it first flushes the producer, and
        after a broker was lost that flush can wait for good (aiokafka kept a batch for a
        partition whose leader had died and never completed it; seen in CI: the commit
        begun 2 s before the kill still waited 5 minutes later and nothing was processed
        meanwhile). No progress for the stall limit: the worker exits to be restarted."""
        with _phase(self.app, "commit"):
            return bool(
                await super().force_commit(topics, start_new_transaction=start_new_transaction)
            )

    async def wait_empty(self) -> None:
        """Faust's wait for every record taken to be acked, watched (`streams.watchdog`)."""
        with _phase(self.app, "wait_empty"):
            await super().wait_empty()

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # the drain loop passes (last read + 1, the offset just read): the gap is before it
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps: IntervalTree = self._gap[tp]
        if gaps:  # gap offsets count as acked (as in Faust)
            highest = max(acked)
            below = sorted(gaps.overlap(0, highest), key=lambda iv: iv.begin)
            if below:
                filled = [o for iv in below for o in range(iv.begin, iv.end)]
                acked.extend(filled)
                gaps.chop(0, max(filled[-1] + 1, highest + 1))
        acked.sort()
        committed = self._committed_offset[tp]
        first = self._first_read.get(tp)
        heads = [h for h in (committed, first) if h is not None]
        if not heads:  # acks, but no commit and nothing read since the last seek
            return None
        head = max(heads)
        offset, used = next_commit(acked, head)
        if used:
            self._acked_index[tp].difference_update(acked[:used])
            del acked[:used]
        return offset

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=FETCH_WAIT)
                await self.sleep(0)
                if self.should_stop:
                    continue
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        continue  # already read (Faust logs and drops these too)
                    gap = offset - (r_offset or 0)
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    seeks = self._seeks
                    if suspended():
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    else:
                        rest = start_eagerly(callback(message))
                        if rest is not None:
                            await self.wait_first(rest, self.suspend_flow.wait())
                    if seeks == self._seeks or self._is_changelog_tp(tp):
                        set_read_offset(tp, offset)
                    # else: the partitions were sought to their committed offsets while this
                    # record was being delivered; its read offset would be stale (ahead of
                    # the new position: the records in between skipped as already read)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class Producer(faust_aiokafka.Producer):
    """Faust's producer, idempotent when the app says so (Faust asks for it only inside
    transactions): with acks=all, a send the client retries is written once."""

    def _settings_extra(self) -> Any:
        extra = dict(super()._settings_extra())
        if getattr(self.app, "idempotent", False):
            extra |= {"acks": "all", "enable_idempotence": True}
        return extra


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the eager consumer, the batching conductor and the
    idempotent producer."""

    Consumer: ClassVar[Any] = Consumer
    Producer: ClassVar[Any] = Producer
    Conductor: ClassVar[Any] = BatchingConductor
