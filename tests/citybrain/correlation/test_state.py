"""Incidents held compactly and stored as JSON: every field survives the round trip, states
written before devices and texts were hashed still load, places anywhere on earth keep
their centimetre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from citybrain.correlation.core import Correlator, Incident, event_key, text_key
from citybrain.correlation.state import from_json, restore, to_json
from tests.citybrain.correlation.test_core import T0, ev


def _incident() -> Incident:
    c = Correlator()
    c.add(ev("a", device="WL-1", address="浦东新区锦绣花园3号楼", severity=2, source="iot"))
    c.add(ev("b", dlat_m=40, minutes=5, address="锦绣花园3号楼门口"))
    change = c.add(ev("c", dlat_m=80, minutes=9, address="锦绣花园东门", source="open311"))
    assert change is not None and not change.opened
    return change.incident


def test_an_incident_survives_its_json_round_trip() -> None:
    inc = _incident()
    again = from_json(to_json(inc))
    assert to_json(again) == to_json(inc)
    assert again.incident_id == inc.incident_id and again.incident_id.startswith("inc-")
    assert (again.first_seen, again.last_seen) == (T0, T0 + timedelta(minutes=9))
    assert again.reports == {"iot": 1, "hotline": 1, "open311": 1}
    assert again.report_count == 3 and again.priority == 2
    assert [again.has_key(event_key(k)) for k in "abcd"] == [True, True, True, False]
    assert again.has_device(event_key("WL-1")) and not again.has_device(event_key("WL-2"))
    assert len(again.texts) == 1  # the estate 锦绣花园, named twice; "东门" names no place
    assert (again.lon, again.lat) == (inc.lon, inc.lat) == pytest.approx((121.5, 31.2))
    assert len(again.points) == 6


def test_a_state_stored_with_devices_and_texts_in_clear_still_loads() -> None:
    old = {
        "incident_id": "inc-00ff00ff00ff00ff",
        "family": "flooding",
        "category": "flooding",
        "priority": 2,
        "first_seen": "2026-11-24T08:00:00+00:00",
        "last_seen": "2026-11-24T08:20:00+00:00",
        "lon": 121.5,
        "lat": 31.2,
        "district": "310115",
        "location_status": "located",
        "status": "dispatched",
        "reports": {"iot": 1, "hotline": 2},
        "event_keys": [1, 2, 3],
        "devices": ["WL-7"],
        "texts": [["锦绣", "绣花", "花园"]],
        "points": [[121.5, 31.2], [121.5005, 31.2004]],  # the oldest layout: pairs
    }
    inc = from_json(old)
    assert inc.has_device(event_key("WL-7"))
    assert inc.texts == (tuple(sorted(text_key(g) for g in ["锦绣", "绣花", "花园"])),)
    assert inc.points == pytest.approx([121.5, 31.2, 121.5005, 31.2004])
    assert (inc.status, inc.report_count, inc.reports) == ("dispatched", 3, old["reports"])


@pytest.mark.parametrize(
    ("lon", "lat"), [(121.4737, 31.2304), (-122.4194, 37.7749), (-180.0, -90.0), (180.0, 90.0)]
)
def test_places_anywhere_keep_their_centimetre(lon: float, lat: float) -> None:
    inc = Incident.new(
        "inc-0000000000000001", "flooding", "flooding", 3, T0, T0, lon, lat, None, "located"
    )
    assert inc.lon == pytest.approx(lon, abs=1e-7) and inc.lat == pytest.approx(lat, abs=1e-7)


def test_the_highest_ids_and_the_coded_fields_keep_their_values() -> None:
    later = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    inc = Incident.new(
        "inc-ffffffffffffffff",
        "noise",
        "noise",
        4,
        T0,
        later,
        None,
        None,
        None,
        "needs_location",
        status="reopened",
    )
    assert inc.incident_id == "inc-ffffffffffffffff"
    assert (inc.last_seen, inc.district, inc.cell) == (later, None, "unlocated")
    inc.district, inc.status, inc.priority = "310101", "resolved", 1
    assert (inc.district, inc.status, inc.priority, inc.family) == (
        "310101",
        "resolved",
        1,
        "noise",
    )
    assert inc.cell == "d310101"
    with pytest.raises(ValueError, match="does not fit"):
        inc.priority = 16


def test_restored_incidents_are_found_again() -> None:
    inc = _incident()
    c = Correlator()
    assert restore(c, {inc.cell: [to_json(inc)]}) == 1
    assert c.add(ev("b", dlat_m=40, minutes=5, address="锦绣花园3号楼门口")) is None  # held
    change = c.add(ev("d", dlat_m=60, minutes=12))
    assert change is not None and change.incident.incident_id == inc.incident_id
