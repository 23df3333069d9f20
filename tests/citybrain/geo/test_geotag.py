"""The geotag step on the Shanghai pack: coordinates, devices, addresses, nothing dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.config_errors import ConfigError
from citybrain.geo.address import load_gazetteer
from citybrain.geo.devices import DeviceRegistry
from citybrain.geo.geotag import Geotagger, LocationRequest
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> Geotagger:
    registry = tmp_path_factory.mktemp("dev") / "devices.csv"
    registry.write_text(
        "device_id,feed,asset_type,lon,lat,installed_on\n"
        "WL-0001,water-level,water_level_gauge,121.5447,31.2218,2024-05-01\n"
        "SM-0042,smoke,smoke_detector,121.4365,31.1885,\n"
    )
    pack = load_pack("shanghai")
    return Geotagger(
        GeoIndex(pack), load_gazetteer(pack), DeviceRegistry.from_csv(registry, crs="GCJ-02")
    )


def test_every_kind_of_request_gets_a_placement(tagger: Geotagger) -> None:
    placements = tagger.place(
        [
            LocationRequest(121.5447, 31.2218, crs="GCJ-02"),  # coordinates
            LocationRequest(device_id="WL-0001"),  # registry
            LocationRequest(address="市民反映：徐汇区漕溪北路336号门口积水"),  # address
            LocationRequest(address="小区门口有积水"),  # vague
            LocationRequest(device_id="NOPE-1"),  # unknown device
            LocationRequest(122.9, 31.0),  # at sea
            LocationRequest(31.2218, 121.5447, crs="GCJ-02"),  # swapped
        ]
    )
    statuses = [p.location_status for p in placements]
    assert statuses == [
        "located",
        "located",
        "located",
        "needs_location",
        "unknown_device",
        "out_of_area",
        "located",
    ]
    assert [p.district for p in placements] == [
        "310115",
        "310115",
        "310104",
        None,
        None,
        None,
        "310115",
    ]
    assert placements[0].jurisdiction == {"gas": "gas-pudong", "drainage": "drain-pudong"}
    assert placements[0].grid_cell is not None
    assert [p.method for p in placements[:3]] == ["coordinates", "device", "address"]
    assert placements[2].match_confidence is not None and placements[2].match_confidence > 0.9
    assert placements[6].swapped


def test_registry_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text(
        "device_id,feed,asset_type,lon,lat,installed_on\nA,f,t,121.5,31.2,\nA,f,t,121.5,31.2,\n"
    )
    with pytest.raises(ConfigError, match=r"devices\.csv:3: device_id 'A' repeated"):
        DeviceRegistry.from_csv(bad)
    bad.write_text("device_id,feed,asset_type,lon,lat,installed_on\nB,f,t,east,31.2,\n")
    with pytest.raises(ConfigError, match=r"devices\.csv:2: lon/lat"):
        DeviceRegistry.from_csv(bad)
