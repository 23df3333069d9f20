"""Accuracy of the correlator on the simulator's ground truth: pairwise precision, recall
and F1 over the events (two events are a pair when they share an incident / a problem)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.correlation.core import Correlator
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.feeds.pipeline import RawRecord, normalize_batch
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.events import CanonicalEvent
from citybrain_tools.sim.scenario import Scenario


@dataclass
class Accuracy:
    records: int
    events: int
    problems: int
    incidents: int
    precision: float
    recall: float
    f1: float
    vague_share: float  # events placed only by district (needs_location)
    located_precision: float  # the same figures over located events only
    located_recall: float
    located_f1: float


def pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for item, label in labels.items():
        groups[label].append(item)
    out = set()
    for members in groups.values():
        members.sort()
        out |= {(a, b) for i, a in enumerate(members) for b in members[i + 1 :]}
    return out


def score(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float, float]:
    p, t = pairs(predicted), pairs(truth)
    tp = len(p & t)
    precision = tp / len(p) if p else 1.0
    recall = tp / len(t) if t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def simulated_events(
    records_count: int, seed: int, hours: float
) -> tuple[int, list[tuple[CanonicalEvent, str]], list[str]]:
    """Simulate, normalise (the real pure pipeline), and label each event with its problem;
    also the city's district names, for the correlator."""
    feeds = {f.topic: f for f in load_feeds(BUILTIN_DIR)}
    registries = {f.name: f.devices for f in feeds.values() if f.devices}
    pack = load_pack("shanghai")
    gazetteer = load_gazetteer(pack)
    tagger = Geotagger(GeoIndex(pack), gazetteer)
    end = datetime.now(UTC).replace(microsecond=0)
    sim = Scenario(
        registries,
        gazetteer,
        seed=seed,
        problem_share=0.05,
        index=tagger.index,
    )
    records = sim.build(records_count, timedelta(hours=hours), end=end)
    events: list[tuple[CanonicalEvent, str]] = []
    states: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    batch = 500
    for lo in range(0, len(records), batch):
        chunk = list(enumerate(records[lo : lo + batch], start=lo))
        by_topic: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for i, r in chunk:
            by_topic[r.topic].append((i, r))
        for topic, items in by_topic.items():
            out = normalize_batch(
                feeds[topic],
                [RawRecord(r.value, topic, 0, i) for i, r in items],
                tagger,
                states[topic],
                end + timedelta(seconds=1),
            )
            states[topic].update(out.states)
            for e in out.events:
                truth = records[e.raw_ref.offset].truth.get("problem_id") or f"solo:{e.event_id}"
                events.append((e, truth))
    events.sort(key=lambda t: t[0].observed_at)
    return len(records), events, gazetteer.full_district_names


def evaluate(records_count: int = 6000, seed: int = 11, hours: float = 6.0) -> Accuracy:
    """Pairwise precision / recall / F1 of the correlator on simulated ground truth."""
    n_records, events, district_names = simulated_events(records_count, seed, hours)
    correlator = Correlator(place_names=district_names)
    predicted: dict[str, str] = {}
    truth: dict[str, str] = {}
    for e, problem in events:
        change = correlator.add(e)
        if change is None:
            continue
        predicted[e.event_id] = change.incident.incident_id
        truth[e.event_id] = problem
    precision, recall, f1 = score(predicted, truth)
    located = {e.event_id for e, _ in events if e.location.status != "needs_location"} & set(
        predicted
    )
    lp, lr, lf = score({k: predicted[k] for k in located}, {k: truth[k] for k in located})
    return Accuracy(
        records=n_records,
        events=len(predicted),
        problems=len(set(truth.values())),
        incidents=len(set(predicted.values())),
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        vague_share=round(1 - len(located) / max(1, len(predicted)), 3),
        located_precision=round(lp, 4),
        located_recall=round(lr, 4),
        located_f1=round(lf, 4),
    )


def as_dict(a: Accuracy) -> dict[str, Any]:
    return asdict(a)
