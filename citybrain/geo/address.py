"""Chinese address matching for hotline tickets: text -> point + confidence (pure).

Steps: normalise (NFKC: full-width digits and letters become half-width; Chinese numerals
before 号/栋/单元 become digits; 号楼/幢/座 become 栋; spaces and punctuation go), find the
district the text names, then every place name of the city the text contains, in one pass
of an Aho-Corasick automaton over the register's and gazetteer's names (so the cost does not
grow with the register). The most specific place wins: an address point (road + number), a
building of an estate, the crossing of two roads (computed from their lines), a landmark,
an estate, a road, the district alone. The confidence says how specific the match is and
drops when the text names another district than the place's, or when the name is in several
districts and the text does not say which: below the threshold the caller stores the event
as `needs_location` and an operator places it. The matcher may decline; it must not mislead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import ahocorasick
import yaml
from shapely.geometry import LineString, Point

from citybrain.config_errors import ConfigError
from citybrain.geo.crs import to_wgs84
from citybrain.geo.pack import CityPack

Kind = Literal["address", "building", "poi", "community", "road", "intersection", "district"]

#: Confidence of a match by kind, before consistency checks.
BASE_CONFIDENCE: dict[str, float] = {
    "address": 0.95,
    "building": 0.93,
    "intersection": 0.88,
    "poi": 0.85,
    "community": 0.8,
    "road": 0.55,
    "district": 0.25,
}
#: Which kind wins when a text names several places (most specific first).
SPECIFICITY = ("address", "building", "intersection", "poi", "community", "road", "district")
DEFAULT_THRESHOLD = 0.5
#: A name found in several districts, the text naming none of them: below the threshold.
AMBIGUOUS_FACTOR = 0.5
#: The text names another district than the place's: below the threshold.
CONTRADICTION_FACTOR = 0.4

_NOISE = re.compile(r"[\s,，。;；:：!！?？、（）()\[\]【】\"'“”‘’<>《》\-—_~·/\\]+")
_CN_NUMERAL = re.compile(r"[〇零一二两三四五六七八九十百千]+(?=号|栋|幢|座|单元|楼|弄|室|层|户)")
_BUILDING = re.compile(r"(\d+)(?:号楼|号栋|幢|座|栋)")
_ROAD_NUMBER = re.compile(
    r"(?P<road>[\u4e00-\u9fa5A-Za-z0-9]{1,12}?(?:路|街|大道|公路|巷|弄|道))(?P<num>\d+)(?:号|栋)"
)
_CROSSING = re.compile(r"交叉|路口|交口|交界|十字|交汇|丁字|相交|口子")
_ROAD_SUFFIX = ("路", "街", "大道", "公路", "巷", "道")
_ESTATE_SUFFIX = re.compile(r"(小区|花园|新村|家园|公寓|苑|城)$")
_DIGIT_OF = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_DIGIT_OF |= {"六": 6, "七": 7, "八": 8, "九": 9}
_UNIT_OF = {"十": 10, "百": 100, "千": 1000}


def chinese_number(text: str) -> str:
    """'一二六六' -> '1266', '十二' -> '12', '二十三' -> '23', '一百零五' -> '105'."""
    if not any(c in _UNIT_OF for c in text):
        return "".join(str(_DIGIT_OF[c]) for c in text if c in _DIGIT_OF)
    total, digit = 0, 0
    for c in text:
        if c in _DIGIT_OF:
            digit = _DIGIT_OF[c]
        elif c in _UNIT_OF:
            total += (digit or 1) * _UNIT_OF[c]
            digit = 0
    return str(total + digit)


def normalize(text: str) -> str:
    """NFKC (full-width digits become half-width), Latin letters in upper case, Chinese
    numerals before 号/栋/单元 as digits, 3号楼/3幢/3座 as 3栋, no spaces or punctuation."""
    s = unicodedata.normalize("NFKC", text).upper()  # m区 and M区 are one
    s = _NOISE.sub("", s)
    s = _CN_NUMERAL.sub(lambda m: chinese_number(m.group(0)), s)
    return _BUILDING.sub(r"\1栋", s)


@dataclass(frozen=True)
class GazetteerEntry:
    kind: Kind
    name: str
    district: str
    lon: float  # WGS-84 (a road's: a point on its line)
    lat: float
    aliases: tuple[str, ...] = ()
    line: tuple[tuple[float, float], ...] = ()  # a road's course, WGS-84

    def lookup_keys(self) -> list[str]:
        """The normalised names callers may use for it."""
        names = [self.name, *self.aliases]
        if self.kind in ("community", "building"):
            estate = self.name if self.kind == "community" else ""
            if estate:
                short = _ESTATE_SUFFIX.sub("", estate)
                names += [f"{estate}小区"] if not estate.endswith("小区") else []
                names += [short] if len(short) >= 3 else []
        keys = []
        for name in names:
            key = normalize(name)
            if len(key) >= 2 and key not in keys:
                keys.append(key)
        return keys


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


@dataclass
class Gazetteer:
    """A city's places indexed for matching: names and aliases in one automaton."""

    entries: list[GazetteerEntry]
    districts: dict[str, str]  # district name -> code (names and short forms)
    district_points: dict[str, GazetteerEntry] = field(default_factory=dict)
    #: the city's and province's names, from the pack (`CityPack.spec.admin_names`)
    admin_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = "|".join(re.escape(normalize(n)) for n in self.admin_names if normalize(n))
        self.admin_prefix = re.compile(rf"^(?:中国)?(?:(?:{names})(?:市辖区)?)*" if names else "^$")
        self.by_key: dict[str, list[GazetteerEntry]] = {}
        for e in self.entries:
            for key in e.lookup_keys():
                found = self.by_key.setdefault(key, [])
                if e not in found:
                    found.append(e)
        self.automaton = ahocorasick.Automaton()
        for key in self.by_key:
            self.automaton.add_word(key, key)
        if self.by_key:
            self.automaton.make_automaton()
        self.district_names = sorted(self.districts, key=len, reverse=True)

    @property
    def full_district_names(self) -> list[str]:
        """The districts' full names (浦东新区, not the short form 浦东)."""
        return [name for name in self.districts if name.endswith(("区", "县", "市", "旗"))]

    @classmethod
    def load(
        cls,
        path: Path,
        districts: dict[str, str],
        district_points: dict[str, tuple[float, float]],
        admin_names: list[str] | None = None,
        more: Iterable[GazetteerEntry] = (),
    ) -> Gazetteer:
        """Read a gazetteer YAML (entries in its declared CRS, converted to WGS-84), plus
        `more` entries (an address register)."""
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        crs = doc.get("crs", "WGS-84")
        raw = doc.get("entries") or []
        lon, lat = to_wgs84([e["lon"] for e in raw], [e["lat"] for e in raw], crs)
        entries = []
        for number, (e, x, y) in enumerate(zip(raw, lon, lat, strict=True)):
            if e.get("kind") not in BASE_CONFIDENCE or e.get("kind") in (
                "district",
                "intersection",
            ):
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
        return cls.of(entries + list(more), districts, district_points, admin_names)

    @classmethod
    def of(
        cls,
        entries: Sequence[GazetteerEntry],
        districts: dict[str, str],
        district_points: dict[str, tuple[float, float]],
        admin_names: list[str] | None = None,
    ) -> Gazetteer:
        """A gazetteer of these entries, with the districts' names and short forms."""
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
        return cls(list(entries), names, points, list(admin_names or []))

    # --- matching ----------------------------------------------------------------------
    def strip_admin(self, road: str) -> str:
        """'上海市浦东新区世纪大道' -> '世纪大道' (the road regex may swallow what precedes it);
        the city's names come from its pack."""
        road = self.admin_prefix.sub("", road)
        for name in self.district_names:
            at = road.find(name)
            if at >= 0:
                road = road[at + len(name) :]
                break
        return re.sub(r"^.*?(街道|镇)", "", road)

    def hits(self, norm: str) -> list[tuple[int, int, str]]:
        """(start, end, key) of every name in the text not inside a longer one."""
        if not self.by_key:
            return []
        found = [(end - len(key) + 1, end + 1, key) for end, key in self.automaton.iter(norm)]
        found.sort(key=lambda h: (h[0], -(h[1] - h[0])))
        kept: list[tuple[int, int, str]] = []
        for start, end, key in found:
            if any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in kept):
                continue
            kept = [k for k in kept if not (start <= k[0] and k[1] <= end)]
            kept.append((start, end, key))
        return kept

    def match(self, text: str) -> AddressMatch:
        norm = normalize(text)
        reasons: list[str] = []
        district = next((self.districts[n] for n in self.district_names if n in norm), None)
        if district:
            reasons.append(f"district {district}")
        candidates: list[tuple[str, list[GazetteerEntry], str]] = []  # kind, entries, why
        hits = self.hits(norm)
        for _, _, key in hits:
            by_kind: dict[str, list[GazetteerEntry]] = {}
            for e in self.by_key[key]:
                by_kind.setdefault(e.kind, []).append(e)
            for kind, entries in by_kind.items():
                candidates.append((kind, entries, f"{kind} {entries[0].name}"))
        for m in _ROAD_NUMBER.finditer(norm):  # road + number, said as 号 or 号楼
            road = self.strip_admin(m["road"])
            points = [e for e in self.by_key.get(f"{road}{m['num']}号", []) if e.kind == "address"]
            roads = [e for e in self.by_key.get(road, []) if e.kind == "road"]
            if points:
                candidates.append(("address", points, f"address point {points[0].name}"))
            elif roads:
                why = f"road {road} (no address point for number {m['num']})"
                candidates.append(("road", roads, why))
        crossing = self._crossing(norm, hits, district)
        if crossing is not None:
            candidates.append(("intersection", [crossing], f"intersection {crossing.name}"))
        if not candidates and district is not None and district in self.district_points:
            candidates.append(
                ("district", [self.district_points[district]], "only the district is known")
            )
        if not candidates:
            return AddressMatch(text, norm, None, 0.0, district, ("nothing placeable",))

        kind, entries, why = min(
            candidates, key=lambda c: (SPECIFICITY.index(c[0]), -len(c[1][0].name))
        )
        reasons.append(why)
        confidence = BASE_CONFIDENCE[kind]
        in_said = [e for e in entries if e.district == district]
        if in_said:
            entry = in_said[0]
            if kind != "district":
                confidence = min(1.0, confidence + 0.03)
        else:
            entry = entries[0]
            places = sorted({e.district for e in entries})
            if district is not None:
                confidence *= CONTRADICTION_FACTOR
                reasons.append(f"text names district {district}, place is in {','.join(places)}")
            elif len(places) > 1:
                confidence *= AMBIGUOUS_FACTOR
                reasons.append(f"{entry.name} is in {len(places)} districts; the text names none")
        return AddressMatch(text, norm, entry, round(confidence, 3), entry.district, tuple(reasons))

    def _crossing(
        self, norm: str, hits: list[tuple[int, int, str]], district: str | None
    ) -> GazetteerEntry | None:
        """Where two roads the text names cross, when it says they do and their lines meet."""
        if not _CROSSING.search(norm):
            return None
        roads = [key for _, _, key in hits if any(e.kind == "road" for e in self.by_key[key])]
        roads = list(dict.fromkeys(roads))
        if len(roads) < 2:
            return None
        first = [e for e in self.by_key[roads[0]] if e.kind == "road" and len(e.line) >= 2]
        second = [e for e in self.by_key[roads[1]] if e.kind == "road" and len(e.line) >= 2]
        meets: list[GazetteerEntry] = []
        for a in first:
            for b in second:
                where = LineString(a.line).intersection(LineString(b.line))
                if where.is_empty:
                    continue
                point = where if isinstance(where, Point) else where.representative_point()
                home = a.district if a.district == b.district else (district or a.district)
                meets.append(
                    GazetteerEntry(
                        "intersection",
                        f"{a.name}与{b.name}交叉口",
                        home,
                        float(point.x),
                        float(point.y),
                    )
                )
        if not meets:
            return None
        in_said = [m for m in meets if m.district == district]
        return (in_said or meets)[0] if len({m.district for m in meets}) == 1 or in_said else None


def load_gazetteer(pack: CityPack, more: Iterable[GazetteerEntry] = ()) -> Gazetteer:
    """The pack's gazetteer and address register (and `more` entries: the register stored
    in the database), with its district names and a point inside each district."""
    from citybrain.geo.register import read_register

    districts = {r.name: r.code for r in pack.regions["district"]}
    points = {}
    for r in pack.regions["district"]:
        p = r.geometry.representative_point()
        points[r.code] = (float(p.x), float(p.y))
    register: list[GazetteerEntry] = []
    if pack.spec.addresses is not None:
        register = read_register(
            pack.folder / pack.spec.addresses.file, pack.spec.addresses.crs, set(points)
        )
    register += list(more)
    if pack.spec.gazetteer is None:
        return Gazetteer.of(register, districts, points, pack.spec.admin_names())
    return Gazetteer.load(
        pack.folder / pack.spec.gazetteer, districts, points, pack.spec.admin_names(), register
    )
