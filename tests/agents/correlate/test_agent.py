"""The correlate stage through the real broker: a kill -9 in the middle of a run neither
splits nor duplicates incidents (state recovered from the table's changelog)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.geo.address import load_gazetteer
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.incident_status import MESSAGE_HEADER, MESSAGE_KIND
from citybrain.settings import Settings
from citybrain_tools.kafka import end_offsets, messages_after, start_group_at_end
from citybrain_tools.sim.scenario import Scenario
from tests.agents.normalize.test_agent import origin_of_event, produce

pytestmark = pytest.mark.integration


def db_groups(settings: Settings, event_ids: set[str]) -> dict[str, str]:
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT event_id, incident_id FROM incident_reports WHERE event_id = ANY(%s)",
            (list(event_ids),),
        ).fetchall()
    return dict(rows)


def partition(mapping: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for event, incident in mapping.items():
        groups.setdefault(incident, set()).add(event)
    return {frozenset(g) for g in groups.values()}


def test_a_killed_worker_neither_splits_nor_duplicates_incidents(
    stack: Settings, worker_factory: Any
) -> None:
    seed = random.randint(1000, 10**6)
    feeds = {f.name: f for f in load_feeds(BUILTIN_DIR)}
    pack = load_pack("shanghai")
    scenario = Scenario(
        {n: f.devices for n, f in feeds.items() if f.devices},  # type: ignore[misc]
        load_gazetteer(pack),
        seed=seed,
        problem_share=0.3,
        index=GeoIndex(pack),
    )
    records = [
        r
        for r in scenario.build(600, timedelta(hours=2), end=datetime.now(UTC))
        if r.truth.get("problem_id")
    ]  # the problems' reports, not background
    sent: set[tuple[str, int, int]] = set()
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
    for r in records:
        by_topic.setdefault(r.topic, []).append((r.key.encode(), r.value))

    # a group started at the end of every topic: the worker correlates this test's reports,
    # not the stack's history (which grows with every run of the suite on it)
    group = f"test-correlate-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)
    start = end_offsets(stack, ["correlate.v1"])
    first = worker_factory(CITYBRAIN_APP_ID=group)
    first.wait_ready()  # the worker joins the group before the traffic starts
    for topic, items in by_topic.items():
        sent |= produce(stack, topic, items)

    def history() -> tuple[list[CanonicalEvent], set[str]]:
        """Everything on correlate.v1 since the worker's group started, in delivery order
        (first copies), and our event ids: what the worker correlates, so the reference
        below does too."""
        seen: set[str] = set()
        out = []
        ours = set()
        for m in messages_after(stack, ["correlate.v1"], start):
            if (MESSAGE_HEADER, MESSAGE_KIND) in m.headers:
                continue  # an incident status from the dispatch stage, not a report
            e = CanonicalEvent.from_json(m.value)
            if origin_of_event(m) in sent:
                ours.add(e.event_id)
            if e.event_id not in seen:
                seen.add(e.event_id)
                out.append(e)
        return out, ours

    # kill -9 once some, not all, reports are stored
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events, ours = history()
        stored = db_groups(stack, ours)
        if stored:
            break
        time.sleep(0.5)
    assert stored, first.log()[-3000:]
    first.kill()

    second = worker_factory(CITYBRAIN_APP_ID=group)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        events, ours = history()
        stored = db_groups(stack, ours)
        if ours and len(stored) == len(ours):
            break
        time.sleep(1)
    assert ours and len(stored) == len(ours), second.log()[-3000:]

    shanghai = load_pack("shanghai")  # the correlator the agent builds
    reference = Correlator(
        places=PlaceWords(load_gazetteer(shanghai)), neighbours=shanghai.neighbours()
    )
    expected: dict[str, str] = {}
    for e in events:  # the order the single correlate partition delivered them in
        try:
            change = reference.add(e)
        except Exception:  # noqa: S112 - a poison pill (the stage dead-letters it)
            continue
        if change is not None and e.event_id in ours:
            expected[e.event_id] = change.incident.incident_id
    stored = {k: v for k, v in stored.items() if k in expected}
    assert partition(stored) == partition(expected), "no split, no duplicate, no wrong merge"
    assert len(set(stored.values())) < len(stored), "reports were fused"
    with psycopg.connect(stack.conninfo()) as conn:
        totals = dict(
            conn.execute(
                "SELECT incident_id, reports_total FROM incidents WHERE incident_id = ANY(%s)",
                (list(set(stored.values())),),
            ).fetchall()
        )
    for incident, members in (
        (i, [k for k, v in stored.items() if v == i]) for i in set(stored.values())
    ):
        assert totals[incident] >= len(members)
