"""The correlate stage's batch decision (pure): rows, messages and table cells of a batch;
status messages; what a poison pill does to the rest of the batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from citybrain.correlation.batch import correlate_batch, split_id
from citybrain.correlation.core import Correlator
from citybrain.schemas.commands import (
    DismissSuggestionCommand,
    MergeCommand,
    PlaceCommand,
    SplitCommand,
)
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


# --- operators' commands ------------------------------------------------------------------------
WHO: dict[str, Any] = {"actor": "王敏 (api:1)", "reason": "核实", "at": NOW}


def _opened(c: Correlator, *events: Any) -> list[str]:
    return [incident for incident, _ in correlate_batch(c, list(events), NOW).messages]


def test_placing_a_district_only_incident_locates_it_and_new_reports_find_it() -> None:
    c = Correlator()
    (vague,) = _opened(c, ev("v", status="needs_location", address="浦东新区某个路口"))
    place = PlaceCommand(**WHO, command_id="cmd-p", incident_id=vague, lon=121.51, lat=31.21)
    out = correlate_batch(c, [place], NOW, locate=lambda lon, lat: "310115")
    ((incident_id, message),) = out.messages
    assert (incident_id, message["change"], message["location_status"]) == (
        vague,
        "placed",
        "located",
    )
    assert (message["lon"], message["lat"], message["district"]) == (121.51, 31.21, "310115")
    assert [(cmd.command_id, status) for cmd, status, _ in out.commands] == [("cmd-p", "applied")]
    assert [h[2] for h in out.history] == ["placed"]
    # a located report near the placed point now joins it
    near = ev("n", lon=121.51, lat=31.21, minutes=3)
    assert _opened(c, near) == [vague]
    # the same command delivered again changes nothing, in a later batch or the same one
    again = correlate_batch(c, [place], NOW, done={"cmd-p"})
    assert (again.messages, again.commands) == ([], [])
    other = Correlator()
    (vague_too,) = _opened(other, ev("v", status="needs_location", address="浦东新区某个路口"))
    twice = PlaceCommand(**WHO, command_id="cmd-2", incident_id=vague_too, lon=121.51, lat=31.21)
    out = correlate_batch(other, [twice, twice], NOW, locate=lambda lon, lat: "310115")
    assert len(out.commands) == 1 and len(other.find(vague_too).points) == 2  # type: ignore[union-attr]


def test_placing_an_incident_no_longer_held_updates_its_row() -> None:
    place = PlaceCommand(**WHO, command_id="cmd-q", incident_id="inc-gone", lon=121.5, lat=31.2)
    out = correlate_batch(Correlator(), [place], NOW, locate=lambda lon, lat: "310104")
    assert out.placed_unheld == [(place, "310104")]
    assert [status for _, status, _ in out.commands] == ["applied"] and out.messages == []


def test_a_merge_moves_the_reports_closes_the_other_and_accepts_the_suggestion() -> None:
    c = Correlator()
    (target,) = _opened(c, ev("a"))
    (source,) = _opened(c, ev("v", status="needs_location", minutes=2, address="浦东新区路边"))
    merge = MergeCommand(**WHO, command_id="cmd-m", incident_id=source, into=target)
    out = correlate_batch(c, [merge], NOW)
    by_id = dict(out.messages)
    assert by_id[source]["status"] == "closed" and by_id[source]["merged_into"] == target
    assert by_id[target]["change"] == "merged" and by_id[target]["reports_total"] == 2
    assert out.merged_away == [(source, target, NOW)]
    assert out.decided == [(source, target, "accepted", "王敏 (api:1)", NOW)]
    assert c.find(source) is None
    assert correlate_batch(c, [ev("v", status="needs_location", minutes=2)], NOW).messages == []


def test_merges_that_cannot_be_made_are_refused_with_the_reason() -> None:
    c = Correlator()
    (flood,) = _opened(c, ev("a"))
    (fire,) = _opened(c, ev("f", "fire_smoke", dlat_m=3000))
    cases = [
        (flood, flood, "into itself"),
        (flood, "inc-gone", "not open in correlation"),
        (flood, fire, "other families"),
    ]
    for n, (source, into, reason) in enumerate(cases):
        merge = MergeCommand(**WHO, command_id=f"cmd-{n}", incident_id=source, into=into)
        out = correlate_batch(c, [merge], NOW)
        ((_, status, result),) = out.commands
        assert status == "refused" and reason in result, (source, into, result)
        assert out.messages == [] and out.merged_away == []


def test_dismissing_a_suggestion_only_records_the_decision() -> None:
    dismiss = DismissSuggestionCommand(
        **WHO, command_id="cmd-d", incident_id="inc-a", candidate_id="inc-b"
    )
    out = correlate_batch(Correlator(), [dismiss], NOW)
    assert out.decided == [("inc-a", "inc-b", "dismissed", "王敏 (api:1)", NOW)]
    assert out.messages == [] and [s for _, s, _ in out.commands] == ["applied"]


def test_a_split_moves_reports_to_a_new_incident_built_from_them() -> None:
    c = Correlator()
    events = [
        ev("a", device="WL-1", source="iot"),
        ev("b", minutes=1, dlat_m=20, address="锦绣苑3号楼"),
        ev("x", minutes=2, dlat_m=40),
    ]
    (incident,) = _opened(c, *events)
    split = SplitCommand(**WHO, command_id="cmd-s", incident_id=incident, event_ids=["x"])
    out = correlate_batch(c, [split], NOW, reports={incident: events})
    new_id = split_id("cmd-s")
    by_id = dict(out.messages)
    assert (by_id[incident]["change"], by_id[incident]["reports_total"]) == ("split", 2)
    assert (by_id[new_id]["change"], by_id[new_id]["reports_total"]) == ("opened", 1)
    assert out.moved == [(["x"], new_id)]
    assert [(s, r) for _, s, r in out.commands] == [("applied", f"1 report(s) split into {new_id}")]
    # each report is still known once, in its own incident
    assert correlate_batch(c, [ev("x", minutes=2, dlat_m=40)], NOW).messages == []
    assert c.find(new_id) is not None and c.find(new_id).report_count == 1  # type: ignore[union-attr]
    # the same command again changes nothing
    assert correlate_batch(c, [split], NOW, done={"cmd-s"}, reports={}).messages == []


def test_splits_that_cannot_be_made_are_refused() -> None:
    c = Correlator()
    events = [ev("a"), ev("b", minutes=1, dlat_m=20)]
    (incident,) = _opened(c, *events)
    cases = [
        (["z"], "not reports of it"),
        (["a", "b"], "every report would leave"),
    ]
    for n, (ids, reason) in enumerate(cases):
        split = SplitCommand(**WHO, command_id=f"cmd-{n}", incident_id=incident, event_ids=ids)
        out = correlate_batch(c, [split], NOW, reports={incident: events})
        ((_, status, result),) = out.commands
        assert status == "refused" and reason in result
    gone = SplitCommand(**WHO, command_id="cmd-g", incident_id="inc-gone", event_ids=["a"])
    out = correlate_batch(c, [gone], NOW, reports={"inc-gone": events})
    assert [s for _, s, _ in out.commands] == ["refused"]
