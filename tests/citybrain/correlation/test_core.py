"""The correlator's rules, table by table: fuse, keep apart, cross cell borders, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from citybrain.core.cells import cell_of
from citybrain.correlation.core import Correlator, cells_within, distance_m
from citybrain.correlation.rules import default_rules
from citybrain.schemas.events import CanonicalEvent, Location, RawRef

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
M = 1 / 111_320  # one metre of latitude in degrees


def ev(
    eid: str,
    category: str = "flooding",
    *,
    dlat_m: float = 0.0,
    minutes: float = 0,
    source: str = "hotline",
    kind: str = "report",
    lon: float = 121.5,
    lat: float = 31.2,
    status: str = "located",
    district: str | None = "310115",
    device: str | None = None,
    text: str | None = None,
    address: str | None = None,
    severity: int = 3,
) -> CanonicalEvent:
    located = status == "located"
    return CanonicalEvent(
        event_id=eid,
        source_kind=source,
        feed="f",
        kind=kind,
        category=category,
        severity=severity,
        observed_at=T0 + timedelta(minutes=minutes),
        received_at=T0,
        location=Location(
            status=status,
            lon=lon if located else None,
            lat=lat + dlat_m * M if located else None,
            district=district,
            device_id=device,
            address=address,
        ),
        raw_ref=RawRef("t", 0, 0),
        text=text,
    )


def incidents(events: list[CanonicalEvent]) -> list[list[str]]:
    c = Correlator()
    groups: dict[str, list[str]] = {}
    for e in events:
        change = c.add(e)
        if change is not None:
            groups.setdefault(change.incident.incident_id, []).append(e.event_id)
    return sorted(sorted(group) for group in groups.values())


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # a water-level alarm and calls about flooding nearby: one incident
        (
            [
                ev("a", source="iot", kind="alarm"),
                ev("b", dlat_m=200, minutes=10),
                ev("c", dlat_m=-150, minutes=30),
            ],
            [["a", "b", "c"]],
        ),
        # same place, different problem (a dark street next to the flood): two incidents
        ([ev("a"), ev("b", "streetlight_out", dlat_m=50, minutes=5)], [["a"], ["b"]]),
        # too far apart
        ([ev("a"), ev("b", dlat_m=1500, minutes=5)], [["a"], ["b"]]),
        # too long after
        ([ev("a"), ev("b", dlat_m=10, minutes=200)], [["a"], ["b"]]),
        # reports spread around the problem chain to their nearest neighbour (single link)
        (
            [ev("a"), ev("b", dlat_m=400, minutes=5), ev("c", dlat_m=800, minutes=9)],
            [["a", "b", "c"]],
        ),
        # a device's clear follows its alarm; a clear with no alarm opens nothing
        (
            [
                ev("a", "fire_smoke", source="iot", kind="alarm", device="S1"),
                ev("b", "fire_smoke", source="iot", kind="clear", device="S1", minutes=9),
                ev("c", "fire_smoke", source="iot", kind="clear", device="S2", minutes=9),
            ],
            [["a", "b"]],
        ),
        # a vague call naming no place opens its own incident, even with only one incident
        # of its family open in its district (it is suggested to an operator instead)
        ([ev("a"), ev("v", status="needs_location", minutes=5)], [["a"], ["v"]]),
        # ... but not when two could be meant, nor another vague call
        (
            [
                ev("a"),
                ev("b", dlat_m=3000),
                ev("v", status="needs_location", minutes=5),
                ev("w", status="needs_location", minutes=6),
            ],
            [["a"], ["b"], ["v"], ["w"]],
        ),
        # a vague call naming the place another caller named joins that incident, even with
        # another incident of the family open in the district (the district name says nothing)
        (
            [
                ev("a", address="浦东新区张江公寓5号楼"),
                ev("b", dlat_m=3000, address="浦东新区仙霞新村6号楼"),
                ev("v", status="needs_location", minutes=5, address="浦东新区张江公寓5号楼门口"),
            ],
            [["a", "v"], ["b"]],
        ),
        # ... but a vague place ("某小区门口") ties it to neither
        (
            [
                ev("a", address="浦东新区张江公寓5号楼"),
                ev("b", dlat_m=3000, address="浦东新区仙霞新村6号楼"),
                ev("v", status="needs_location", minutes=5, address="浦东新区某小区门口"),
            ],
            [["a"], ["b"], ["v"]],
        ),
        # a lone incident naming another place is not joined
        (
            [
                ev("a", address="浦东新区张江公寓5号楼"),
                ev("v", status="needs_location", minutes=5, address="浦东新区七宝菜市场"),
            ],
            [["a"], ["v"]],
        ),
        # the first located report takes over the district-only incident naming its place
        (
            [
                ev("v", status="needs_location", address="浦东新区康桥花园8号楼"),
                ev("a", minutes=5, address="康桥花园8号楼旁边"),
                ev("b", dlat_m=100, minutes=8),
            ],
            [["a", "b", "v"]],
        ),
        # ... and a vague place a caller names by its form alone is no place (某小区, 我家小区)
        (
            [
                ev("a", address="浦东新区某小区3号楼"),
                ev("v", status="needs_location", minutes=5, address="浦东新区某小区3号楼"),
                ev("w", status="needs_location", minutes=6, address="我家小区3号楼楼下"),
            ],
            [["a"], ["v"], ["w"]],
        ),
        # two incidents naming the same place: the call cannot tell which, it joins neither
        (
            [
                ev("a", address="浦东新区张江公寓5号楼"),
                ev("b", dlat_m=3000, minutes=1, address="浦东新区张江公寓7号楼"),
                ev("v", status="needs_location", minutes=5, address="张江公寓3号楼门口"),
            ],
            [["a"], ["b"], ["v"]],
        ),
    ],
)
def test_fusion_rules(events: list[CanonicalEvent], expected: list[list[str]]) -> None:
    assert incidents(events) == sorted(expected)


def test_an_event_just_across_a_cell_border_finds_the_incident() -> None:
    border = 31.21  # a cell edge (0.01 degree rows)
    a = ev("a", lat=border - 30 * M)
    b = ev("b", lat=border + 30 * M, minutes=3)
    assert cell_of(a.location.lon, a.location.lat) != cell_of(b.location.lon, b.location.lat)
    assert incidents([a, b]) == [["a", "b"]]
    cells = cells_within(121.5, border + 30 * M, 300)
    assert cell_of(121.5, border - 30 * M) in cells


def test_the_same_event_twice_changes_nothing() -> None:
    c = Correlator()
    first = c.add(ev("a"))
    assert first is not None and first.opened
    assert c.add(ev("a")) is None
    assert first.incident.reports == {"hotline": 1}


def test_priority_is_the_highest_of_the_reports() -> None:
    c = Correlator()
    c.add(ev("a", severity=3))
    change = c.add(ev("b", dlat_m=20, minutes=2, severity=1))
    assert change is not None and change.incident.priority == 1


def test_expiry_keeps_state_bounded() -> None:
    c = Correlator()
    c.add(ev("a"))
    assert c.expire(T0 + timedelta(minutes=100)) == 0
    assert c.expire(T0 + timedelta(hours=4)) == 1
    assert c.by_cell == {}


def test_distance_in_metres() -> None:
    assert distance_m(121.5, 31.2, 121.5, 31.2 + 100 * M) == pytest.approx(100, rel=1e-3)


def test_a_district_only_report_that_opens_its_own_incident_gets_suggestions() -> None:
    c = Correlator()
    near = c.add(ev("a", address="浦东新区张江公寓5号楼"))
    far = c.add(ev("b", dlat_m=3000, minutes=50, address="浦东新区仙霞新村6号楼"))
    other = c.add(ev("c", "fire_smoke", dlat_m=1500))  # another family: never suggested
    assert near is not None and far is not None and other is not None
    change = c.add(ev("v", status="needs_location", minutes=5, address="浦东新区张江路口"))
    assert change is not None and change.opened
    assert change.incident.location_status == "needs_location"
    mine = [s for s in change.suggestions if s.for_incident == change.incident.incident_id]
    ids = [s.incident_id for s in mine]
    assert ids == [near.incident.incident_id, far.incident.incident_id]  # nearer in time first
    first = mine[0]
    assert "same family flooding" in first.reasons and "5 min apart" in first.reasons
    assert 0 < mine[1].score < first.score <= 1
    # an incident opened later in the district is suggested to the district-only one too
    later = c.add(ev("d", dlat_m=1500, minutes=8))
    assert later is not None and later.opened
    assert [(s.for_incident, s.incident_id) for s in later.suggestions] == [
        (change.incident.incident_id, later.incident.incident_id)
    ]


def test_suggestions_are_capped_by_the_rules() -> None:
    c = Correlator(rules=default_rules().model_copy(update={"suggestions": 1}))
    for n in range(4):
        c.add(ev(f"a{n}", dlat_m=1000 * n, minutes=n))
    change = c.add(ev("v", status="needs_location", minutes=5))
    assert change is not None and len(change.suggestions) == 1


def test_accepting_a_suggestion_gives_what_an_automatic_merge_gives() -> None:
    from citybrain.correlation.state import to_json

    located = ev("a", address="浦东新区锦绣苑3号楼")
    vague = ev("v", status="needs_location", minutes=5, address="锦绣苑5号楼门口")
    alone = Correlator()  # only one incident names 锦绣苑: the call joins it by itself
    alone.add(located)
    joined = alone.add(vague)
    assert joined is not None and not joined.opened

    two = Correlator()  # two incidents name it: the call opens its own, with suggestions
    first = two.add(located)
    two.add(ev("b", dlat_m=3000, minutes=1, address="浦东新区锦绣苑7号楼"))
    opened = two.add(vague)
    assert first is not None and opened is not None and opened.opened
    target = first.incident.incident_id
    mine = [s.incident_id for s in opened.suggestions if s.for_incident != target]
    assert target in mine
    merged = two.merge(opened.incident.incident_id, target)
    assert merged is not None
    assert to_json(merged.incident) == to_json(joined.incident)
    assert two.find(opened.incident.incident_id) is None
    assert two.add(vague) is None  # the merged report is still known: nothing again


def _score_of(change: object, subject: str, candidate: str) -> float:
    (s,) = [
        s
        for s in change.suggestions  # type: ignore[attr-defined]
        if s.for_incident == subject and s.incident_id == candidate
    ]
    return float(s.score)


def test_a_suggestion_is_scored_again_when_its_incident_takes_in_reports() -> None:
    c = Correlator()
    vague = c.add(ev("v", status="needs_location", address="浦东新区丰庆家园3号楼门口"))
    opened = c.add(ev("a", dlat_m=2000, minutes=2))
    assert vague is not None and opened is not None
    subject, target = vague.incident.incident_id, opened.incident.incident_id
    first = _score_of(opened, subject, target)
    # more reports back the incident: the same pair, a higher score
    grown = c.add(ev("b", dlat_m=2050, minutes=3))
    assert grown is not None and not grown.opened
    more = _score_of(grown, subject, target)
    assert more > first
    # a caller of the incident names the place the district-only caller named
    named = c.add(ev("c", dlat_m=2020, minutes=4, address="丰庆家园12号楼"))
    assert named is not None and not named.opened
    (s,) = [s for s in named.suggestions if s.for_incident == subject]
    assert s.score > more and "a named place in common" in s.reasons


@pytest.mark.parametrize(
    ("best", "candidate", "score", "ranks", "after"),
    [
        # room left: any score enters, best first
        ([], 7, 0.2, True, [(0.2, 7)]),
        ([(0.5, 1)], 7, 0.6, True, [(0.6, 7), (0.5, 1)]),
        # full (3): a better score enters and the last leaves; a score no better stays out
        ([(0.9, 1), (0.8, 2), (0.5, 3)], 7, 0.6, True, [(0.9, 1), (0.8, 2), (0.6, 7)]),
        ([(0.9, 1), (0.8, 2), (0.5, 3)], 7, 0.5, False, [(0.9, 1), (0.8, 2), (0.5, 3)]),
        ([(0.9, 1), (0.8, 2), (0.5, 3)], 7, 0.1, False, [(0.9, 1), (0.8, 2), (0.5, 3)]),
        # one already there is scored again, up or down, and stays (its row is updated)
        ([(0.9, 1), (0.8, 7), (0.5, 3)], 7, 0.95, True, [(0.95, 7), (0.9, 1), (0.5, 3)]),
        ([(0.9, 1), (0.8, 7), (0.5, 3)], 7, 0.1, True, [(0.9, 1), (0.5, 3), (0.1, 7)]),
    ],
)
def test_a_rescore_writes_only_where_it_enters_or_stays_in_the_best_few(
    best: list[tuple[float, int]],
    candidate: int,
    score: float,
    ranks: bool,
    after: list[tuple[float, int]],
) -> None:
    c = Correlator()  # 3 suggestions a district-only incident
    if best:
        c.best[42] = list(best)
    assert c._ranks(42, candidate, score) is ranks
    assert c.best.get(42, []) == after


def test_the_best_few_are_forgotten_with_their_incident() -> None:
    c = Correlator()
    vague = c.add(ev("v", status="needs_location", address="浦东新区丰庆家园3号楼门口"))
    opened = c.add(ev("a", dlat_m=2000, minutes=2))
    assert vague is not None and opened is not None
    digest = vague.incident.data[0]
    assert [candidate for _, candidate in c.best[digest]] == [opened.incident.data[0]]
    c.merge(vague.incident.incident_id, opened.incident.incident_id)
    assert digest not in c.best


@pytest.mark.parametrize(
    ("candidate", "beats"),
    [
        # (what backs the incident suggested first, what backs the one after it)
        ({"reports": 4}, {"reports": 1}),  # more reports
        ({"reports": 1}, {"reports": 1, "district": "310104"}),  # its own district
        ({"reports": 1}, {"reports": 1, "minutes": 40}),  # nearer in time
    ],
)
def test_suggestions_rank_by_evidence(candidate: dict, beats: dict) -> None:
    c = Correlator(neighbours={"310115": {"310104"}, "310104": {"310115"}})
    ids: list[str] = []
    for n, spec in enumerate((candidate, beats)):
        opened = None
        for r in range(spec["reports"]):
            change = c.add(
                ev(
                    f"{n}-{r}",
                    dlat_m=3000 * n + 10 * r,
                    minutes=spec.get("minutes", 0),
                    district=spec.get("district", "310115"),
                )
            )
            assert change is not None
            opened = opened or change
        assert opened is not None
        ids.append(opened.incident.incident_id)
    vague = c.add(ev("v", status="needs_location", minutes=1, address="浦东新区路边"))
    assert vague is not None
    own = vague.incident.incident_id
    mine = [s.incident_id for s in vague.suggestions if s.for_incident == own]
    assert mine == ids
