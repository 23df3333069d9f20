"""A city's address register as gazetteer entries (pure): CSV or GeoJSON with the standard
address parts, each row a place with a point (or a road with its line), in any coordinate
system the pack names. A bad row is an error naming the file and line (CSV) or feature.

CSV columns (a GeoJSON feature has the same properties and a Point or LineString):

    kind      address | building | community | poi | road
    district  the 6-digit code of the district the place lies in
    town      街道/镇 (optional)
    road      road name (address, road)
    number    house number, digits (address)
    estate    小区/花园/新村 name (community, building)
    building  building number, digits (building)
    name      a landmark's name (poi); for other kinds, the name the place is known by
    aliases   other names, separated by |
    lon, lat  the point (address, building, community, poi)
    line      a road's course: "lon lat;lon lat;..." (road)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shapely.geometry import LineString

from citybrain.config_errors import ConfigError
from citybrain.geo.address import GazetteerEntry
from citybrain.geo.crs import to_wgs84

COLUMNS = (
    "kind",
    "district",
    "town",
    "road",
    "number",
    "estate",
    "building",
    "name",
    "aliases",
    "lon",
    "lat",
    "line",
)
KINDS = ("address", "building", "community", "poi", "road")


def read_register(path: Path, crs: str, districts: Iterable[str]) -> list[GazetteerEntry]:
    """The register's entries, converted to WGS-84; `districts` are the pack's codes."""
    if path.suffix.lower() in (".geojson", ".json"):
        rows = list(_geojson_rows(path))
    else:
        rows = list(_csv_rows(path))
    known = set(districts)
    places: list[tuple[str, dict[str, str], list[tuple[float, float]]]] = []
    for where, row, coords in rows:
        places.append((where, row, _checked(where, row, coords, known)))
    flat = [c for _, _, coords in places for c in coords]
    if not flat:
        return []
    lon, lat = to_wgs84([c[0] for c in flat], [c[1] for c in flat], crs)
    entries: list[GazetteerEntry] = []
    at = 0
    for _, row, coords in places:
        converted = [(float(lon[at + i]), float(lat[at + i])) for i in range(len(coords))]
        at += len(coords)
        entries.append(_entry(row, converted))
    return entries


def _csv_rows(path: Path) -> Iterable[tuple[str, dict[str, str], list[tuple[float, float]]]]:
    try:
        f = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in ("kind", "district") if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}:1: missing columns {missing}; expected {list(COLUMNS)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            clean = {k: (v or "").strip() for k, v in row.items() if k}
            yield where, clean, _coords(where, clean)


def _coords(where: str, row: Mapping[str, str]) -> list[tuple[float, float]]:
    """The row's point, or its line's vertices."""
    try:
        if row.get("line"):
            vertices = [v.split() for v in row["line"].split(";") if v.strip()]
            return [(float(x), float(y)) for x, y in vertices]
        if row.get("lon") or row.get("lat"):
            return [(float(row["lon"]), float(row["lat"]))]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: lon/lat/line: not numbers ({exc})") from exc
    return []


def _geojson_rows(path: Path) -> Iterable[tuple[str, dict[str, str], list[tuple[float, float]]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read GeoJSON: {exc}") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ConfigError(f"{path}: expected a GeoJSON FeatureCollection")
    for number, feature in enumerate(features):
        where = f"{path}: feature {number}"
        props: dict[str, Any] = feature.get("properties") or {}
        row = {k: str(v).strip() for k, v in props.items() if v is not None}
        if isinstance(props.get("aliases"), list):
            row["aliases"] = "|".join(str(a) for a in props["aliases"])
        geometry = feature.get("geometry") or {}
        coords: list[tuple[float, float]] = []
        try:
            if geometry.get("type") == "Point":
                x, y = geometry["coordinates"][:2]
                coords = [(float(x), float(y))]
            elif geometry.get("type") == "LineString":
                coords = [(float(c[0]), float(c[1])) for c in geometry["coordinates"]]
            else:
                raise ConfigError(f"{where}: geometry must be a Point or a LineString")
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ConfigError(f"{where}: unreadable coordinates ({exc})") from exc
        yield where, row, coords


def _checked(
    where: str, row: Mapping[str, str], coords: list[tuple[float, float]], known: set[str]
) -> list[tuple[float, float]]:
    kind = row.get("kind", "")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    if row.get("district") not in known:
        raise ConfigError(f"{where}: district: {row.get('district')!r} is not in the city pack")
    needs = {
        "address": ("road", "number"),
        "building": ("estate", "building"),
        "community": ("estate",),
        "poi": ("name",),
        "road": ("road",),
    }[kind]
    for column in needs:
        if not row.get(column):
            raise ConfigError(f"{where}: {column}: required for a {kind}")
    for column in ("number", "building"):
        if row.get(column) and not row[column].isdigit():
            raise ConfigError(f"{where}: {column}: digits only, got {row[column]!r}")
    if kind == "road" and not coords:
        raise ConfigError(f"{where}: line: a road needs its line (or a point)")
    if kind != "road" and len(coords) != 1:
        raise ConfigError(f"{where}: lon, lat: a {kind} needs one point")
    for lon, lat in coords:
        if not (73 <= lon <= 136 and 3 <= lat <= 54):
            raise ConfigError(f"{where}: ({lon}, {lat}) is not in China (lon, lat order?)")
    return coords


def _entry(row: Mapping[str, str], coords: list[tuple[float, float]]) -> GazetteerEntry:
    kind = row["kind"]
    aliases = tuple(a.strip() for a in row.get("aliases", "").split("|") if a.strip())
    if kind != "poi" and row.get("name"):  # the name a numbered place is known by: 恒隆广场
        aliases += (row["name"],)
    if kind == "address":
        name = f"{row['road']}{row['number']}号"
        if row.get("town"):
            aliases += (f"{row['town']}{name}",)
    elif kind == "building":
        estate = row["estate"]
        name = f"{estate}{row['building']}栋"
        if not estate.endswith("小区"):
            aliases += (f"{estate}小区{row['building']}栋",)
    elif kind == "community":
        name = row["estate"]
    elif kind == "poi":
        name = row["name"]
    else:
        name = row["road"]
    line: tuple[tuple[float, float], ...] = ()
    if kind == "road" and len(coords) >= 2:
        line = tuple(coords)
        middle = LineString(coords).interpolate(0.5, normalized=True)
        lon, lat = float(middle.x), float(middle.y)
    else:
        lon, lat = coords[0]
    return GazetteerEntry(kind, name, row["district"], lon, lat, aliases, line)  # type: ignore[arg-type]
