"""The correlator: canonical events -> incidents (pure, state held in plain objects).

A report joins the nearest open incident of the same category family whose anchor is
within the family's radius and whose reports are within its time window, if its source may
fuse with it; otherwise it opens an incident. A report without a usable place joins an
incident of the same family in the same district only on strong evidence: it names a place
(`places.PlaceWords`) that the incident's reports name, and no other incident does; else it
opens an incident flagged `needs_location`, with merge suggestions for an operator.
Clears follow their device's alarm. The same event id twice changes nothing. State is
indexed by ~1 km cell so that the correlate agent can keep it in a table keyed by cell;
`cells_within` gives every cell a match can come from, across cell borders.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.core.cells import CELL_DEG, cell_of
from citybrain.correlation.places import PlaceWords, alike_forms
from citybrain.correlation.rules import Family, Rules, default_rules
from citybrain.schemas.events import CanonicalEvent

EARTH_M_PER_DEG = 111_320.0
MAX_TEXTS = 20  # report signatures an incident keeps for comparison
MAX_POINTS = 50  # located reports an incident keeps to measure distances to


def event_key(event_id: str) -> int:
    """A 63-bit digest of an event id: what idempotency is checked by, in an eighth of the
    memory of the id itself (a collision needs ~3 billion live ids to become likely)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest()) >> 1


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Equirectangular distance (metres): exact enough below a few km."""
    x = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2)) * EARTH_M_PER_DEG
    y = (lat2 - lat1) * EARTH_M_PER_DEG
    return math.hypot(x, y)


def cells_within(lon: float, lat: float, radius_m: float) -> list[str]:
    """Every ~1 km cell that a point within `radius_m` of (lon, lat) can lie in."""
    rings_lat = math.ceil(radius_m / (CELL_DEG * EARTH_M_PER_DEG))
    rings_lon = math.ceil(radius_m / (CELL_DEG * EARTH_M_PER_DEG * math.cos(math.radians(lat))))
    row, col = math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG)
    return _cells_around(row, col, rings_lat, rings_lon)


@functools.lru_cache(maxsize=1024)
def _cells_around(row: int, col: int, rings_lat: int, rings_lon: int) -> list[str]:
    """The cell names of a block (cached: reports come from the same streets again and
    again). Callers must not change the list. The cache is kept small: 65,536 blocks of up
    to 25 names held 130 MiB, more than a million live correlation keys themselves."""
    return [
        f"c{row + dr}_{col + dc}"
        for dr in range(-rings_lat, rings_lat + 1)
        for dc in range(-rings_lon, rings_lon + 1)
    ]


class _Codes:
    """Small integers for the few names an incident field takes (statuses, families,
    categories, districts): code 0 is None."""

    def __init__(self, bits: int) -> None:
        self.limit = 1 << bits
        self.codes: dict[str, int] = {}
        self.names: list[str | None] = [None]

    def code(self, name: str | None) -> int:
        if name is None:
            return 0
        code = self.codes.get(name)
        if code is None:
            code = len(self.names)
            if code >= self.limit:
                raise ValueError(f"more than {self.limit - 1} distinct values ({name!r})")
            self.codes[name] = code
            self.names.append(sys.intern(name))
        return code

    def name(self, code: int) -> str | None:
        return self.names[code]


_ID, _FIRST, _LAST, _COUNTS, _ATTRS, _SIZES, _BODY = range(7)
#: the bits of data[_ATTRS] that hold an incident's category and district codes (below)
_CATEGORY_BITS = ((1 << 16) - 1) << 32
_DISTRICT_BITS = ((1 << 15) - 1) << 48
_STATUS, _LOCATION, _FAMILY = _Codes(8), _Codes(8), _Codes(12)
_CATEGORY, _DISTRICT = _Codes(16), _Codes(15)


class _Number:
    """A small number packed in an incident's data[_ATTRS]."""

    def __init__(self, shift: int, bits: int) -> None:
        self.shift, self.mask = shift, (1 << bits) - 1

    def __get__(self, inc: Incident, owner: type | None = None) -> int:
        return int(inc.data[_ATTRS] >> self.shift & self.mask)

    def __set__(self, inc: Incident, value: int) -> None:
        if not 0 <= value <= self.mask:
            raise ValueError(f"{value!r} does not fit in {self.mask.bit_length()} bits")
        attrs = inc.data[_ATTRS] & ~(self.mask << self.shift)
        inc.data[_ATTRS] = attrs | value << self.shift


class _Name:
    """A name packed in an incident's data[_ATTRS] as its code."""

    def __init__(self, shift: int, bits: int, codes: _Codes) -> None:
        self.number = _Number(shift, bits)
        self.codes = codes

    def __get__(self, inc: Incident, owner: type | None = None) -> Any:
        return self.codes.name(self.number.__get__(inc))

    def __set__(self, inc: Incident, value: str | None) -> None:
        self.number.__set__(inc, self.codes.code(value))


_U64 = (1 << 64) - 1
_COUNT_BITS = 21
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Incident:
    """An open incident. A correlator holds every incident of a window, a million reports'
    worth in a city's busy hour, so an incident is one array of 64-bit integers (`data`),
    and this class is a view of it, made when one is looked at:

        [id digest, first seen µs, last seen µs, report counts (iot | hotline << 21 |
         open311 << 42), priority/status/location status/family/category/district codes,
         sizes (points | devices << 8 | text slots << 16),
         points (lat << 32 | lon, 1e-7 degrees, offset to be positive)...,
         device keys..., report signatures (length, then two 31-bit named-place hashes a slot)...,
         event keys...]

    The first point is the incident's place (`lon`, `lat`), the others its located reports'
    (up to MAX_POINTS) for the single-link distance. Devices, named places and reports are kept
    as hashes: they are only ever compared."""

    __slots__ = ("data",)

    def __init__(self, data: array[int]) -> None:
        self.data = data

    @classmethod
    def new(
        cls,
        incident_id: str,
        family: str,
        category: str,
        priority: int,
        first_seen: datetime,
        last_seen: datetime,
        lon: float | None,
        lat: float | None,
        district: str | None,
        location_status: str,
        status: str = "open",
        iot_reports: int = 0,
        hotline_reports: int = 0,
        open311_reports: int = 0,
        event_keys: Iterable[int] = (),
        device_keys: Iterable[int] = (),
        texts: Iterable[Iterable[int]] = (),
        points: Iterable[float] = (),
    ) -> Incident:
        flat = list(points)
        if not flat and lon is not None and lat is not None:
            flat = [lon, lat]
        packed = [_pack(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        devices = list(device_keys)
        words = [w for t in texts for w in _signature_words(tuple(t))]
        counts = iot_reports | hotline_reports << _COUNT_BITS | open311_reports << 2 * _COUNT_BITS
        data = array(
            "q",
            [
                _digest_of(incident_id),
                _us(first_seen),
                _us(last_seen),
                counts,
                0,
                len(packed) | len(devices) << 8 | len(words) << 16,
                *packed,
                *devices,
                *words,
                *event_keys,
            ],
        )
        inc = cls(data)
        inc.priority = priority
        inc.status = status
        inc.location_status = location_status
        inc.family = family
        inc.category = category
        inc.district = district
        return inc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Incident) and other.data is self.data

    def __hash__(self) -> int:
        return id(self.data)

    def __repr__(self) -> str:
        return (
            f"Incident({self.incident_id}, {self.category}, {self.status}, "
            f"{self.report_count} reports, {self.cell})"
        )

    # coded fields of data[_ATTRS]
    priority = _Number(0, 4)
    status = _Name(4, 8, _STATUS)
    location_status = _Name(12, 8, _LOCATION)
    family = _Name(20, 12, _FAMILY)
    category = _Name(32, 16, _CATEGORY)
    district = _Name(48, 15, _DISTRICT)

    # --- the rest ------------------------------------------------------------------------------
    @property
    def incident_id(self) -> str:
        return f"inc-{self.data[_ID] & _U64:016x}"

    @property
    def first_seen(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.data[_FIRST])

    @property
    def last_seen(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.data[_LAST])

    def _sizes(self) -> tuple[int, int, int]:
        sizes = self.data[_SIZES]
        return sizes & 0xFF, sizes >> 8 & 0xFF, sizes >> 16 & 0xFFFF

    def _keys_at(self) -> int:
        points, devices, words = self._sizes()
        return _BODY + points + devices + words

    @property
    def lon(self) -> float | None:
        return _unpack(self.data[_BODY])[0] if self.data[_SIZES] & 0xFF else None

    @property
    def lat(self) -> float | None:
        return _unpack(self.data[_BODY])[1] if self.data[_SIZES] & 0xFF else None

    @property
    def points(self) -> list[float]:
        """lon, lat, lon, lat... of the places kept, the incident's own first."""
        n = self.data[_SIZES] & 0xFF
        return [v for p in self.data[_BODY : _BODY + n] for v in _unpack(p)]

    @property
    def device_keys(self) -> tuple[int, ...]:
        points, devices, _ = self._sizes()
        return tuple(self.data[_BODY + points : _BODY + points + devices])

    @property
    def texts(self) -> tuple[tuple[int, ...], ...]:
        """The distinct report signatures: sorted 31-bit hashes of the places they name."""
        points, devices, words = self._sizes()
        data, at, end = self.data, _BODY + points + devices, _BODY + points + devices + words
        out = []
        while at < end:
            length = data[at]
            slots = data[at + 1 : at + 1 + (length + 1) // 2]
            grams = [g for s in slots for g in (s >> 32 & 0xFFFFFFFF, s & 0xFFFFFFFF)]
            out.append(tuple(grams[:length]))
            at += 1 + (length + 1) // 2
        return tuple(out)

    def named(self) -> frozenset[int]:
        """Every place hash its reports' signatures hold (`texts`, flattened)."""
        points, devices, words = self._sizes()
        at = _BODY + points + devices
        end, data, out = at + words, self.data, set()
        while at < end:
            length = data[at]
            for n, slot in enumerate(data[at + 1 : at + 1 + (length + 1) // 2]):
                out.add(slot >> 32 & 0xFFFFFFFF)
                if 2 * n + 1 < length:
                    out.add(slot & 0xFFFFFFFF)
            at += 1 + (length + 1) // 2
        return frozenset(out)

    @property
    def event_keys(self) -> array[int]:
        """Every report's key (`event_key`), in the order they came."""
        return self.data[self._keys_at() :]

    def has_key(self, key: int) -> bool:
        """Whether a report with this key is one of the incident's."""
        try:
            self.data.index(key, self._keys_at())
        except ValueError:
            return False
        return True

    def has_device(self, device_key: int) -> bool:
        points, devices, _ = self._sizes()
        return device_key in self.data[_BODY + points : _BODY + points + devices]

    @property
    def report_count(self) -> int:
        return len(self.data) - self._keys_at()

    def _count(self, n: int) -> int:
        return self.data[_COUNTS] >> n * _COUNT_BITS & ((1 << _COUNT_BITS) - 1)

    @property
    def reports(self) -> dict[str, int]:
        """Report counts by source kind (those with any)."""
        counts = {"iot": self._count(0), "hotline": self._count(1), "open311": self._count(2)}
        return {kind: n for kind, n in counts.items() if n}

    @property
    def cell(self) -> str:
        if not self.data[_SIZES] & 0xFF:
            district = self.district
            return f"d{district}" if district else "unlocated"
        return cell_of(*_unpack(self.data[_BODY]))

    def last_seen_us(self) -> int:
        return self.data[_LAST]

    def in_window(self, at: datetime, window: timedelta) -> bool:
        us, span = _us(at), window // timedelta(microseconds=1)
        return self.data[_FIRST] - span <= us <= self.data[_LAST] + span

    # --- what a report changes ----------------------------------------------------------------
    def take(self, key: int, source_kind: str, at: datetime) -> None:
        """Count a report: its key, its source, its time."""
        data = self.data
        data.append(key)
        n = 0 if source_kind == "iot" else 2 if source_kind == "open311" else 1
        data[_COUNTS] += 1 << n * _COUNT_BITS
        us = _us(at)
        if us < data[_FIRST]:
            data[_FIRST] = us
        if us > data[_LAST]:
            data[_LAST] = us

    def _insert(self, at: int, values: list[int], grow: int) -> None:
        self.data[at:at] = array("q", values)
        self.data[_SIZES] += grow

    def add_point(self, lon: float, lat: float) -> bool:
        """Keep a located report's place (the first becomes the incident's); False when
        MAX_POINTS are kept already."""
        points, _, _ = self._sizes()
        if points >= MAX_POINTS:
            return False
        self._insert(_BODY + points, [_pack(lon, lat)], 1)
        return True

    def put_place(self, lon: float, lat: float) -> None:
        """Make (lon, lat) the incident's place (an operator placed it): first of its kept
        places, the last one dropped when MAX_POINTS are kept."""
        points, _, _ = self._sizes()
        if points >= MAX_POINTS:
            del self.data[_BODY + points - 1]
            self.data[_SIZES] -= 1
        self._insert(_BODY, [_pack(lon, lat)], 1)

    def add_device(self, device_key: int) -> None:
        points, devices, _ = self._sizes()
        if devices < 0xFF and not self.has_device(device_key):
            self._insert(_BODY + points + devices, [device_key], 1 << 8)

    def add_text(self, signature: tuple[int, ...]) -> None:
        """Keep a distinct report signature (up to MAX_TEXTS)."""
        texts = self.texts
        if not signature or len(texts) >= MAX_TEXTS or signature in texts:
            return
        words = _signature_words(signature)
        points, devices, size = self._sizes()
        if size + len(words) <= 0xFFFF:
            self._insert(_BODY + points + devices + size, words, len(words) << 16)

    def nearest_m(self, lon: float, lat: float) -> float:
        """Distance to the nearest place kept (metres); infinite when it has none."""
        n = self.data[_SIZES] & 0xFF
        return min(
            (distance_m(lon, lat, *_unpack(p)) for p in self.data[_BODY : _BODY + n]),
            default=math.inf,
        )


def _us(at: datetime) -> int:
    """Microseconds since the epoch, exactly."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def _pack(lon: float, lat: float) -> int:
    """A place in one 63-bit integer: latitude and longitude in 1e-7 degrees (~1 cm)."""
    return (round(lat * 1e7) + 900_000_000) << 32 | (round(lon * 1e7) + 1_800_000_000)


def _unpack(packed: int) -> tuple[float, float]:
    return ((packed & 0xFFFFFFFF) - 1_800_000_000) / 1e7, ((packed >> 32) - 900_000_000) / 1e7


def _signature_words(signature: tuple[int, ...]) -> list[int]:
    """A signature of 31-bit hashes as slots: its length, then two hashes a slot."""
    padded = [*signature, 0] if len(signature) % 2 else list(signature)
    return [len(signature)] + [padded[i] << 32 | padded[i + 1] for i in range(0, len(padded), 2)]


def _digest_of(incident_id: str) -> int:
    """`inc-<16 hex digits>` as a signed 64-bit integer (the array's type)."""
    value = int(incident_id.removeprefix("inc-"), 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _gap_us(a: array[int], b: array[int]) -> int:
    """The time between two incidents' spans of reports (0 when they overlap)."""
    return max(0, a[_FIRST] - b[_LAST], b[_FIRST] - a[_LAST])


def text_key(word: str) -> int:
    """A named place as a 31-bit hash, the same in every process (signatures are stored)."""
    return zlib.crc32(word.encode()) & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class _Anchor:
    """What scoring needs of a candidate incident, read once however many district-only
    incidents it is scored for."""

    data: array[int]
    digest: int
    district: int  # the code bits of data[_ATTRS] (`_DISTRICT_BITS`)
    category: int  # the same, `_CATEGORY_BITS`
    named: frozenset[int]
    reports: int
    located: bool
    support: float

    @classmethod
    def of(cls, inc: Incident) -> _Anchor:
        reports, located = inc.report_count, inc.location_status == "located"
        # an incident many reports (or sensors) back is where more calls go
        support = 0.5 * min(1.0, (reports - 1) / 4) + 0.5 * located
        attrs = inc.data[_ATTRS]
        return cls(
            inc.data,
            inc.data[_ID],
            attrs & _DISTRICT_BITS,
            attrs & _CATEGORY_BITS,
            inc.named(),
            reports,
            located,
            support,
        )


@dataclass(frozen=True)
class Suggestion:
    """An incident a district-only incident may be the same problem as, for an operator
    to decide: `for_incident` may be merged into `incident_id`."""

    for_incident: str
    incident_id: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    incident: Incident
    opened: bool
    reopened: bool = False
    #: merge suggestions the change made: for a report placed only by its district that
    #: opened its own incident, the incidents it may belong to (most likely first); for any
    #: incident opened, the district-only incidents of its family and district that may be
    #: the same problem; for an incident that took in a report, the district-only incidents
    #: that may belong to it, scored again (a pair's newest score replaces the older one)
    suggestions: tuple[Suggestion, ...] = ()


class Correlator:
    """Holds open incidents; `add` is the one operation."""

    def __init__(
        self,
        rules: Rules | None = None,
        places: PlaceWords | None = None,
        neighbours: dict[str, set[str]] | None = None,
    ) -> None:
        """`places`: the named places of a caller's address (the city's register and
        gazetteer, and numbered places by their form)."""
        self.rules = rules or default_rules()
        # a report's address is read once, however many candidates it is compared with
        self.places = functools.lru_cache(maxsize=1024)(places or PlaceWords())
        #: district -> the districts it borders (a caller at a border may name either)
        self.neighbours = neighbours or {}
        # incidents' arrays (`Incident.data`), by cell and by (district, family)
        self.by_cell: dict[str, list[array[int]]] = {}
        self.by_district: dict[tuple[str, str], list[array[int]]] = {}
        self.unplaced: dict[tuple[str, str], list[array[int]]] = {}  # the same, district-only
        # event keys of incidents that changed cell (a repeated report looks for its incident
        # where it was when the report joined it); every other key is found in the candidates
        self.moved: set[int] = set()
        self.vacated: set[str] = set()  # cells an incident moved out of (callers persist them)
        #: each district-only incident's best suggestions so far, by id digest: [(score,
        #: candidate digest)], best first, at most `rules.suggestions` (a rescore that would
        #: not enter them writes nothing)
        self.best: dict[int, list[tuple[float, int]]] = {}

    # --- indexes ---------------------------------------------------------------------------
    def hold(self, inc: Incident, cell: str | None = None) -> None:
        """Index an incident by cell, and by district while it has one."""
        self.by_cell.setdefault(cell or inc.cell, []).append(inc.data)
        district = inc.district
        if district is not None:
            key = (district, inc.family)
            self.by_district.setdefault(key, []).append(inc.data)
            if inc.location_status != "located":
                self.unplaced.setdefault(key, []).append(inc.data)

    def _release(self, inc: Incident) -> None:
        if self.moved:
            self.moved.difference_update(inc.event_keys)
        self.best.pop(inc.data[_ID], None)
        district = inc.district
        if district is not None:
            key = (district, inc.family)
            for index in (self.by_district, self.unplaced):
                members = index.get(key)
                if members is not None:
                    _discard(members, inc.data)
                    if not members:
                        del index[key]

    def incidents(self) -> Iterator[Incident]:
        """Every incident held."""
        for members in self.by_cell.values():
            for data in members:
                yield Incident(data)

    def incidents_in(self, cell: str) -> list[Incident]:
        """The incidents held in a cell (what the correlate agent stores under its key)."""
        return [Incident(data) for data in self.by_cell.get(cell, ())]

    # --- lookup ----------------------------------------------------------------------------
    def holds(self, key: int, e: CanonicalEvent, family: Family) -> bool:
        """Whether a held incident has this report already. Idempotency without a global
        index: a repeated report has the same place, family and time as the first time, so
        its incident is among the same candidates (window and sources aside)."""
        if key in self.moved:
            return True
        loc = e.location
        cells = self._search_cells(e, family)
        if cells is not None:
            code = _FAMILY.codes.get(family.name)
            if code is None:
                return False  # no incident of the family was ever opened
            by_cell = self.by_cell
            for cell in cells:
                for data in by_cell.get(cell, ()):
                    if (data[_ATTRS] >> 20) & 0xFFF == code and Incident(data).has_key(key):
                        return True
            return False
        pool = [
            Incident(data)
            for data in (
                *(self.by_district.get((loc.district, family.name), ()) if loc.district else ()),
                *self.by_cell.get("unlocated", ()),
            )
        ]
        return any(inc.has_key(key) for inc in pool if inc.family == family.name)

    @staticmethod
    def _by_device(e: CanonicalEvent, family: Family) -> bool:
        return family.name == "device" or e.kind in ("clear", "device_online")

    def _search_cells(self, e: CanonicalEvent, family: Family) -> list[str] | None:
        """The cells a report's incident can be held in; None for a report without a usable
        place (its candidates are found by district)."""
        loc = e.location
        placed = loc.lon is not None and loc.lat is not None
        if self._by_device(e, family):
            if placed:
                return cells_within(loc.lon, loc.lat, 50)  # type: ignore[arg-type]
            return [f"d{loc.district}" if loc.district else "unlocated"]
        if placed and loc.status != "needs_location":
            # an incident is indexed by its first place and its reports spread up to about
            # two radii from it: look that far
            return cells_within(loc.lon, loc.lat, 3 * family.radius_m)  # type: ignore[arg-type]
        return None

    def _candidates(self, cells: Iterable[str]) -> Iterable[Incident]:
        for cell in cells:
            for data in self.by_cell.get(cell, ()):
                yield Incident(data)

    def _in_window(self, inc: Incident, at: datetime, family: Family) -> bool:
        return inc.in_window(at, family.window_td)

    def _match(self, e: CanonicalEvent, family: Family) -> Incident | None:
        loc = e.location
        cells = self._search_cells(e, family)
        if self._by_device(e, family):
            device = loc.device_id
            if device is None or cells is None:
                return None
            device_key = event_key(device)
            for inc in self._candidates(cells):
                if (
                    inc.has_device(device_key)
                    and inc.family == family.name
                    and self._in_window(inc, e.observed_at, family)
                ):
                    return inc
            return None
        if cells is not None:
            # measure to the nearest report of each candidate
            assert loc.lon is not None and loc.lat is not None
            if e.source_kind in family.sources:
                forms = self._forms(e)
                best = self._nearest(cells, loc.lon, loc.lat, _us(e.observed_at), family, forms)
                if best is not None:
                    return best
            # an incident opened by reports placed only by their district takes its place
            # from the first located report that fits it
            if loc.district is None or e.source_kind not in family.sources:
                return None
            return self._best_by_text(e, family, located=False)
        # No usable place. A wrong merge hides a problem, so a report placed only by its
        # district joins an incident of the family open in that district in the window only
        # when that incident is the only one and what the callers say about the place agrees,
        # or when one incident is clearly the most alike; otherwise it opens its own
        # incident, flagged needs_location, for an operator to place.
        if loc.district is None:
            return None
        return self._best_by_text(e, family, located=None)

    def _nearest(
        self,
        cells: list[str],
        lon: float,
        lat: float,
        at_us: int,
        family: Family,
        forms: frozenset[int] = frozenset(),
    ) -> Incident | None:
        """The incident of the family, in the window, with a kept place nearest to (lon,
        lat) and within the radius. The hot loop of correlation: it reads the arrays
        directly and rejects places outside the radius's box before measuring."""
        span = family.window_us
        code = _FAMILY.codes.get(family.name)
        if code is None:
            return None  # no incident of this family was ever opened
        radius = family.radius_m
        box_lat = radius / EARTH_M_PER_DEG * 1e7 * 1.01 + 1  # the radius in 1e-7 degrees
        box_lon = box_lat / max(math.cos(math.radians(lat)), 1e-6)
        q_lat = round(lat * 1e7) + 900_000_000
        q_lon = round(lon * 1e7) + 1_800_000_000
        best_d, best = math.inf, None
        by_cell = self.by_cell
        for cell in cells:
            for data in by_cell.get(cell, ()):
                if data[_FIRST] - span > at_us or at_us > data[_LAST] + span:
                    continue
                if (data[_ATTRS] >> 20) & 0xFFF != code:
                    continue
                n = data[_SIZES] & 0xFF
                for packed in data[_BODY : _BODY + n]:
                    if abs((packed >> 32) - q_lat) > box_lat:
                        continue
                    if abs((packed & 0xFFFFFFFF) - q_lon) > box_lon:
                        continue
                    d = distance_m(lon, lat, *_unpack(packed))
                    if d <= radius and d < best_d:
                        if forms and self._names_other_places(forms, data):
                            break  # its callers name another place: another problem
                        best_d, best = d, data
        return Incident(best) if best is not None else None

    def _signature(self, e: CanonicalEvent) -> frozenset[int]:
        """The places the caller names, hashed: each name exactly ("=", what ties a coarse
        report to the other reports of its problem) and in its alike forms ("~", what tells
        that two callers name different places)."""
        words = self.places(e.location.address)
        exact = {text_key("=" + w) for w in words}
        return frozenset(exact | {text_key("~" + f) for w in words for f in alike_forms(w)})

    def _forms(self, e: CanonicalEvent) -> frozenset[int]:
        words = self.places(e.location.address)
        return frozenset(text_key("~" + f) for w in words for f in alike_forms(w))

    @staticmethod
    def _names_other_places(forms: frozenset[int], data: array[int]) -> bool:
        """Whether an incident's reports name places and none is alike one of `forms`."""
        named = {w for t in Incident(data).texts for w in t}
        return bool(named) and not forms & named

    def _district_candidates(
        self, e: CanonicalEvent, family: Family, located: bool | None
    ) -> list[Incident]:
        if e.location.district is None:
            return []
        index = self.unplaced if located is False else self.by_district
        return [
            inc
            for inc in map(Incident, index.get((e.location.district, family.name), ()))
            if (located is None or (inc.location_status == "located") == located)
            and self._in_window(inc, e.observed_at, family)
        ]

    def _names_shared(self, e: CanonicalEvent, inc: Incident) -> int:
        """How many of the places a report names (exactly) a report of the incident names."""
        exact = {text_key("=" + w) for w in self.places(e.location.address)}
        named = {w for t in inc.texts for w in t}
        return len(exact & named)

    def _best_by_text(
        self, e: CanonicalEvent, family: Family, located: bool | None
    ) -> Incident | None:
        """The one incident of the family in the district whose reports name a place this
        report names; none when no incident does, or when several do."""
        if not self.places(e.location.address):
            return None
        sharing = [
            inc
            for inc in self._district_candidates(e, family, located)
            if self._names_shared(e, inc)
        ]
        return sharing[0] if len(sharing) == 1 else None

    def suggest(self, e: CanonicalEvent, family: Family, opened: Incident) -> list[Suggestion]:
        """For an incident `e` opened: if it is placed only by its district, the open
        incidents of its family in its district and the districts it borders that it may
        belong to (with no district: those naming a place it names), the best few; and the
        district-only incidents there that may belong to it (`rescore`). Only district-only
        incidents are looked at for the latter, so a located report costs no more than the
        district-only incidents open around it."""
        forward: list[Suggestion] = []
        if opened.location_status == "needs_location":
            window = family.window_us
            own = opened.data[_ID]
            named = opened.named()
            scored = sorted(
                (
                    (-self._score(opened, named, _Anchor.of(inc), window), inc.incident_id, inc)
                    for inc in self._suggestion_candidates(e, family)
                    if inc.data[_ID] != own
                ),
                key=lambda t: (t[0], t[1]),
            )[: self.rules.suggestions]
            forward = [self._suggestion(opened, inc, family) for _, _, inc in scored]
            self.best[own] = [(-neg, inc.data[_ID]) for neg, _, inc in scored]
        return forward + self.rescore(opened, family)

    def _suggestion_candidates(self, e: CanonicalEvent, family: Family) -> list[Incident]:
        """The incidents of the family in the window a district-only report may belong to:
        in its district and those bordering it, or with no district, those naming a place
        it names."""
        if e.location.district is not None:
            candidates = self._district_candidates(e, family, None)
            window = family.window_td
            for district in sorted(self.neighbours.get(e.location.district, ())):
                candidates += [
                    inc
                    for inc in map(Incident, self.by_district.get((district, family.name), ()))
                    if inc.in_window(e.observed_at, window)
                ]
            return candidates
        if not self.places(e.location.address):
            return []
        window = family.window_td
        return [
            inc
            for (_, name), members in self.by_district.items()
            if name == family.name
            for inc in map(Incident, members)
            if inc.in_window(e.observed_at, window) and self._names_shared(e, inc)
        ]

    def rescore(self, grown: Incident, family: Family) -> list[Suggestion]:
        """An incident took in a report: how it now stands as the incident each district-only
        incident of its family nearby may belong to (more reports, a place found, a place
        named that a district-only caller named). Only where it enters, or stays in, that
        incident's best `rules.suggestions` is a suggestion made (the stored one updated):
        a report in a crowded district costs a few rows, not one per district-only incident
        around it."""
        district = grown.district
        if district is None or self.rules.suggestions == 0:
            return []
        window = family.window_us
        anchor = _Anchor.of(grown)
        out = []
        for d in (district, *sorted(self.neighbours.get(district, ()))):
            for data in self.unplaced.get((d, family.name), ()):
                if data is grown.data or _gap_us(data, grown.data) > window:
                    continue
                subject = Incident(data)
                named = subject.named()
                score = self._score(subject, named, anchor, window)
                if self._ranks(data[_ID], anchor.digest, score):
                    out.append(self._suggestion(subject, grown, family, anchor, named))
        return out

    def _ranks(self, subject: int, candidate: int, score: float) -> bool:
        """Whether `candidate`, scored `score`, is among `subject`'s best suggestions now
        (kept up to date here)."""
        before = self.best.get(subject, [])
        best = [b for b in before if b[1] != candidate]
        if len(best) == len(before) >= self.rules.suggestions and score <= best[-1][0]:
            return False  # not there, and no better than the last of a full list
        best.append((score, candidate))
        best.sort(key=lambda b: -b[0])
        self.best[subject] = best[: self.rules.suggestions]
        return True

    @staticmethod
    def _score(subject: Incident, named: frozenset[int], anchor: _Anchor, window: int) -> float:
        """`_suggestion`'s score alone: the district-only `subject` (naming `named`) as the
        problem of `anchor`, in 0..1."""
        gap = _gap_us(subject.data, anchor.data)
        closeness = max(0.0, 1.0 - gap / window) if window else 0.0
        shared = bool(named & anchor.named)
        attrs = subject.data[_ATTRS]
        same_category = anchor.category == attrs & _CATEGORY_BITS
        nearness = 1.0 if anchor.district == attrs & _DISTRICT_BITS else 0.75
        score = 0.45 * shared + 0.25 * closeness + 0.15 * same_category + 0.15 * anchor.support
        return round(score * nearness, 3)

    def _suggestion(
        self,
        subject: Incident,
        candidate: Incident,
        family: Family,
        anchor: _Anchor | None = None,
        named: frozenset[int] | None = None,
    ) -> Suggestion:
        """How likely the district-only incident `subject` is the problem of `candidate`,
        and why: the places their reports name alike, the time between them, the category,
        the district, and how many reports (and a place) back the candidate, as a score in
        0..1 (`_score`). `anchor` and `named`: the candidate's and the subject's, when the
        caller has read them already."""
        window = family.window_us
        anchor = anchor or _Anchor.of(candidate)
        named = subject.named() if named is None else named
        gap = _gap_us(subject.data, candidate.data)
        reasons = [f"same family {family.name}"]
        # a caller names the district they stand in; one across a border is less likely
        if candidate.district == subject.district:
            reasons.append(f"same district {subject.district}")
        else:
            reasons.append(f"neighbouring district {candidate.district}")
        reasons.append(f"{round(gap / 60e6)} min apart")
        # an incident many reports (or sensors) back is where more calls go; one that is
        # itself a lone district-only call is the weakest anchor
        reasons.append(f"{anchor.reports} report(s)" + (", located" if anchor.located else ""))
        if candidate.category == subject.category:
            reasons.append(f"same category {subject.category}")
        if named & anchor.named:
            reasons.append("a named place in common")
        score = self._score(subject, named, anchor, window)
        return Suggestion(subject.incident_id, candidate.incident_id, score, tuple(reasons))

    # --- the operation -----------------------------------------------------------------------
    def add(self, e: CanonicalEvent) -> Change | None:
        """Attach a report to an incident or open one; None for a repeated event id or a
        clear that follows no alarm."""
        key = event_key(e.event_id)
        family = self.rules.family_of(e.category)
        if self.holds(key, e, family):
            return None
        inc = self._match(e, family)
        loc = e.location
        if inc is None:
            if e.kind in ("clear", "device_online"):
                return None  # the same clear again finds no alarm again: nothing to remember
            inc = Incident.new(
                incident_id="inc-" + hashlib.sha1(e.event_id.encode()).hexdigest()[:16],  # noqa: S324
                family=family.name,
                category=e.category,
                priority=e.severity,
                first_seen=e.observed_at,
                last_seen=e.observed_at,
                lon=loc.lon if loc.status != "needs_location" else None,
                lat=loc.lat if loc.status != "needs_location" else None,
                district=loc.district,
                location_status=loc.status,
            )
            self.hold(inc)
            opened, reopened = True, False
        else:
            opened = False
            reopened = inc.status in ("resolved", "closed") and e.kind != "clear"
            if reopened:
                inc.status = "reopened"
        self._absorb(inc, e, key, placed_by_it=opened)
        if opened:
            suggestions = tuple(self.suggest(e, family, inc))
        else:
            suggestions = tuple(self.rescore(inc, family))
        return Change(inc, opened, reopened, suggestions)

    def _absorb(self, inc: Incident, e: CanonicalEvent, key: int, placed_by_it: bool) -> None:
        """Take a report into an incident (`placed_by_it`: the incident was just opened at
        this report's place, which it holds already)."""
        inc.take(key, e.source_kind, e.observed_at)
        if e.severity < inc.priority:
            inc.priority = e.severity
        if e.location.device_id:
            inc.add_device(event_key(e.location.device_id))
        inc.add_text(tuple(sorted(self._signature(e))))
        placed = e.location.lon is not None and e.location.status != "needs_location"
        finds_place = placed and inc.lon is None
        moves = finds_place or (inc.district is None and e.location.district is not None)
        old = inc.cell  # where it is held now
        if placed and not placed_by_it:
            inc.add_point(e.location.lon, e.location.lat)  # type: ignore[arg-type]
        if moves:
            # it found its place (or its district): index it again
            self._unindex(inc, old)
            if finds_place:
                inc.location_status = "located"
            inc.district = inc.district or e.location.district
            self._reindex(inc, old)

    def find(self, incident_id: str) -> Incident | None:
        """A held incident by id (None for one not held, or an id this stage never makes)."""
        try:
            digest = _digest_of(incident_id)
        except ValueError:
            return None
        for members in self.by_cell.values():
            for data in members:
                if data[_ID] == digest:
                    return Incident(data)
        return None

    def merge(self, source_id: str, target_id: str) -> Change | None:
        """An operator accepted a suggestion: the source incident's reports join the
        target, as if each had joined it when it came (counts, times, priority, devices,
        named places, places, report keys in their order); the source is no longer held.
        None when either is not held."""
        source, target = self.find(source_id), self.find(target_id)
        if source is None or target is None or source == target:
            return None
        self._remove(source)
        data, counts = target.data, source.data[_COUNTS]
        data[_COUNTS] += counts
        data[_FIRST] = min(data[_FIRST], source.data[_FIRST])
        data[_LAST] = max(data[_LAST], source.data[_LAST])
        target.priority = min(target.priority, source.priority)
        for device in source.device_keys:
            target.add_device(device)
        for signature in source.texts:
            target.add_text(signature)
        old = target.cell
        points = source.points
        for i in range(0, len(points), 2):
            target.add_point(points[i], points[i + 1])
        data.extend(source.event_keys)
        if target.cell != old or (target.lon is not None and target.location_status != "located"):
            self._unindex(target, old)
            if target.lon is not None:
                target.location_status = "located"
            self._reindex(target, old)
        return Change(target, opened=False)

    def place(
        self, incident_id: str, lon: float, lat: float, district: str | None
    ) -> Change | None:
        """An operator placed an incident (a point on the map, a register entry): it is
        located there from now on, in that point's district, and found by the reports that
        come near it. None when it is not held."""
        inc = self.find(incident_id)
        if inc is None:
            return None
        old = inc.cell
        self._unindex(inc, old)
        inc.put_place(lon, lat)
        inc.location_status = "located"
        inc.district = district or inc.district
        self._reindex(inc, old)
        return Change(inc, opened=False)

    def split(
        self,
        incident_id: str,
        kept: Sequence[CanonicalEvent],
        moved: Sequence[CanonicalEvent],
        new_id: str,
    ) -> tuple[Incident, Incident] | None:
        """An operator split an incident: `moved` (some of its reports) leave it for a new
        incident `new_id`; it keeps `kept`. Both are built again from their reports, as if
        each report had come to them alone (counts, times, priority, devices, named places,
        places); the incident keeps its status and, when none of its remaining reports has
        a place, the place it had. None when it is not held."""
        inc = self.find(incident_id)
        if inc is None or not kept or not moved:
            return None
        old_place = (inc.lon, inc.lat) if inc.location_status == "located" else None
        status, district = inc.status, inc.district
        self._remove(inc)
        left = self._rebuild(incident_id, kept)
        left.status = status
        if left.location_status != "located" and old_place and old_place[0] is not None:
            self.place(incident_id, old_place[0], old_place[1], district)  # type: ignore[arg-type]
            left = self.find(incident_id) or left
        return left, self._rebuild(new_id, moved)

    def _rebuild(self, incident_id: str, events: Sequence[CanonicalEvent]) -> Incident:
        """An incident made of these reports alone, held."""
        ordered = sorted(events, key=lambda e: e.observed_at)
        first = ordered[0]
        family = self.rules.family_of(first.category)
        loc = first.location
        located = loc.status != "needs_location" and loc.lon is not None
        inc = Incident.new(
            incident_id=incident_id,
            family=family.name,
            category=first.category,
            priority=first.severity,
            first_seen=first.observed_at,
            last_seen=first.observed_at,
            lon=loc.lon if located else None,
            lat=loc.lat if located else None,
            district=loc.district,
            location_status=loc.status,
        )
        self.hold(inc)
        for n, e in enumerate(ordered):
            self._absorb(inc, e, event_key(e.event_id), placed_by_it=n == 0)
        return inc

    def _unindex(self, inc: Incident, cell: str) -> None:
        """Take an incident out of the indexes before its place or district changes (`cell`:
        where it is held now)."""
        _discard(self.by_cell[cell], inc.data)
        if not self.by_cell[cell]:
            del self.by_cell[cell]
        self._release(inc)

    def _reindex(self, inc: Incident, old: str) -> None:
        """Index an incident again after `_unindex`; a report that repeats one of its keys
        finds it where it was (`moved`), and the cell it left is persisted (`vacated`)."""
        if inc.cell != old:
            self.vacated.add(old)
            self.moved.update(inc.event_keys)
        self.hold(inc)

    def _remove(self, inc: Incident) -> None:
        """Let an incident go (merged into another, or built again by a split)."""
        cell = inc.cell
        self._unindex(inc, cell)
        self.vacated.add(cell)

    def set_status(self, incident_id: str, status: str) -> Incident | None:
        """Record an incident's status from the dispatch stage (a resolved incident that
        gets new reports within its window is reopened); None if it is not held. Raises
        ValueError for an id this stage never makes."""
        _digest_of(incident_id)
        inc = self.find(incident_id)
        if inc is not None:
            inc.status = status
        return inc

    def expire(self, now: datetime) -> int:
        """Forget incidents quiet for twice their window (keeps the state bounded)."""
        dropped = 0
        now_us = _us(now)
        for cell in list(self.by_cell):
            keep = []
            for data in self.by_cell[cell]:
                inc = Incident(data)
                family = self.rules.family_of(inc.category)
                if now_us - data[_LAST] > 2 * family.window_s * 1_000_000:
                    self._release(inc)
                    dropped += 1
                else:
                    keep.append(data)
            if keep:
                self.by_cell[cell] = keep
            else:
                del self.by_cell[cell]
        return dropped


def _discard(members: list[array[int]], data: array[int]) -> None:
    """Remove an incident's array from an index list, by identity (arrays of different
    incidents never compare equal, but comparing contents is needless work)."""
    for i, held in enumerate(members):
        if held is data:
            del members[i]
            return
