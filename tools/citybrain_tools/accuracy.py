"""Accuracy of the correlator on the simulator's ground truth: pairwise precision, recall
and F1 over the events (two events are a pair when they share an incident / a problem);
the same over located events; and for the reports placed only by their district that
opened their own incident, how often their problem's incident was among the suggestions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feeds
from citybrain.feeds.pipeline import RawRecord, normalize_batch
from citybrain.geo.address import Gazetteer, load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.events import CanonicalEvent
from citybrain_tools.sim.scenario import Scenario, SimRecord

#: where simulated time ends (the ids the simulator makes hold its times)
END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Accuracy:
    records: int
    seed: int
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
    # reports placed only by their district that opened their own incident beside their
    # problem's
    suggested: int
    suggestion_top3: float  # of those, the share with their problem's incident suggested


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
    records_count: int, seed: int, hours: float, vocabulary: dict[str, Any] | None = None
) -> tuple[int, list[tuple[CanonicalEvent, str]], Gazetteer]:
    """Simulate, normalise (the real pure pipeline), and label each event with its problem;
    also the city's gazetteer with the run's register, for the correlator's named places."""
    feeds = {f.topic: f for f in load_feeds(BUILTIN_DIR)}
    registries = {f.name: f.devices for f in feeds.values() if f.devices}
    pack = load_pack("shanghai")
    base = load_gazetteer(pack)
    index = GeoIndex(pack)
    end = END  # a fixed instant: the same seed gives the same ids, ties and figures
    sim = Scenario(
        registries,
        base,
        seed=seed,
        problem_share=0.05,
        index=index,
        vocabulary=vocabulary,
    )
    records = sim.build(records_count, timedelta(hours=hours), end=end)
    # the city's register knows most of the run's places (the simulator says which)
    gazetteer = load_gazetteer(pack, sim.register)
    tagger = Geotagger(index, gazetteer)
    events = [
        (e, records[e.raw_ref.offset].truth.get("problem_id") or "")
        for e in normalise(feeds, records, tagger, end + timedelta(seconds=1))
    ]
    events.sort(key=lambda t: t[0].observed_at)
    return len(records), label_background(events), gazetteer


def normalise(
    feeds: dict[str, Feed],
    records: Sequence[SimRecord],
    tagger: Geotagger,
    received_at: datetime,
    states: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> list[CanonicalEvent]:
    """Simulated records (in time order) as the normalize stage makes them into events: the
    real pure pipeline, 500 records a batch, one call a topic (`feeds`: by topic), each
    device's alarm state carried over (in `states`, by topic, when given). An event's
    `raw_ref.offset` is its record's index in `records`."""
    states = defaultdict(dict) if states is None else states
    events: list[CanonicalEvent] = []
    batch = 500
    for lo in range(0, len(records), batch):
        chunk = list(enumerate(records[lo : lo + batch], start=lo))
        by_topic: dict[str, list[tuple[int, SimRecord]]] = defaultdict(list)
        for i, r in chunk:
            by_topic[r.topic].append((i, r))
        for topic, items in by_topic.items():
            state = states.setdefault(topic, {})
            out = normalize_batch(
                feeds[topic],
                [RawRecord(r.value, topic, 0, i) for i, r in items],
                tagger,
                state,
                received_at,
            )
            state.update(out.states)
            events += out.events
    return events


def label_background(events: list[tuple[CanonicalEvent, str]]) -> list[tuple[CanonicalEvent, str]]:
    """Events of no simulated problem (a background sensor crossing its threshold) are each
    a problem of their own, except a clear: it ends its device's last alarm, the same
    problem (time-ordered events in, labelled events out)."""
    alarm_of: dict[str, str] = {}  # device -> the label of its last alarm
    out = []
    for e, problem in events:
        device = e.location.device_id
        if not problem:
            if e.kind == "clear" and device in alarm_of:
                problem = alarm_of.pop(device)
            else:
                problem = f"solo:{e.event_id}"
                if device is not None:
                    alarm_of[device] = problem
        out.append((e, problem))
    return out


def evaluate(
    records_count: int = 6000,
    seed: int = 11,
    hours: float = 6.0,
    vocabulary: dict[str, Any] | None = None,
) -> Accuracy:
    """The correlator's figures on one simulated run (the pure pipeline, no Kafka)."""
    n_records, events, gazetteer = simulated_events(records_count, seed, hours, vocabulary)
    neighbours = load_pack("shanghai").neighbours()
    correlator = Correlator(places=PlaceWords(gazetteer), neighbours=neighbours)
    predicted: dict[str, str] = {}
    truth: dict[str, str] = {}
    # district-only incident -> candidate -> its newest score (as the table keeps it)
    scored: dict[str, dict[str, float]] = defaultdict(dict)
    opened_by: dict[str, str] = {}
    for e, problem in events:
        change = correlator.add(e)
        if change is None:
            continue
        predicted[e.event_id] = change.incident.incident_id
        truth[e.event_id] = problem
        opened_alone = change.opened and change.incident.location_status == "needs_location"
        if opened_alone and e.location.district is not None:  # by its district, not nowhere
            opened_by[change.incident.incident_id] = e.event_id
        for s in change.suggestions:
            scored[s.for_incident][s.incident_id] = s.score
    precision, recall, f1 = score(predicted, truth)
    located = {e.event_id for e, _ in events if e.location.status != "needs_location"} & set(
        predicted
    )
    lp, lr, lf = score({k: predicted[k] for k in located}, {k: truth[k] for k in located})
    top = correlator.rules.suggestions
    suggested = {
        i: sorted(found, key=lambda c: (-found[c], c))[:top] for i, found in scored.items()
    }
    hits, asked = suggestion_hits(predicted, truth, suggested, opened_by)
    return Accuracy(
        records=n_records,
        seed=seed,
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
        suggested=asked,
        suggestion_top3=round(hits / asked, 4) if asked else 1.0,
    )


def suggestion_hits(
    predicted: dict[str, str],
    truth: dict[str, str],
    suggested: dict[str, list[str]],
    opened_by: dict[str, str],
) -> tuple[int, int]:
    """Of the district-only reports that opened their own incident while their problem had
    another incident (the one holding most of the problem's other reports): how many had
    that incident among their suggestions, and how many there were."""
    members: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event, incident in predicted.items():
        members[truth[event]][incident] += 1
    hits = asked = 0
    for incident, event in opened_by.items():
        others = {i: n for i, n in members[truth[event]].items() if i != incident}
        if not others or truth[event].startswith("solo:"):
            continue
        asked += 1
        main = max(others, key=lambda i: (others[i], i))
        hits += main in suggested.get(incident, [])
    return hits, asked


#: the targets `citybrain correlate accuracy` checks on every seed
TARGETS = {
    "precision": 0.99,  # pairwise, of the merges the correlator made by itself
    "located_recall": 0.98,
    "suggestion_top3": 0.90,
}


def missed(a: Accuracy) -> list[str]:
    """The targets a run missed, as `figure value < target`."""
    return [
        f"{name} {getattr(a, name)} < {target}"
        for name, target in TARGETS.items()
        if getattr(a, name) < target
    ]


def as_dict(a: Accuracy) -> dict[str, Any]:
    return asdict(a)
