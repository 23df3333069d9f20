"""Every private name of faust-streaming, mode and asyncio that `streams/` relies on, in one
table, checked against the installed release (`tests/streams/test_private_names.py`).

citybrain runs on faust-streaming's internals where its public API does not reach: the
drain loop and the commit rule (`transport.py`), batch delivery (`batches.py`, `take.py`),
records in flight (`inflight.py`), the stall watchdog (`app.py`), changelog writes
(`tables.py`), the readiness probe (`health.py`). A rename upstream would otherwise fail
silently (a `getattr` default) or only under a rebalance. `pyproject.toml` pins the minor
release this table was checked on; a new release is taken by running the test, then the
fault suite.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateName:
    """`name` on `owner` (`module:Class`, or `module` for a module attribute)."""

    owner: str
    name: str
    used_in: str
    why: str


CONSUMER = "faust.transport.consumer:Consumer"
STREAM = "faust.streams:Stream"
CONDUCTOR = "faust.transport.conductor:Conductor"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # --- the consumer: acks, commits, the drain loop -------------------------------------------
    PrivateName(
        CONSUMER,
        "_unacked_messages",
        "inflight.py, batches.py, app.py",
        "the set a rebalance waits on: tracked, released, named by the watchdog",
    ),
    PrivateName(
        CONSUMER, "_commit_fut", "app.py", "the watchdog says whether a commit is under way"
    ),
    PrivateName(CONSUMER, "_acked", "transport.py", "acked offsets per partition (commit rule)"),
    PrivateName(CONSUMER, "_acked_index", "transport.py", "the same as a set"),
    PrivateName(CONSUMER, "_n_acked", "transport.py", "acks since the last commit (drain loop)"),
    PrivateName(CONSUMER, "_committed_offset", "transport.py", "the commit rule's head"),
    PrivateName(CONSUMER, "_gap", "transport.py", "offsets skipped by the broker (commit rule)"),
    PrivateName(CONSUMER, "_add_gap", "transport.py", "overridden: the gap before a read offset"),
    PrivateName(CONSUMER, "_new_offset", "transport.py", "overridden: the commit rule"),
    PrivateName(CONSUMER, "_read_offset", "transport.py", "the drain loop's read offsets"),
    PrivateName(CONSUMER, "_commit_every", "transport.py", "the drain loop's commit count"),
    PrivateName(CONSUMER, "_drain_messages", "transport.py", "overridden: the eager drain loop"),
    PrivateName(CONSUMER, "_getmany", "transport.py", "overridden: fetch from a snapshot"),
    PrivateName(CONSUMER, "_to_message", "transport.py", "overridden: first offset read"),
    PrivateName(CONSUMER, "_get_active_partitions", "transport.py", "held back during a seek"),
    PrivateName(CONSUMER, "_is_changelog_tp", "transport.py", "changelogs are not held back"),
    PrivateName(CONSUMER, "_buffered_partitions", "transport.py", "pauses cleared at a seek"),
    PrivateName(CONSUMER, "_paused_partitions", "transport.py", "pauses kept at a seek"),
    PrivateName("mode.services:Service", "_stopped", "transport.py", "the fetcher's stop flag"),
    PrivateName(
        "mode.worker:Worker",
        "_on_sigusr2",
        "runtime.py",
        "overridden: SIGUSR2 logs every task (mode enters pdb)",
    ),
    PrivateName(
        "mode.worker:Worker",
        "_gather_all",
        "runtime.py",
        "overridden: the tasks left at a stop get 0.2 s, not 1 s",
    ),
    PrivateName(
        "mode.worker:Worker",
        "_sentinel_task",
        "runtime.py",
        "overridden: the last pass before the loop closes is short, not 1 s",
    ),
    PrivateName(
        "faust.types.tuples",
        "ack_lock",
        "inflight.py",
        "a release decides under the lock acks take",
    ),
    # --- the conductor: batch delivery -------------------------------------------------------
    PrivateName(CONDUCTOR, "_tp_to_callback", "batches.py", "partition -> delivery callback"),
    PrivateName(CONDUCTOR, "_tp_to_callback_lock", "batches.py", "guards its rebuild"),
    PrivateName(CONDUCTOR, "_compile_message_handler", "batches.py", "overridden: lock-free"),
    PrivateName(CONDUCTOR, "_build_handler", "batches.py", "overridden: batch topics"),
    # --- channels and streams: take_ready, batch topics -------------------------------------
    PrivateName("faust.channels:Channel", "_queue", "batches.py", "BatchTopic's own queue"),
    PrivateName("faust.channels:Channel", "_clone_args", "batches.py", "BatchTopic's clones"),
    PrivateName(STREAM, "_processors", "take.py", "take_ready's buffer is a processor"),
    PrivateName(STREAM, "_enable_passive", "take.py", "the stream drains into the buffer"),
    PrivateName(STREAM, "_active_agens", "take.py", "the stream closes take_ready at stop"),
    PrivateName("asyncio:Queue", "_queue", "inflight.py", "what a cleared queue drops"),
    # --- the app, tables -------------------------------------------------------------------
    PrivateName("faust.app.base:App", "_new_transport", "app.py", "citybrain's transport"),
    PrivateName(
        "faust.transport.drivers.aiokafka:Producer",
        "_settings_extra",
        "transport.py",
        "overridden: enable.idempotence outside transactions",
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka:Producer",
        "_producer",
        "health.py",
        "the readiness probe asks the broker for metadata on the worker's own producer",
    ),
    PrivateName(
        "faust.tables.manager:TableManager",
        "_update_channels",
        "tables.py",
        "on_start without Faust's 1 s sleep: the rest of its body",
    ),
    PrivateName(
        "faust.tables.base:Collection",
        "_on_changelog_sent",
        "tables.py",
        "changelog writes acknowledged in a batch",
    ),
    # --- aiokafka's producer, read by the watchdog's report (producer_state.py) -------------
    PrivateName(
        "aiokafka.producer.producer:AIOKafkaProducer",
        "_message_accumulator",
        "producer_state.py",
        "the batches a flush waits for",
    ),
    PrivateName(
        "aiokafka.producer.producer:AIOKafkaProducer",
        "_sender",
        "producer_state.py",
        "the requests in flight",
    ),
    PrivateName(
        "aiokafka.producer.message_accumulator:MessageAccumulator",
        "_batches",
        "producer_state.py",
        "batches queued per partition",
    ),
    PrivateName(
        "aiokafka.producer.message_accumulator:MessageAccumulator",
        "_pending_batches",
        "producer_state.py",
        "batches sent and not answered",
    ),
    PrivateName(
        "aiokafka.producer.sender:Sender",
        "_muted_partitions",
        "producer_state.py",
        "partitions with a request in flight",
    ),
    PrivateName(
        "aiokafka.producer.sender:Sender",
        "_in_flight",
        "producer_state.py",
        "nodes with a request in flight",
    ),
)


def missing(names: tuple[PrivateName, ...] = PRIVATE_NAMES) -> list[PrivateName]:
    """The names the installed packages do not have: as a method or class attribute, or
    assigned (`self.name = `, `self.name: `) in the source of a class in the owner's MRO."""
    absent = []
    for entry in names:
        module_name, _, class_name = entry.owner.partition(":")
        module = importlib.import_module(module_name)
        if not class_name:
            if not hasattr(module, entry.name):
                absent.append(entry)
            continue
        cls = getattr(module, class_name, None)
        if cls is None or not _has(cls, entry.name):
            absent.append(entry)
    return absent


def _has(cls: type, name: str) -> bool:
    if hasattr(cls, name):
        return True
    for klass in inspect.getmro(cls):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if f"self.{name} =" in source or f"self.{name}:" in source:
            return True
    return False
