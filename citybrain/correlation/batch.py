"""The correlate stage's decision for one batch (pure): which incidents each report opens,
joins or reopens, the rows to store, the incident messages to send and the table cells to
write. No Kafka, no database: the agent stores and sends what this returns.

A batch holds canonical events and incident-status messages (from the dispatch stage) in
arrival order. An item the correlator refuses is handed back as a failure with its
reason; the rest of the batch goes on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citybrain.correlation.core import Correlator, Incident
from citybrain.correlation.state import incident_message, incident_row, to_json
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.incident_status import IncidentStatusModel

Item = CanonicalEvent | IncidentStatusModel


@dataclass
class CorrelateOutput:
    """What one batch changed."""

    incidents: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENTS
    reports: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENT_REPORTS
    history: list[tuple[Any, ...]] = field(default_factory=list)  # rows of INCIDENT_HISTORY
    suggestions: list[tuple[Any, ...]] = field(default_factory=list)  # of MERGE_SUGGESTIONS
    reopened: list[str] = field(default_factory=list)  # incidents whose status to reset
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # incidents.v1
    cells: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)  # the table
    failures: list[tuple[int, str, Exception]] = field(default_factory=list)  # index, reason

    @property
    def stores_rows(self) -> bool:
        return bool(self.incidents)


def correlate_batch(c: Correlator, items: Sequence[Item], now: datetime) -> CorrelateOutput:
    """Apply a batch to the correlator; what to store, send and checkpoint."""
    out = CorrelateOutput()
    touched: dict[str, Incident] = {}
    first_change: dict[str, str] = {}  # incident -> opened / reopened / merged
    taken_in: dict[str, list[str]] = {}  # incident -> the reports it took in this batch
    statuses: list[Incident] = []
    for index, item in enumerate(items):
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
    out.messages = [
        (
            inc.incident_id,
            incident_message(inc, first_change[inc.incident_id], taken_in[inc.incident_id]),
        )
        for inc in touched.values()
    ]
    return out
