"""The address register and the matcher over it (pure): a CSV or GeoJSON register is read
with its errors pointing at the line; road + number, estate + building (栋/幢/号楼/座,
Chinese numerals, full-width digits), landmarks, road crossings from the roads' lines, and
the cases where the matcher must decline (a name in several districts, a district that
contradicts the place)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citybrain.config_errors import ConfigError
from citybrain.geo.address import Gazetteer, chinese_number, load_gazetteer, normalize
from citybrain.geo.pack import load_pack
from citybrain.geo.register import read_register

HEADER = "kind,district,town,road,number,estate,building,name,aliases,lon,lat,line\n"
# a small register in Pudong (310115) and Xuhui (310104), WGS-84; the roads cross at
# (121.5200, 31.2200); 云台路 exists in both districts
REGISTER = HEADER + "\n".join(
    [
        "address,310115,花木街道,芳华路,188,,,,,121.5510,31.2110,",
        "building,310115,,,,锦绣苑,3,,,121.5530,31.2120,",
        "community,310115,,,,锦绣苑,,,,121.5532,31.2122,",
        "poi,310115,,,,,,浦东图书馆,新图书馆|浦图,121.5480,31.2190,",
        "road,310115,,樱花路,,,,,,,,121.5100 31.2200;121.5300 31.2200",
        "road,310115,,梅花路,,,,,,,,121.5200 31.2100;121.5200 31.2300",
        "road,310115,,云台路,,,,,,,,121.4900 31.1900;121.5000 31.1950",
        "road,310104,,云台路,,,,,,,,121.4300 31.1800;121.4400 31.1850",
    ]
)


@pytest.fixture(scope="module")
def gazetteer(tmp_path_factory: pytest.TempPathFactory) -> Gazetteer:
    path = tmp_path_factory.mktemp("register") / "register.csv"
    path.write_text(REGISTER, encoding="utf-8")
    pack = load_pack("shanghai")
    codes = {r.code for r in pack.regions["district"]}
    return load_gazetteer(pack, read_register(path, "WGS-84", codes))


@pytest.mark.parametrize(
    ("text", "kind", "name", "placed"),
    [
        ("浦东新区芳华路188号门口井盖没了", "address", "芳华路188号", True),
        ("芳华路１８８号", "address", "芳华路188号", True),  # full-width digits
        ("芳华路一百八十八号旁边", "address", "芳华路188号", True),  # Chinese numerals
        ("芳华路188号楼下", "address", "芳华路188号", True),
        ("锦绣苑3栋2单元楼道有烟", "building", "锦绣苑3栋", True),
        ("锦绣苑小区三号楼", "building", "锦绣苑3栋", True),
        ("锦绣苑3幢", "building", "锦绣苑3栋", True),
        ("锦绣苑门口", "community", "锦绣苑", True),
        ("浦图对面", "poi", "浦东图书馆", True),  # an alias
        ("樱花路与梅花路交叉口积水", "intersection", "樱花路与梅花路交叉口", True),
        ("梅花路樱花路路口红绿灯坏了", "intersection", "梅花路与樱花路交叉口", True),
        ("樱花路上", "road", "樱花路", True),
        ("芳华路999号", None, None, False),  # a number the register lacks, a road it lacks
        ("云台路路灯不亮", "road", "云台路", False),  # in two districts, none said: decline
        ("徐汇区云台路路灯不亮", "road", "云台路", True),  # the district says which
        ("徐汇区芳华路188号", "address", "芳华路188号", False),  # contradiction: decline
    ],
)
def test_the_most_specific_place_or_a_decline(
    gazetteer: Gazetteer, text: str, kind: str | None, name: str | None, placed: bool
) -> None:
    m = gazetteer.match(text)
    assert (m.entry.kind if m.entry else None, m.entry.name if m.entry else None) == (kind, name)
    assert m.placed() is placed, m.reasons


def test_an_intersection_is_where_the_lines_meet(gazetteer: Gazetteer) -> None:
    m = gazetteer.match("樱花路和梅花路十字路口")
    assert (round(m.lon or 0, 4), round(m.lat or 0, 4)) == (121.52, 31.22)
    assert m.district == "310115"


@pytest.mark.parametrize(
    ("said", "number"),
    [("一二六六", "1266"), ("十二", "12"), ("二十三", "23"), ("一百零五", "105"), ("两", "2")],
)
def test_chinese_numbers(said: str, number: str) -> None:
    assert chinese_number(said) == number


def test_normalize_reads_building_variants_as_one() -> None:
    assert normalize("锦绣苑３号楼、5幢 7座") == "锦绣苑3栋5栋7栋"


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("shop,310115,,,,,,某店,,121.5,31.2,", "kind: 'shop' is not one of"),
        ("poi,999999,,,,,,某店,,121.5,31.2,", "district: '999999' is not in the city pack"),
        ("address,310115,,芳华路,,,,,,121.5,31.2,", "number: required for a address"),
        ("address,310115,,芳华路,12A,,,,,121.5,31.2,", "number: digits only"),
        ("poi,310115,,,,,,某店,,31.2,121.5,", "is not in China (lon, lat order?)"),
        ("poi,310115,,,,,,某店,,abc,31.2,", "lon/lat/line: not numbers"),
    ],
)
def test_a_bad_row_names_its_line(tmp_path: Path, row: str, says: str) -> None:
    path = tmp_path / "register.csv"
    path.write_text(HEADER + "poi,310115,,,,,,好店,,121.5,31.2,\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_register(path, "WGS-84", {"310115"})
    assert str(caught.value).startswith(f"{path}:3: ") and says in str(caught.value)


def test_a_geojson_register_in_gcj02(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "kind": "poi",
                    "district": "310115",
                    "name": "某馆",
                    "aliases": ["馆"],
                },
                "geometry": {"type": "Point", "coordinates": [121.5, 31.2]},
            },
            {
                "type": "Feature",
                "properties": {"kind": "road", "district": "310115", "road": "某路"},
                "geometry": {"type": "LineString", "coordinates": [[121.5, 31.2], [121.51, 31.2]]},
            },
        ],
    }
    path = tmp_path / "register.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    poi, road = read_register(path, "GCJ-02", {"310115"})
    assert (poi.kind, poi.name, poi.aliases) == ("poi", "某馆", ("馆",))
    assert 121.49 < poi.lon < 121.5 and 31.2 < poi.lat < 31.21  # GCJ-02 -> WGS-84 moved it
    assert road.kind == "road" and len(road.line) == 2
