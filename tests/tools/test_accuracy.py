"""The correlator's accuracy on the simulator's ground truth: the pairwise scores, and the
correlator fed a simulated city twice."""

from __future__ import annotations

from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
from citybrain_tools.accuracy import score, simulated_events


def test_pairwise_scores() -> None:
    truth = {"a": "P1", "b": "P1", "c": "P2"}
    assert score({"a": "I", "b": "I", "c": "J"}, truth) == (1.0, 1.0, 1.0)
    p, r, f = score({"a": "I", "b": "I", "c": "I"}, truth)
    assert (round(p, 3), r, round(f, 3)) == (0.333, 1.0, 0.5)


def test_every_simulated_report_delivered_again_changes_nothing() -> None:
    """Idempotency without a global index: each repeated report finds its incident among
    the same candidates, whatever moved in between (a city's worth of reports, twice)."""
    _, events, gazetteer = simulated_events(3000, 5, 3.0)
    c = Correlator(places=PlaceWords(gazetteer))
    first = [c.add(e) for e, _ in events]
    assert sum(change is not None for change in first) > 100
    assert any(change is not None and not change.opened for change in first)  # fusion happened
    reports = {i.incident_id: i.report_count for i in c.incidents()}
    again = [c.add(e) for e, _ in reversed(events)]
    assert again == [None] * len(events)
    assert reports == {i.incident_id: i.report_count for i in c.incidents()}
