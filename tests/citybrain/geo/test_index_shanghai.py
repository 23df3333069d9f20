"""The shipped Shanghai pack: known places land in their district."""

from __future__ import annotations

import numpy as np
import pytest

from citybrain.geo.crs import gcj02_to_wgs84
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack

# District government seats, coordinates as shown on Amap (GCJ-02), to ~100 m.
SEATS = [
    ("310101", "黄浦区人民政府 延安东路300号", 121.4846, 31.2317),
    ("310104", "徐汇区人民政府 漕溪北路336号", 121.4365, 31.1885),
    ("310105", "长宁区人民政府 愚园路1320号", 121.4243, 31.2204),
    ("310106", "静安区人民政府 常德路370号", 121.4460, 31.2290),
    ("310107", "普陀区人民政府 大渡河路1668号", 121.3925, 31.2490),
    ("310109", "虹口区人民政府 飞虹路518号", 121.5050, 31.2645),
    ("310110", "杨浦区人民政府 江浦路549号", 121.5260, 31.2597),
    ("310112", "闵行区人民政府 沪闵路6258号", 121.3816, 31.1128),
    ("310113", "宝山区人民政府 密山路5号", 121.4891, 31.4050),
    ("310114", "嘉定区人民政府 博乐路111号", 121.2655, 31.3750),
    ("310115", "浦东新区人民政府 世纪大道2001号", 121.5447, 31.2218),
    ("310116", "金山区人民政府 龙山路555号", 121.3416, 30.7417),
    ("310117", "松江区人民政府 园中路1号", 121.2277, 31.0322),
    ("310118", "青浦区人民政府 公园路100号", 121.1243, 31.1506),
    ("310120", "奉贤区人民政府 望园路1529号", 121.4740, 30.9180),
    ("310151", "崇明区人民政府 人民路68号", 121.3975, 31.6230),
]


@pytest.fixture(scope="module")
def index() -> GeoIndex:
    return GeoIndex(load_pack("shanghai"))


def test_every_district_seat_is_tagged_with_its_district(index: GeoIndex) -> None:
    lon, lat = gcj02_to_wgs84([s[2] for s in SEATS], [s[3] for s in SEATS])
    tags = index.tag(lon, lat)
    got = list(index.codes_for(tags, "district"))
    assert got == [s[0] for s in SEATS]
    assert tags.in_area.all()
    assert (tags.cell >= 0).all()


def test_jurisdictions_follow_the_district_groups(index: GeoIndex) -> None:
    lon, lat = gcj02_to_wgs84([121.5447, 121.4846], [31.2218, 31.2317])  # Pudong, Huangpu
    tags = index.tag(lon, lat)
    assert list(index.codes_for(tags, "jurisdiction:gas")) == ["gas-pudong", "gas-dazhong"]


def test_sea_and_other_provinces_are_out_of_area(index: GeoIndex) -> None:
    # East China Sea; Suzhou (Jiangsu); Hangzhou (Zhejiang)
    tags = index.tag([122.6, 120.62, 120.15], [31.0, 31.30, 30.27])
    assert not tags.in_area.any()
    assert list(index.codes_for(tags, "district")) == [None, None, None]
    assert (tags.cell == -1).all()


def test_swapped_coordinates_are_detected_and_fixed(index: GeoIndex) -> None:
    lon, lat = gcj02_to_wgs84([121.5447], [31.2218])
    tags = index.tag(lat, lon)  # latitude first: a common vendor mistake
    assert tags.swapped.tolist() == [True]
    assert index.code_of(tags, "district", 0) == "310115"


def test_swapped_gcj02_is_fixed_before_conversion(index: GeoIndex) -> None:
    swapped = index.tag([31.2218], [121.5447], crs="GCJ-02")
    straight = index.tag([121.5447], [31.2218], crs="GCJ-02")
    assert swapped.swapped.tolist() == [True]
    assert (swapped.lon[0], swapped.lat[0]) == (straight.lon[0], straight.lat[0])
    assert abs(straight.lon[0] - 121.5447) > 0.003  # the offset was removed


def test_the_fast_path_agrees_with_plain_polygon_tests(index: GeoIndex) -> None:
    import shapely

    rng = np.random.default_rng(3)
    lon = rng.uniform(121.0, 121.9, 20_000)
    lat = rng.uniform(30.8, 31.5, 20_000)
    tags = index.tag(lon, lat)
    fast = index.codes_for(tags, "district")
    slow = np.full(lon.size, None, dtype=object)
    for region in reversed(index.regions["district"]):
        slow[shapely.intersects_xy(region.geometry, lon, lat)] = region.code
    assert (fast == slow).all()
