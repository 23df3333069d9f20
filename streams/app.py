"""The Faust application factory: broker, consumer group, stores, all taken from `Settings`.

`create_app` is called once per worker by the composition root
(`citybrain.worker.build_worker`), which then installs the stages' agents on it; nothing
here runs at import.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust
from mode.utils.queues import ThrowableQueue

from citybrain.settings import Settings
from citybrain.streams.clients import faust_credentials
from citybrain.streams.inflight import ReleasingQueue
from citybrain.streams.producer_state import producer_state
from citybrain.streams.replication import TopicPolicy
from citybrain.streams.tables import TableManager
from citybrain.streams.transport import Transport
from citybrain.streams.watchdog import Watchdog

#: At most this many partitions' oldest records in flight are named when the watchdog fires.
NAMED_IN_FLIGHT = 20


class App(faust.App):
    """Faust's App on citybrain's transport (`streams.transport`: an eager drain loop and
    batch delivery for `streams.batches.BatchTopic`s), whose agents' queues release what a
    rebalance drops (`streams.inflight`). `policy`: what the topics it creates get
    (`streams.replication`); `idempotent`: its producer's `enable.idempotence`."""

    policy: TopicPolicy = TopicPolicy()
    idempotent: bool = True

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    def FlowControlQueue(  # Faust's name
        self, maxsize: int | None = None, *, clear_on_resume: bool = False
    ) -> ThrowableQueue:
        queue: Any = ReleasingQueue(
            self, maxsize=maxsize, flow_control=self.flow_control, clear_on_resume=clear_on_resume
        )
        return queue

    # --- the stall watchdog (`streams.watchdog`) ----------------------------------------------
    watchdog: Watchdog | None = None

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        if self.watchdog is not None:
            self.watchdog.end("assign")  # a new rebalance supersedes the last assignment

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        if self.watchdog is not None:
            self.watchdog.end("assign")

    async def on_start(self) -> None:
        await super().on_start()
        watchdog = self.watchdog
        if watchdog is not None and not self.client_only and watchdog.limit > 0:
            watchdog.count_previous()
            watchdog.describe = self.in_flight
            watchdog.start(asyncio.get_running_loop())
            self.add_future(self._beat(watchdog))

    async def on_shutdown(self) -> None:
        # stopped (a stop that hangs is still watched until here)
        if self.watchdog is not None:
            self.watchdog.stop()
        await super().on_shutdown()

    async def _beat(self, watchdog: Watchdog) -> None:
        """Once a second: the loop is alive, and the progress of the phases it waits in."""
        try:
            while True:
                await asyncio.sleep(1.0)
                watchdog.beat()
                with contextlib.suppress(Exception):  # a reading must never stop the worker
                    consumer: Any = self.consumer
                    tables: Any = self.tables
                    in_flight = len(consumer._unacked_messages)
                    offsets = tables.recovery.active_offsets.values()
                    recovered = sum(o for o in offsets if o is not None)
                    watchdog.progress("wait_empty", in_flight)
                    watchdog.progress("revoke", in_flight)
                    watchdog.progress("assign", recovered)
        finally:
            watchdog.loop = None  # stopping: the phases are still watched, the beat no more

    def in_flight(self) -> dict[str, Any]:
        """What the worker waits for: the records taken and not acked (topic, partition,
        offset; the oldest first), whether a commit is under way, the rebalance state, and
        what the producer holds (`streams.producer_state`)."""
        consumer: Any = self.consumer
        tables: Any = self.tables
        messages: list[Any] = []
        for _ in range(5):
            with contextlib.suppress(RuntimeError):  # changed while being read
                messages = list(consumer._unacked_messages)
                break
        oldest: dict[tuple[str, int], Any] = {}
        counts: dict[tuple[str, int], int] = {}
        for m in messages:
            tp = (m.topic, m.partition)
            counts[tp] = counts.get(tp, 0) + 1
            if tp not in oldest or m.offset < oldest[tp].offset:
                oldest[tp] = m
        named = sorted(oldest.items())[:NAMED_IN_FLIGHT]
        return {
            "in_flight_count": len(messages),
            # per partition, the oldest record not acked (the one commits wait for)
            "in_flight": [
                f"{t}[{p}]@{m.offset} refcount={m.refcount} in_flight={counts[(t, p)]}"
                for (t, p), m in named
            ],
            "commit_in_progress": consumer._commit_fut is not None,
            "rebalancing": bool(self.rebalancing),
            "in_recovery": bool(tables.recovery.in_recovery),
            # what a commit's flush waits for
            **producer_state(getattr(self.producer, "_producer", None)),
        }


def create_app(settings: Settings, policy: TopicPolicy | None = None) -> App:
    """A Faust app configured for citybrain; `policy` (resolved against the cluster by the
    worker's start, `streams.runtime.resolve_policy`) or the settings' own."""
    policy = policy or TopicPolicy.of(settings)
    datadir = settings.data_dir / "faust" / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = App(
        settings.app_id,
        broker=settings.kafka_broker_url,
        autodiscover=False,
        datadir=str(datadir),  # under the data folder, not the working directory
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=policy.replicas,
        broker_credentials=faust_credentials(settings),
        topic_disable_leader=True,
        consumer_auto_offset_reset=settings.kafka_offset_reset,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=settings.kafka_heartbeat_s,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_enabled=True,
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        producer_acks=-1,
        producer_linger_ms=settings.kafka_linger_ms,
        key_serializer="raw",
        value_serializer="raw",
        TableManager=TableManager,  # no fixed wait at start (`streams.tables`)
    )
    app.policy = policy
    app.idempotent = settings.kafka_idempotence
    app.watchdog = Watchdog(settings.stall_timeout, datadir / "stalls")
    return app
