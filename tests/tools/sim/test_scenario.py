"""The simulator: deterministic, bursts and near-misses as promised, and every record is
normalised exactly as its ground truth says (malformed ones rejected, the rest accepted)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.feeds.pipeline import RawRecord, normalize_batch
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain_tools.sim.scenario import Scenario, SimRecord

END = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


def build(seed: int = 3, malformed: float = 0.05) -> list[SimRecord]:
    feeds = {f.name: f for f in load_feeds(BUILTIN_DIR)}
    registries = {n: f.devices for n, f in feeds.items() if f.devices}
    pack = load_pack("shanghai")
    return Scenario(
        registries,
        load_gazetteer(pack),
        seed=seed,  # type: ignore[arg-type]
        malformed=malformed,
        problem_share=0.05,
    ).build(2000, timedelta(hours=3), end=END)


@pytest.fixture(scope="module")
def records() -> list[SimRecord]:
    return build()


def test_the_same_seed_gives_the_same_traffic(records: list[SimRecord]) -> None:
    again = build()
    assert [(r.topic, r.key, r.value) for r in again] == [
        (r.topic, r.key, r.value) for r in records
    ]
    assert [r.value for r in build(seed=4)] != [r.value for r in records]


def test_records_are_in_time_order_and_never_in_the_future(records: list[SimRecord]) -> None:
    times = [r.at for r in records]
    assert times == sorted(times)
    assert max(times) <= END


def test_problems_are_bursts_of_several_reports_close_in_space_and_time(
    records: list[SimRecord],
) -> None:
    calls: dict[str, list[SimRecord]] = defaultdict(list)
    for r in records:
        if (
            r.topic == "raw.hotline"
            and r.truth.get("problem_id")
            and "near" not in r.truth["problem_id"]
        ):
            calls[r.truth["problem_id"]].append(r)
    assert len(calls) >= 10
    for group in calls.values():
        assert 3 <= len(group) <= 7
        span = max(r.at for r in group) - min(r.at for r in group)
        assert span <= timedelta(minutes=43)
    near = [r for r in records if r.truth.get("near_miss_of") is not None]
    assert near, "some problems have a near-miss"


def test_every_record_is_normalised_as_its_truth_says(records: list[SimRecord]) -> None:
    pack = load_pack("shanghai")
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    feeds = {f.topic: f for f in load_feeds(BUILTIN_DIR)}
    by_topic: dict[str, list[tuple[int, SimRecord]]] = defaultdict(list)
    for i, r in enumerate(records):
        by_topic[r.topic].append((i, r))
    rejected: set[int] = set()
    for topic, items in by_topic.items():
        out = normalize_batch(
            feeds[topic],
            [RawRecord(r.value, topic, 0, i) for i, r in items],
            tagger,
            {},
            END + timedelta(seconds=1),
        )
        rejected |= {items[k][0] for k, _ in out.rejects}
    malformed = {i for i, r in enumerate(records) if r.truth.get("malformed")}
    assert malformed and rejected == malformed
    share = len(malformed) / len(records)
    assert math.isclose(share, 0.05, abs_tol=0.03)
