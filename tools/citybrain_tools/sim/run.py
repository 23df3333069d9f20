"""`citybrain simulate`: send a scenario to Kafka at a rate, with a progress line, and
write the ground truth (one JSON line per raw record) for the correlation stage's accuracy."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds, with_city_devices
from citybrain.geo.address import load_gazetteer
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options
from citybrain_tools.sim.scenario import Scenario, SimRecord


@dataclass
class SimulationResult:
    records: int
    problems: int
    malformed: int
    seconds: float
    rate: float
    truth_file: str | None


def build_scenario(
    settings: Settings, events: int, span: timedelta, seed: int, malformed: float
) -> list[SimRecord]:
    feeds = {f.name: f for f in with_city_devices(load_feeds(BUILTIN_DIR), settings.city_pack)}
    registries = {name: feed.devices for name, feed in feeds.items() if feed.devices}
    pack = load_pack(settings.city_pack)
    return Scenario(
        registries,
        load_gazetteer(pack),
        seed=seed,
        malformed=malformed,
        index=GeoIndex(pack),
    ).build(events, span)


def send(
    settings: Settings, records: list[SimRecord], rate: float, truth_path: Path | None
) -> SimulationResult:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        compression_type=None,
        max_in_flight_requests_per_connection=5,
    )
    truth = truth_path.open("wb") if truth_path else None
    started = time.monotonic()
    last_print = 0.0
    for i, rec in enumerate(records, start=1):
        producer.send(rec.topic, key=rec.key.encode(), value=rec.value)
        if truth is not None:
            truth.write(
                orjson.dumps(
                    {"topic": rec.topic, "key": rec.key, "at": rec.at.isoformat(), **rec.truth}
                )
                + b"\n"
            )
        if rate > 0:
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        now = time.monotonic()
        if now - last_print >= 1.0 or i == len(records):
            last_print = now
            elapsed = max(now - started, 1e-9)
            print(
                f"\r  sent {i}/{len(records)} records, {i / elapsed:,.0f}/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    producer.flush()
    producer.close()
    print(file=sys.stderr)
    if truth is not None:
        truth.close()
    seconds = time.monotonic() - started
    problems = {r.truth.get("problem_id") for r in records} - {None}
    return SimulationResult(
        records=len(records),
        problems=len(problems),
        malformed=sum(1 for r in records if r.truth.get("malformed")),
        seconds=round(seconds, 2),
        rate=round(len(records) / max(seconds, 1e-9)),
        truth_file=str(truth_path) if truth_path else None,
    )
