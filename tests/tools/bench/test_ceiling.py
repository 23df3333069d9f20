"""The correlator's ceiling bench: the simulated city it preloads and streams, the copy
of the state each round starts from, the rounds' counts and statistics (small sizes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
from citybrain.correlation.rules import default_rules
from citybrain.schemas.events import CanonicalEvent
from citybrain_tools.accuracy import simulated_events
from citybrain_tools.bench.ceiling import (
    CALL_SPAN,
    T0,
    City,
    Preload,
    Spread,
    TimedCorrelator,
    TimedUnsuggesting,
    UnsuggestingCorrelator,
    clone,
    horizon,
    preload,
    problems_for,
    run_round,
    stream,
    table_values,
)
from citybrain_tools.sim.scenario import PROBLEMS

HELD = 150
REPORTS = 400


@dataclass
class Loaded:
    city: City
    state: Correlator
    preload: Preload
    events: list[CanonicalEvent]


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    city = City("shanghai", seed=5)
    state = city.correlator(UnsuggestingCorrelator)
    done = preload(city, state, HELD)
    return Loaded(city, state, done, stream(city, REPORTS, done.rate))


def test_problems_are_planned_by_how_many_incidents_the_earlier_ones_left() -> None:
    assert problems_for(1000, planned=0, held=0) == 500  # no measure yet: half a problem each
    assert problems_for(1000, planned=300, held=600) == 500
    assert problems_for(3, planned=300, held=600) == 20  # a few at least
    assert problems_for(10**6, planned=1, held=1) == 20_000  # a chunk at most


def test_a_kind_is_planned_over_the_time_its_incidents_stay_held() -> None:
    rules = default_rules()
    fire = next(k for k in PROBLEMS if k.category == "fire_smoke")
    dark = next(k for k in PROBLEMS if k.category == "streetlight_out")
    assert horizon(fire, rules) == CALL_SPAN + 2 * rules.family_of("fire_smoke").window_td
    assert horizon(dark, rules) > 6 * horizon(fire, rules)  # a 12 h window against 60 min


def test_the_preload_holds_the_incidents_asked_for_and_nothing_the_stage_would_forget(
    loaded: Loaded,
) -> None:
    held = list(loaded.state.incidents())
    assert loaded.preload.held == len(held)
    assert HELD <= len(held) < HELD * 1.5  # the last chunk overshoots by a few
    assert loaded.state.expire(T0) == 0
    assert all(i.last_seen < T0 for i in held)
    assert {i.category for i in held} >= {"fire_smoke", "gas_leak", "streetlight_out"}
    assert any(i.location_status == "needs_location" for i in held)
    assert loaded.preload.rate > 0


def test_the_stream_is_the_city_s_reports_from_t0_on_in_time_order(loaded: Loaded) -> None:
    events = loaded.events
    assert len(events) == REPORTS
    assert all(e.observed_at >= T0 for e in events)
    assert [e.observed_at for e in events] == sorted(e.observed_at for e in events)
    assert len({e.event_id for e in events}) == REPORTS
    kinds = {e.source_kind for e in events}
    assert kinds == {"hotline", "iot"}
    assert sum(e.source_kind == "hotline" for e in events) > REPORTS / 2  # mostly calls


def test_the_same_seed_gives_the_same_city() -> None:
    def first(seed: int) -> list[str]:
        city = City("shanghai", seed=seed)
        state = city.correlator(UnsuggestingCorrelator)
        done = preload(city, state, 30)
        return [e.event_id for e in stream(city, 50, done.rate)]

    assert first(9) == first(9)


def test_a_copy_shares_no_incident_and_decides_as_the_original(loaded: Loaded) -> None:
    original = loaded.state
    before = table_values(original)
    a, b = clone(original), clone(original)
    held = {id(d) for members in original.by_cell.values() for d in members}
    for copy in (a, b):
        assert type(copy) is Correlator
        mine = [d for members in copy.by_cell.values() for d in members]
        assert not {id(d) for d in mine} & held
        # an incident is the same array in every index it is in
        ids = {id(d) for d in mine}
        for index in (copy.by_district, copy.unplaced):
            assert all(id(d) in ids for members in index.values() for d in members)
    changes_a = [a.add(e) for e in loaded.events]
    changes_b = [b.add(e) for e in loaded.events]
    assert table_values(original) == before  # the original is untouched
    assert table_values(a) == table_values(b)
    assert [c and c.incident.incident_id for c in changes_a] == [
        c and c.incident.incident_id for c in changes_b
    ]
    assert [c and c.suggestions for c in changes_a] == [c and c.suggestions for c in changes_b]


def test_without_suggestions_the_state_is_the_same() -> None:
    """What lets the preload go without merge suggestions: they change nothing held."""
    _, events, gazetteer = simulated_events(2000, 3, 2.0)
    with_them = Correlator(places=PlaceWords(gazetteer))
    without = UnsuggestingCorrelator(places=PlaceWords(gazetteer))
    suggested = 0
    for e, _ in events:
        change, bare = with_them.add(e), without.add(e)
        assert (change is None) == (bare is None)
        if change is not None and bare is not None:
            assert change.incident.incident_id == bare.incident.incident_id
            assert bare.suggestions == ()
            suggested += len(change.suggestions)
    assert suggested > 0
    assert table_values(with_them) == table_values(without)


def test_a_round_counts_every_report_it_feeds(loaded: Loaded) -> None:
    encoded = [e.to_json() for e in loaded.events]
    r = run_round(loaded.state, loaded.events, encoded, batch=100, now=T0)
    assert r.reports == REPORTS
    assert sum(r.changes.values()) == REPORTS
    assert r.changes["opened"] > 0 and r.changes["merged"] > r.changes["opened"]
    assert r.rows["incident_reports"] == REPORTS - r.changes["none"]
    assert len(r.batch_ms) == 4 and len(r.add_us) == REPORTS
    assert r.rate > 0 and r.serialise_s > 0
    # a budget spent stops the round after the batch that spent it
    short = run_round(loaded.state, loaded.events, encoded, batch=100, now=T0, budget_s=0.0)
    assert short.reports == 100
    bare = run_round(loaded.state, loaded.events, encoded, 100, T0, kind=TimedUnsuggesting)
    assert bare.rows["suggestions"] == 0
    assert bare.changes == r.changes
    assert isinstance(clone(loaded.state, TimedCorrelator), TimedCorrelator)


def test_the_spread_of_the_rounds() -> None:
    s = Spread.of([1200.4, 1000.0, 1500.6, 1100.2])
    assert (s.median, s.min, s.max) == (pytest.approx(1150.3), 1000.0, 1500.6)
    assert Spread.of([3.0]).rounded() == Spread(3, 3, 3)
    assert s.rounded() == Spread(1150, 1000, 1501)


class EverySuggestion(Correlator):
    """The rescore before it was bounded: a row for every district-only incident around."""

    def _ranks(self, subject: int, candidate: int, score: float) -> bool:
        super()._ranks(subject, candidate, score)
        return True


def test_a_report_rescores_only_where_it_ranks(loaded: Loaded) -> None:
    """In the simulated city, a report costs fewer merge-suggestion rows than one per
    district-only incident around it, and what was written last for each district-only
    incident is its best few as the correlator holds them."""
    rows: dict[str, int] = {}
    for kind in (Correlator, EverySuggestion):
        c = clone(loaded.state, kind)
        latest: dict[tuple[str, str], float] = {}
        written = 0
        for e in loaded.events:
            change = c.add(e)
            for s in change.suggestions if change else ():
                latest[s.for_incident, s.incident_id] = s.score
                written += 1
        rows[kind.__name__] = written
        if kind is Correlator:
            ids = {i.data[0]: i.incident_id for i in c.incidents()}
            for digest, best in c.best.items():
                subject = ids[digest]
                assert all(latest[subject, ids[k]] == score for score, k in best)
    assert rows["Correlator"] < rows["EverySuggestion"], rows  # 797 and 1,408 on this city
