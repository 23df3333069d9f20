"""Pack loading on small hand-made packs: borders, holes, multipolygons, repair, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from citybrain.config_errors import ConfigError
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack

SQUARE_A = [
    [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
    [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]],
]
SQUARE_B = [[[1, 0], [2, 0], [2, 1], [1, 1], [1, 0]]]
ISLANDS_C = [
    [[[3, 0], [3.5, 0], [3.5, 0.5], [3, 0.5], [3, 0]]],
    [[[4, 0], [4.5, 0], [4.5, 0.5], [4, 0.5], [4, 0]]],
]


def feature(code: str, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code, "name": code}, "geometry": geometry}


def write_pack(
    folder: Path, features: list[dict[str, Any]], extra: str = "", crs: str = "WGS-84"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    (folder / "pack.yaml").write_text(
        "pack: test\ncity: Testville\nversion: 1\n"
        f"source_crs: {crs}\n"
        "sources:\n  - {layer: district, source: hand-made, licence: CC0}\n"
        "layers:\n  - layer: district\n    file: d.geojson\n"
        "grid:\n  cell_m: 10000\n" + extra
    )
    return folder


@pytest.fixture
def toy(tmp_path: Path) -> GeoIndex:
    return GeoIndex(
        load_pack(
            write_pack(
                tmp_path / "toy",
                [
                    feature("A", {"type": "Polygon", "coordinates": SQUARE_A}),
                    feature("B", {"type": "Polygon", "coordinates": SQUARE_B}),
                    feature("C", {"type": "MultiPolygon", "coordinates": ISLANDS_C}),
                ],
            )
        )
    )


@pytest.mark.parametrize(
    ("lon", "lat", "district", "in_area"),
    [
        (0.2, 0.2, "A", True),
        (1.5, 0.5, "B", True),
        (1.0, 0.5, "A", True),  # on the A|B border: the first region in the file
        (0.5, 0.5, None, False),  # in A's hole: outside the city
        (3.25, 0.25, "C", True),  # first island
        (4.25, 0.25, "C", True),  # second island
        (3.75, 0.25, None, False),  # between the islands
        (10.0, 10.0, None, False),  # far away
    ],
)
def test_border_hole_and_multipolygon_cases(
    toy: GeoIndex, lon: float, lat: float, district: str | None, in_area: bool
) -> None:
    tags = toy.tag([lon], [lat])
    assert toy.code_of(tags, "district", 0) == district
    assert bool(tags.in_area[0]) is in_area


def test_an_invalid_polygon_is_repaired_at_load_time(tmp_path: Path) -> None:
    bowtie = [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]
    pack = load_pack(
        write_pack(tmp_path / "p", [feature("X", {"type": "Polygon", "coordinates": bowtie})])
    )
    assert len(pack.repaired) == 1 and pack.repaired[0].startswith("district:X (Self-intersection")
    assert pack.regions["district"][0].geometry.is_valid


def test_a_non_polygon_is_rejected_naming_file_and_feature(tmp_path: Path) -> None:
    folder = write_pack(
        tmp_path / "p",
        [
            feature("A", {"type": "Polygon", "coordinates": SQUARE_A}),
            feature("L", {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
        ],
    )
    with pytest.raises(
        ConfigError, match=r"d\.geojson: feature 1 \(L\): LineString is not a polygon"
    ):
        load_pack(folder)


def test_a_bad_manifest_names_file_line_and_field(tmp_path: Path) -> None:
    folder = write_pack(
        tmp_path / "p",
        [feature("A", {"type": "Polygon", "coordinates": SQUARE_A})],
        extra="jurisdictions:\n  - layer: jurisdiction:x\n    zones: []\n",
    )
    with pytest.raises(ConfigError) as info:
        load_pack(folder)
    assert f"{folder / 'pack.yaml'}:14: jurisdictions.0.zones:" in str(info.value)


def test_gcj02_boundaries_are_converted_to_wgs84(tmp_path: Path) -> None:
    square = [[[121.40, 31.20], [121.50, 31.20], [121.50, 31.30], [121.40, 31.30], [121.40, 31.20]]]
    wgs = load_pack(
        write_pack(tmp_path / "w", [feature("A", {"type": "Polygon", "coordinates": square})])
    )
    gcj = load_pack(
        write_pack(
            tmp_path / "g", [feature("A", {"type": "Polygon", "coordinates": square})], crs="GCJ-02"
        )
    )
    wx, wy = wgs.regions["district"][0].geometry.centroid.xy
    gx, gy = gcj.regions["district"][0].geometry.centroid.xy
    # In Shanghai GCJ-02 sits ~450 m east and ~200 m south of WGS-84: converting moves the
    # boundary back west and north.
    assert 0.003 < wx[0] - gx[0] < 0.006
    assert 0.001 < gy[0] - wy[0] < 0.003


def test_unknown_district_in_a_jurisdiction_zone(tmp_path: Path) -> None:
    folder = write_pack(
        tmp_path / "p",
        [feature("A", {"type": "Polygon", "coordinates": SQUARE_A})],
        extra="jurisdictions:\n  - layer: jurisdiction:x\n    zones:\n"
        "      - {code: z, name: Z, districts: [A, Q]}\n",
    )
    with pytest.raises(ConfigError, match=r"zone z: unknown district codes \['Q'\]"):
        load_pack(folder)
