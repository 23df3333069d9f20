"""Every shipped city pack, checked the same way: it loads; its gazetteer's places and its
sensors lie inside the districts they name; its jurisdictions cover the city; its
departments and routes (its own or the shipped ones) load; the city's names come from the
pack, and its callers' addresses are placed (and a short form that begins road names is
never stripped)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
import yaml
from shapely.geometry import Point

from citybrain.dispatch.routing import DEPARTMENTS_FILE, dispatch_files, load_routing
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds, with_city_devices
from citybrain.geo.address import load_gazetteer
from citybrain.geo.crs import to_wgs84
from citybrain.geo.pack import PACKS_DIR, CityPack, load_pack
from citybrain.settings import Settings

SHIPPED = sorted(p.name for p in PACKS_DIR.iterdir() if (p / "pack.yaml").is_file())


def test_the_shipped_packs_are_shanghai_and_guiyang() -> None:
    assert SHIPPED == ["guiyang", "shanghai"]


@pytest.fixture(scope="module", params=SHIPPED)
def pack(request: pytest.FixtureRequest) -> CityPack:
    return load_pack(request.param)


def test_every_gazetteer_place_lies_in_its_district(pack: CityPack) -> None:
    assert pack.spec.gazetteer is not None
    doc = yaml.safe_load((pack.folder / pack.spec.gazetteer).read_text(encoding="utf-8"))
    entries = doc["entries"]
    lon, lat = to_wgs84([e["lon"] for e in entries], [e["lat"] for e in entries], doc["crs"])
    districts = {r.code: r.geometry for r in pack.regions["district"]}
    outside = [
        e["name"]
        for e, x, y in zip(entries, lon, lat, strict=True)
        if not districts[e["district"]].contains(Point(float(x), float(y)))
    ]
    assert outside == []


def test_the_jurisdictions_cover_every_district_once(pack: CityPack) -> None:
    districts = {r.code for r in pack.regions["district"]}
    for groups in pack.spec.jurisdictions:
        named = [d for zone in groups.zones for d in zone.districts]
        assert sorted(named) == sorted(districts), groups.layer


def test_the_city_s_sensors_lie_inside_the_city(pack: CityPack) -> None:
    feeds = with_city_devices(load_feeds(BUILTIN_DIR), pack.folder)
    area = pack.area().buffer(0.001)
    shapely.prepare(area)
    for feed in feeds:
        if feed.devices is None:
            continue
        outside = [
            d.device_id
            for d in feed.devices.devices.values()
            if not area.contains(Point(d.lon, d.lat))
        ]
        assert outside == [], feed.name


def test_the_city_s_departments_and_routes_load(pack: CityPack, tmp_path: Path) -> None:
    settings = Settings(city_pack=str(pack.folder), _env_file=None)
    departments, routes = dispatch_files(settings)
    routing = load_routing(departments, routes)
    zones = {z.code for g in pack.spec.jurisdictions for z in g.zones}
    assert zones <= set(routing.by_code)  # every zone has its department
    if pack.spec.dispatch is None:
        assert departments == DEPARTMENTS_FILE
    else:
        assert departments.parent == pack.folder
    # a file in the settings wins over the pack's
    mine = tmp_path / "departments.yaml"
    mine.write_text(departments.read_text(encoding="utf-8"), encoding="utf-8")
    chosen = Settings(
        city_pack=str(pack.folder),
        departments_file=mine,
        _env_file=None,
    )
    assert dispatch_files(chosen)[0] == mine


@pytest.mark.parametrize(
    ("pack_name", "text", "place", "district"),
    [
        ("guiyang", "贵州省贵阳市云岩区北京路有井盖缺失", "北京路", "520103"),
        ("guiyang", "贵州贵阳南明区甲秀楼旁边闻到煤气味", "甲秀楼", "520102"),
        ("guiyang", "筑城观山湖区林城西路", "林城西路", "520115"),
        ("guiyang", "贵阳北站出站口积水", "贵阳北站", "520115"),
        ("guiyang", "花溪区青岩古镇路灯不亮", "青岩古镇", "520111"),
        ("guiyang", "南明区", "南明区", "520102"),  # district only
        ("shanghai", "上海市浦东新区世纪大道2001号", "世纪大道2001号", "310115"),
        ("shanghai", "上海闵行区沪闵路6258号", "沪闵路6258号", "310112"),
    ],
)
def test_callers_addresses_in_each_city(
    pack_name: str, text: str, place: str, district: str
) -> None:
    match = load_gazetteer(load_pack(pack_name)).match(text)
    assert match.entry is not None and (match.entry.name, match.district) == (place, district)


def test_the_city_s_names_come_from_its_pack() -> None:
    guiyang = load_gazetteer(load_pack("guiyang"))
    shanghai = load_gazetteer(load_pack("shanghai"))
    assert guiyang.strip_admin("贵州省贵阳市云岩区北京路") == "北京路"
    assert guiyang.strip_admin("林城云岩区北京路") == "北京路"  # a name from pack.yaml
    assert shanghai.strip_admin("上海市沪闵路") == "沪闵路"  # 沪 is not stripped
    assert guiyang.strip_admin("上海市浦东新区世纪大道") == "上海市浦东新区世纪大道"


def test_every_district_has_neighbours_and_bordering_is_mutual(pack: CityPack) -> None:
    neighbours = pack.neighbours()
    assert set(neighbours) == {r.code for r in pack.regions["district"]}
    alone = [code for code in neighbours if not neighbours[code]]
    assert alone in ([], ["310151"])  # 崇明区 is an island
    assert all(code in neighbours[other] for code in neighbours for other in neighbours[code])


def test_known_borders() -> None:
    assert "310115" in load_pack("shanghai").neighbours()["310101"]  # 黄浦 | 浦东, the river
    assert "520103" in load_pack("guiyang").neighbours()["520102"]  # 南明 | 云岩
    assert "520121" not in load_pack("guiyang").neighbours()["520102"]  # 南明 and 开阳: apart
