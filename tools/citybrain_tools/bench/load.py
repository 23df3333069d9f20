"""The benches' load generator: water-gauge telemetry at an offered rate, made so that it is
never what limits a measurement. Each message is formatted from a bytes template (no JSON
encoder in the loop) and handed to librdkafka (`confluent-kafka`, a bench-only dependency:
the platform's own clients are kafka-python and aiokafka), which batches in C; the rate is
kept in 10 ms steps and may be split over several processes. What it achieved is counted
from the broker's delivery reports, not from what was handed over, and printed beside what
was offered (`citybrain bench load`)."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: a water gauge's reading as the vendor sends it (`feeds/builtin/water-level.yaml`)
TEMPLATE = b'{"devId":"%s","ts":%d,"data":{"level":"%d.%d","unit":"cm","bat":3.6}}'
STEP_S = 0.01
#: what the generator must deliver on its own: twice the pipeline's 25,000 messages/s
TARGET_PER_S = 50_000


@dataclass
class LoadResult:
    offered_per_s: float
    messages: int
    delivered: int
    failed: int
    seconds: float
    achieved_per_s: float
    processes: int


def messages(devices: list[bytes], first: int, n: int, at_ms: int) -> list[tuple[bytes, bytes]]:
    """Messages `first`..`first + n`, each device in turn, timed `at_ms` (epoch ms: now, as a
    gauge times its reading), one millisecond later each time a device comes round again
    within the step, so no two readings of a device are the same reading. Readings timed
    in the past would look like silent devices (the silence rule) or, far enough back,
    like history replayed."""
    count = len(devices)
    out = []
    for j, i in enumerate(range(first, first + n)):
        device = devices[i % count]
        out.append((device, TEMPLATE % (device, at_ms + j // count, 10 + i % 23, i % 10)))
    return out


def scheduled_total(schedule: Sequence[tuple[float, float]]) -> int:
    """Messages a schedule of (rate/s, seconds) steps offers."""
    return sum(int(rate * seconds) for rate, seconds in schedule)


def due_by(schedule: Sequence[tuple[float, float]], elapsed: float) -> int:
    """Messages a schedule of (rate/s, seconds) steps has offered `elapsed` seconds in."""
    due = 0
    for rate, seconds in schedule:
        if elapsed < seconds:
            return due + int(elapsed * rate)
        due += int(rate * seconds)
        elapsed -= seconds
    return due


def produce(
    bootstrap: str,
    topic: str,
    devices: list[str],
    first: int,
    total: int,
    rate: float,
    nice: int = 0,
    timeout_s: float = 60.0,
    schedule: Sequence[tuple[float, float]] | None = None,
) -> tuple[int, int, float]:
    """Send `total` messages at `rate`/s from this process (or, given a `schedule` of
    (rate/s, seconds) steps, at each step's rate in turn, `total` ignored): (delivered,
    failed, seconds). Each step's messages are timed when they are made (`messages`), each
    step after the last one's. A message the broker has not acknowledged `timeout_s` after
    it was handed over counts as failed."""
    from confluent_kafka import Producer

    if nice:
        os.nice(nice)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": int(timeout_s * 1000),
            "log_level": 0,  # a broker that is away shows in the counts, not as log noise
        }
    )
    counts = [0, 0]

    def report(err: Any, _msg: Any) -> None:
        counts[1 if err is not None else 0] += 1

    steps = list(schedule) if schedule else [(rate, total / rate if rate > 0 else 0.0)]
    total = scheduled_total(steps) if schedule else total
    keys = [d.encode() for d in devices]
    next_ms = 0  # the earliest time the next step's readings may take
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        due = min(total, due_by(steps, time.perf_counter() - t0) + 1)
        if due > sent:
            at_ms = max(int(time.time() * 1000), next_ms)
            next_ms = at_ms + (due - sent - 1) // len(keys) + 1
            for key, value in messages(keys, first + sent, due - sent, at_ms):
                while True:
                    try:
                        producer.produce(topic, value, key, on_delivery=report)
                        break
                    except BufferError:  # the local queue is full: let it drain
                        producer.poll(0.05)
            sent = due
        producer.poll(0)
        time.sleep(STEP_S)
    seconds = time.perf_counter() - t0
    producer.flush(timeout_s + 10)
    return counts[0], total - counts[0], seconds


def _worker(args: tuple[Any, ...], out: Any) -> None:
    out.put(produce(*args))


def run_load(
    bootstrap: str,
    topic: str,
    devices: list[str],
    rate: float,
    seconds: float,
    processes: int = 1,
    first: int = 0,
    nice: int = 0,
    timeout_s: float = 60.0,
) -> LoadResult:
    """Offer `rate` messages/s for `seconds` over `processes` processes; what arrived.
    Raises RuntimeError when messages were not delivered (the broker is away)."""
    total = int(rate * seconds)
    share = total // processes
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = []
    for p in range(processes):
        n = share if p < processes - 1 else total - share * (processes - 1)
        args = (
            bootstrap,
            topic,
            devices,
            first + p * share,
            n,
            rate / processes,
            nice,
            timeout_s,
        )
        procs.append(context.Process(target=_worker, args=(args, out), daemon=True))
    for proc in procs:
        proc.start()
    results = _collect(out, procs, deadline=time.monotonic() + seconds + timeout_s + 60)
    elapsed = max(r[2] for r in results)  # each process's first message to its last handed over
    delivered = sum(r[0] for r in results)
    if delivered < total:
        raise RuntimeError(f"the load generator failed: {delivered} of {total} delivered")
    return LoadResult(
        offered_per_s=rate,
        messages=total,
        delivered=delivered,
        failed=sum(r[1] for r in results),
        seconds=round(elapsed, 2),
        achieved_per_s=round(delivered / max(elapsed, 1e-9)),
        processes=processes,
    )


def _collect(out: Any, procs: list[Any], deadline: float) -> list[tuple[int, int, float]]:
    """Each process's result; a process that died without one is an error, never a wait."""
    import queue

    results: list[tuple[int, int, float]] = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1.0))
            continue
        except queue.Empty:
            pass
        dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise RuntimeError(f"the load generator failed (exit codes {dead or 'timeout'})")
    for p in procs:
        p.join(30)
    return results


def as_dict(result: LoadResult) -> dict[str, Any]:
    return asdict(result)
