"""The correlate stage's decision for one batch (pure): which incidents each report opens,
joins or reopens, the rows to store, the incident messages to send and the table cells to
write. No Kafka, no database: the agent stores and sends what this returns.

A batch holds canonical events, incident-status messages (from the dispatch stage) and
operators' commands the correlation owner applies (place, merge, dismiss a suggestion) in
arrival order. An item the correlator refuses is handed back as a failure with its
reason; a command it cannot apply is answered `refused` with the reason; the rest of the
batch goes on."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citybrain.correlation.core import Correlator, Incident
from citybrain.correlation.state import incident_message, incident_row, to_json
from citybrain.schemas.commands import (
    DismissSuggestionCommand,
    MergeCommand,
    PlaceCommand,
    SplitCommand,
)
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.incident_status import IncidentStatusModel

CorrelationCommand = PlaceCommand | MergeCommand | DismissSuggestionCommand | SplitCommand
Item = CanonicalEvent | IncidentStatusModel | CorrelationCommand
#: the district of a point (the city pack's index)
Locate = Callable[[float, float], str | None]


@dataclass
class CorrelateOutput:
    """What one batch changed."""

    incidents: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENTS
    reports: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENT_REPORTS
    history: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENT_HISTORY
    suggestions: list[tuple[Any, ...]] = field(default_factory=list)  # of MERGE_SUGGESTIONS
    reopened: list[str] = field(default_factory=list)  # incidents whose status to reset
    #: commands answered: (command, "applied" | "refused", what came of it)
    commands: list[tuple[CorrelationCommand, str, str]] = field(default_factory=list)
    #: suggestions decided: (incident, candidate, "accepted" | "dismissed", actor, at)
    decided: list[tuple[str, str, str, str, datetime]] = field(default_factory=list)
    #: incidents closed as merged into another: (incident, into, at)
    merged_away: list[tuple[str, str, datetime]] = field(default_factory=list)
    #: reports that left their incident for a new one: (event ids, the new incident)
    moved: list[tuple[list[str], str]] = field(default_factory=list)
    #: placements of incidents the correlator no longer holds (their rows are updated):
    #: (command, district)
    placed_unheld: list[tuple[PlaceCommand, str | None]] = field(default_factory=list)
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # incidents.v1
    cells: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)  # the table
    failures: list[tuple[int, str, Exception]] = field(default_factory=list)  # index, reason

    @property
    def stores_rows(self) -> bool:
        return bool(self.incidents or self.commands)


def correlate_batch(
    c: Correlator,
    items: Sequence[Item],
    now: datetime,
    locate: Locate | None = None,
    done: Collection[str] = (),
    reports: Mapping[str, Sequence[CanonicalEvent]] | None = None,
) -> CorrelateOutput:
    """Apply a batch to the correlator; what to store, send and checkpoint. `locate`: the
    district of a point an operator placed an incident at; `done`: ids of commands answered
    already (a redelivered command changes nothing); `reports`: the stored reports of each
    incident a split command in the batch splits."""
    out = CorrelateOutput()
    touched: dict[str, Incident] = {}
    first_change: dict[str, str] = {}  # incident -> opened / reopened / merged / placed
    taken_in: dict[str, list[str]] = {}  # incident -> the reports it took in this batch
    statuses: list[Incident] = []
    extra: list[tuple[str, dict[str, Any]]] = []  # messages of incidents no longer held
    answered = set(done)
    for index, item in enumerate(items):
        if isinstance(item, PlaceCommand | MergeCommand | DismissSuggestionCommand | SplitCommand):
            if item.command_id not in answered:
                answered.add(item.command_id)  # a copy later in the batch changes nothing
                try:
                    _command(c, item, locate, out, touched, first_change, extra, reports)
                except Exception as exc:  # a bug must not stop the single owner
                    out.commands.append((item, "refused", f"internal error: {exc}"))
            continue
        if isinstance(item, IncidentStatusModel):
            try:
                held = c.set_status(item.incident_id, item.status)
            except Exception as exc:  # e.g. an incident id this stage never made
                out.failures.append((index, "control_failed", exc))
                continue
            if held is not None:
                statuses.append(held)
            continue
        try:
            change = c.add(item)
        except Exception as exc:  # a poison pill must not stop the single owner
            out.failures.append((index, "correlation_failed", exc))
            continue
        if change is None:
            continue
        inc = change.incident
        touched[inc.incident_id] = inc
        kind = "opened" if change.opened else ("reopened" if change.reopened else "merged")
        first_change.setdefault(inc.incident_id, kind)
        taken_in.setdefault(inc.incident_id, []).append(item.event_id)
        out.reports.append((item.event_id, inc.incident_id, item.source_kind, item.observed_at))
        out.suggestions += [
            (s.for_incident, s.incident_id, s.score, list(s.reasons), item.observed_at)
            for s in change.suggestions
        ]
        out.history.append(
            (
                inc.incident_id,
                item.observed_at,
                kind,
                inc.status,
                inc.category,
                inc.district,
                inc.priority,
                sum(inc.reports.values()),
            )
        )
    out.incidents = [incident_row(inc, now) for inc in touched.values()]
    out.reopened = [i for i, kind in first_change.items() if kind == "reopened"]
    if touched or statuses:
        dirty = {inc.cell for inc in [*touched.values(), *statuses]} | c.vacated
        c.vacated.clear()
        out.cells = {
            cell: [to_json(i) for i in incs] if (incs := c.incidents_in(cell)) else None
            for cell in dirty
        }
    # one message per incident and batch, carrying its state after the batch
    out.messages = extra + [
        (
            inc.incident_id,
            incident_message(inc, first_change[inc.incident_id], taken_in.get(inc.incident_id, [])),
        )
        for inc in touched.values()
    ]
    return out


def _command(
    c: Correlator,
    command: CorrelationCommand,
    locate: Locate | None,
    out: CorrelateOutput,
    touched: dict[str, Incident],
    first_change: dict[str, str],
    extra: list[tuple[str, dict[str, Any]]],
    reports: Mapping[str, Sequence[CanonicalEvent]] | None = None,
) -> None:
    """Apply one operator's command to the correlator and say what to store and send."""
    at = command.at
    if isinstance(command, SplitCommand):
        _split(c, command, (reports or {}).get(command.incident_id, ()), out, touched, first_change)
        return
    if isinstance(command, DismissSuggestionCommand):
        decided = (command.incident_id, command.candidate_id, "dismissed", command.actor, at)
        out.decided.append(decided)
        out.commands.append((command, "applied", "suggestion dismissed"))
        return
    if isinstance(command, PlaceCommand):
        district = locate(command.lon, command.lat) if locate else None
        change = c.place(command.incident_id, command.lon, command.lat, district)
        if change is None:  # quiet for long: not held any more, its row is placed
            out.placed_unheld.append((command, district))
            out.commands.append((command, "applied", f"placed in {district or 'no district'}"))
            return
        inc = change.incident
        touched[inc.incident_id] = inc
        first_change.setdefault(inc.incident_id, "placed")
        out.history.append(_history_row(inc, at, "placed"))
        out.commands.append((command, "applied", f"placed in {district or 'no district'}"))
        return
    source, target = c.find(command.incident_id), c.find(command.into)
    if command.incident_id == command.into:
        out.commands.append((command, "refused", "an incident cannot be merged into itself"))
        return
    if source is None or target is None:
        missing = command.incident_id if source is None else command.into
        out.commands.append((command, "refused", f"{missing} is not open in correlation any more"))
        return
    if source.family != target.family:
        out.commands.append(
            (command, "refused", f"{source.family} and {target.family} are other families")
        )
        return
    away = Incident(source.data)  # its view, kept after the correlator lets it go
    change = c.merge(command.incident_id, command.into)
    assert change is not None
    inc = change.incident
    touched.pop(away.incident_id, None)
    touched[inc.incident_id] = inc
    first_change.setdefault(inc.incident_id, "merged")
    away.status = "closed"
    gone = incident_message(away, "merged_away", [])
    extra.append((away.incident_id, {**gone, "merged_into": inc.incident_id}))
    out.merged_away.append((away.incident_id, inc.incident_id, at))
    out.decided.append((away.incident_id, inc.incident_id, "accepted", command.actor, at))
    out.history.append(_history_row(away, at, "merged_away"))
    out.history.append(_history_row(inc, at, "absorbed"))
    out.commands.append((command, "applied", f"merged into {inc.incident_id}"))


def split_id(command_id: str) -> str:
    """The id of the incident a split makes (the same for the same command)."""
    return "inc-" + hashlib.sha1(command_id.encode()).hexdigest()[:16]  # noqa: S324


def _split(
    c: Correlator,
    command: SplitCommand,
    stored: Sequence[CanonicalEvent],
    out: CorrelateOutput,
    touched: dict[str, Incident],
    first_change: dict[str, str],
) -> None:
    leaving = set(command.event_ids)
    moved = [e for e in stored if e.event_id in leaving]
    kept = [e for e in stored if e.event_id not in leaving]
    missing = leaving - {e.event_id for e in moved}
    if missing:
        out.commands.append((command, "refused", f"not reports of it: {sorted(missing)[:5]}"))
        return
    if not kept:
        out.commands.append((command, "refused", "every report would leave: nothing to split"))
        return
    new_id = split_id(command.command_id)
    made = c.split(command.incident_id, kept, moved, new_id)
    if made is None:
        out.commands.append(
            (command, "refused", f"{command.incident_id} is not open in correlation any more")
        )
        return
    left, new = made
    for inc, change in ((left, "split"), (new, "opened")):
        touched[inc.incident_id] = inc
        first_change[inc.incident_id] = change
        out.history.append(_history_row(inc, command.at, change))
    out.moved.append(([e.event_id for e in moved], new_id))
    out.commands.append((command, "applied", f"{len(moved)} report(s) split into {new_id}"))


def _history_row(inc: Incident, at: datetime, change: str) -> tuple[Any, ...]:
    return (
        inc.incident_id,
        at,
        change,
        inc.status,
        inc.category,
        inc.district,
        inc.priority,
        sum(inc.reports.values()),
    )
