"""Chinese address matching for hotline tickets: text -> point + confidence (pure).

Steps: normalise (NFKC: full-width digits and letters become half-width; spaces and
punctuation go; common aliases are expanded), parse the administrative parts (province /
city / district / street-town), then look for the most specific gazetteer entry the text
names: an address point (road + number), a landmark, a community, a road. The confidence
says how specific the match is and drops when the text names another district than the
entry's. Below the threshold the caller stores the event as `needs_location`: an
operator places it; nothing is guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from citybrain.config_errors import ConfigError
from citybrain.geo.crs import to_wgs84
from citybrain.geo.pack import CityPack

Kind = Literal["address", "poi", "community", "road", "district"]

#: Confidence of a match by kind, before consistency checks.
BASE_CONFIDENCE: dict[str, float] = {
    "address": 0.95,
    "poi": 0.85,
    "community": 0.8,
    "road": 0.55,
    "district": 0.25,
}
DEFAULT_THRESHOLD = 0.5

_PROVINCE_CITY = re.compile(r"^(中国)?(上海市|上海|沪)(市辖区)?")
_NOISE = re.compile(r"[\s,，。;；:：!！?？、（）()\[\]【】\"'“”‘’<>《》\-—_~·]+")
_ROAD_NUMBER = re.compile(
    r"(?P<road>[\u4e00-\u9fa5A-Za-z0-9]{1,12}?(?:路|街|大道|公路|巷|弄|道))(?P<num>\d+)(?:号|弄)"
)
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


@dataclass(frozen=True)
class GazetteerEntry:
    kind: Kind
    name: str
    district: str
    lon: float  # WGS-84
    lat: float
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressMatch:
    """The matcher's answer; `entry` is None when nothing in the text is placeable."""

    text: str
    normalized: str
    entry: GazetteerEntry | None
    confidence: float
    district: str | None
    reasons: tuple[str, ...] = ()

    @property
    def lon(self) -> float | None:
        return self.entry.lon if self.entry else None

    @property
    def lat(self) -> float | None:
        return self.entry.lat if self.entry else None

    def placed(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        return self.entry is not None and self.confidence >= threshold


def normalize(text: str) -> str:
    """NFKC (full-width digits become half-width), no spaces or punctuation."""
    s = unicodedata.normalize("NFKC", text)
    s = _NOISE.sub("", s)
    return re.sub(r"(\d+)号楼", r"\1号", s)


@dataclass
class Gazetteer:
    """Entries indexed for lookup by name, alias and road + number."""

    entries: list[GazetteerEntry]
    districts: dict[str, str]  # district name -> code (names and short forms)
    district_points: dict[str, GazetteerEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name: dict[str, GazetteerEntry] = {}
        for e in self.entries:
            for name in (e.name, *e.aliases):
                key = normalize(name)
                if len(key) >= 2:
                    self.by_name.setdefault(key, e)
        # longest names first, so 东方明珠电视塔 wins over 东方明珠
        self.names = sorted(self.by_name, key=len, reverse=True)
        self.district_names = sorted(self.districts, key=len, reverse=True)

    @property
    def full_district_names(self) -> list[str]:
        """The districts' full names (浦东新区, not the short form 浦东)."""
        return [name for name in self.districts if name.endswith(("区", "县", "市", "旗"))]

    @classmethod
    def load(
        cls, path: Path, districts: dict[str, str], district_points: dict[str, tuple[float, float]]
    ) -> Gazetteer:
        """Read a gazetteer YAML (entries in its declared CRS) and convert to WGS-84."""
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        crs = doc.get("crs", "WGS-84")
        raw = doc.get("entries") or []
        lon, lat = to_wgs84([e["lon"] for e in raw], [e["lat"] for e in raw], crs)
        entries = []
        for number, (e, x, y) in enumerate(zip(raw, lon, lat, strict=True)):
            if e.get("kind") not in BASE_CONFIDENCE or e.get("kind") == "district":
                raise ConfigError(f"{path}: entry {number} ({e.get('name')}): bad kind")
            entries.append(
                GazetteerEntry(
                    e["kind"],
                    e["name"],
                    str(e["district"]),
                    float(x),
                    float(y),
                    tuple(e.get("aliases", [])),
                )
            )
        names: dict[str, str] = {}
        for name, code in districts.items():
            names[name] = code
            short = re.sub(r"(新区|区|县)$", "", name)
            if len(short) >= 2:
                names[short] = code
        points = {
            code: GazetteerEntry("district", name, code, *district_points[code])
            for name, code in districts.items()
            if code in district_points
        }
        return cls(entries, names, points)

    # --- matching ----------------------------------------------------------------------
    def match(self, text: str) -> AddressMatch:
        norm = normalize(text)
        reasons: list[str] = []
        district = next((self.districts[n] for n in self.district_names if n in norm), None)
        if district:
            reasons.append(f"district {district}")
        entry: GazetteerEntry | None = None

        for m in _ROAD_NUMBER.finditer(norm.translate(_CN_DIGITS)):
            road = _strip_admin(m["road"], self.district_names)
            hit = self.by_name.get(f"{road}{m['num']}号")
            if hit is not None:
                entry = hit
                reasons.append(f"address point {hit.name}")
                break
        if entry is None:
            name = next(
                (n for n in self.names if n in norm and self.by_name[n].kind != "road"), None
            )
            if name is not None:
                entry = self.by_name[name]
                reasons.append(f"{entry.kind} {entry.name}")
        if entry is None:
            name = next(
                (n for n in self.names if n in norm and self.by_name[n].kind == "road"), None
            )
            if name is not None:
                entry = self.by_name[name]
                reasons.append(f"road {entry.name} (no address point for the number)")
        if entry is None and district is not None:
            entry = self.district_points.get(district)
            if entry is not None:
                reasons.append("only the district is known")
        if entry is None:
            return AddressMatch(text, norm, None, 0.0, district, ("nothing placeable",))

        confidence = BASE_CONFIDENCE[entry.kind]
        if district is not None and district != entry.district:
            confidence *= 0.4
            reasons.append(f"text names district {district}, place is in {entry.district}")
        elif district is not None and entry.kind != "district":
            confidence = min(1.0, confidence + 0.03)
        return AddressMatch(text, norm, entry, round(confidence, 3), entry.district, tuple(reasons))


def _strip_admin(road: str, district_names: list[str]) -> str:
    """'上海市浦东新区世纪大道' -> '世纪大道' (the road regex may swallow what precedes it)."""
    road = _PROVINCE_CITY.sub("", road)
    for name in district_names:
        at = road.find(name)
        if at >= 0:
            road = road[at + len(name) :]
            break
    return re.sub(r"^.*?(街道|镇)", "", road)


def load_gazetteer(pack: CityPack) -> Gazetteer:
    """The pack's gazetteer, with its district names and a point inside each district."""
    districts = {r.name: r.code for r in pack.regions["district"]}
    points = {}
    for r in pack.regions["district"]:
        p = r.geometry.representative_point()
        points[r.code] = (float(p.x), float(p.y))
    if pack.spec.gazetteer is None:
        return Gazetteer([], {}, {})
    return Gazetteer.load(pack.folder / pack.spec.gazetteer, districts, points)
