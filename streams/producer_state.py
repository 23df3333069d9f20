"""What the worker's producer holds that a flush, and so a commit, waits for: logged by the
stall watchdog with the records in flight.

A commit flushes the producer first. After a broker loss CI has seen a flush wait with the
sender idle and no produce request in flight; this names, per partition, the batches still
queued and the leader the client knows for it, the partitions muted by a request in flight,
the nodes with one, and the batches sent but not answered, so that the next such stall
shows where the batch is held. Read-only, from aiokafka's internals (listed in
`streams.private_names`); an error reading them gives a `producer_state_error` entry,
never a failure."""

from __future__ import annotations

from typing import Any

#: partitions named at most
NAMED = 20


def producer_state(aiokafka_producer: Any) -> dict[str, Any]:
    """The aiokafka producer's queues and requests, for a log line (empty: not started)."""
    if aiokafka_producer is None:
        return {}
    try:
        accumulator = aiokafka_producer._message_accumulator
        sender = aiokafka_producer._sender
        cluster = aiokafka_producer.client.cluster

        def name(tp: Any) -> str:
            return f"{tp.topic}[{tp.partition}]"

        queued = sorted(
            ((tp, len(batches)) for tp, batches in list(accumulator._batches.items()) if batches),
            key=lambda item: (item[0].topic, item[0].partition),
        )
        unanswered = sorted({name(b.tp) for b in accumulator._pending_batches})
        return {
            "producer_queued": [
                f"{name(tp)} batches={n} leader={cluster.leader_for_partition(tp)}"
                for tp, n in queued[:NAMED]
            ],
            "producer_queued_partitions": len(queued),
            "producer_sent_unanswered": unanswered[:NAMED],
            "producer_muted": sorted(name(tp) for tp in sender._muted_partitions)[:NAMED],
            "producer_in_flight_nodes": sorted(str(n) for n in sender._in_flight),
        }
    except Exception as exc:  # a diagnosis must not end the watchdog's report
        return {"producer_state_error": f"{type(exc).__name__}: {exc}"}
