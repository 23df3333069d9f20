"""The correlate stage's batch decision (pure): rows, messages and table cells of a batch;
status messages; what a poison pill does to the rest of the batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from citybrain.correlation.batch import correlate_batch
from citybrain.correlation.core import Correlator
from citybrain.schemas.incident_status import IncidentStatusModel
from tests.citybrain.correlation.test_core import T0, ev

NOW = T0 + timedelta(minutes=30)


def test_two_reports_of_one_problem_make_one_incident_one_message_and_one_row() -> None:
    out = correlate_batch(Correlator(), [ev("a"), ev("b", minutes=1, dlat_m=20)], NOW)
    assert len(out.incidents) == 1
    assert [r[0] for r in out.reports] == ["a", "b"]
    assert [h[2] for h in out.history] == ["opened", "merged"]
    ((incident_id, message),) = out.messages
    assert message["change"] == "opened"  # the first change of the batch names it
    assert message["event_ids"] == ["a", "b"]
    assert message["reports_total"] == 2
    assert out.incidents[0][0] == incident_id
    (cell,) = out.cells.values()
    assert cell is not None and cell[0]["incident_id"] == incident_id
    assert out.failures == [] and out.reopened == []


def test_a_repeated_event_changes_nothing() -> None:
    c = Correlator()
    correlate_batch(c, [ev("a")], NOW)
    out = correlate_batch(c, [ev("a")], NOW)
    assert (out.incidents, out.reports, out.messages, out.cells) == ([], [], [], {})


def test_a_resolved_incident_with_a_new_report_is_reopened() -> None:
    c = Correlator()
    ((incident_id, _),) = correlate_batch(c, [ev("a")], NOW).messages
    status = IncidentStatusModel(incident_id=incident_id, status="resolved")
    out = correlate_batch(c, [status, ev("b", minutes=2)], NOW)
    assert out.reopened == [incident_id]
    assert out.messages[0][1]["change"] == "reopened"


def test_a_status_for_an_incident_not_held_changes_nothing() -> None:
    ((elsewhere, _),) = correlate_batch(Correlator(), [ev("a")], NOW).messages
    out = correlate_batch(
        Correlator(), [IncidentStatusModel(incident_id=elsewhere, status="closed")], NOW
    )
    assert (out.messages, out.cells, out.failures) == ([], {}, [])


def test_a_status_for_a_malformed_incident_id_is_handed_back() -> None:
    out = correlate_batch(
        Correlator(), [IncidentStatusModel(incident_id="x", status="closed")], NOW
    )
    assert [(i, reason) for i, reason, _ in out.failures] == [(0, "control_failed")]


class Exploding(Correlator):
    def add(self, event: Any) -> Any:
        if event.event_id == "bad":
            raise ValueError("poison")
        return super().add(event)


def test_a_poison_pill_is_handed_back_and_the_rest_of_the_batch_goes_on() -> None:
    out = correlate_batch(Exploding(), [ev("a"), ev("bad"), ev("c", category="smoke")], NOW)
    assert [(i, reason) for i, reason, _ in out.failures] == [(1, "correlation_failed")]
    assert len(out.messages) == 2


def test_a_district_only_report_that_opens_its_own_incident_gives_suggestion_rows() -> None:
    c = Correlator()
    out = correlate_batch(c, [ev("a"), ev("v", status="needs_location", minutes=5)], NOW)
    ((for_incident, candidate, score, reasons, at),) = out.suggestions
    located, alone = (m[0] for m in out.messages)
    assert (for_incident, candidate) == (alone, located)
    assert 0 < score <= 1 and "same family flooding" in reasons and at == T0 + timedelta(minutes=5)
