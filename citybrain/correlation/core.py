"""The correlator: canonical events -> incidents (pure, state held in plain objects).

A report joins the nearest open incident of the same category family whose anchor is
within the family's radius and whose reports are within its time window, if its source may
fuse with it; otherwise it opens an incident. Reports without a usable place join an
incident of the same family in the same district when their texts are similar enough, or
open an incident flagged `needs_location`. Clears follow their device's alarm. The same
event id twice changes nothing. State is indexed by ~1 km cell so that the correlate
agent can keep it in a table keyed by cell; `cells_within` gives every cell a match can
come from, across cell borders.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from citybrain.core.cells import CELL_DEG, cell_of
from citybrain.correlation.rules import Family, Rules, default_rules
from citybrain.correlation.text import bigrams, similarity
from schemas.events import CanonicalEvent

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
    return [
        f"c{row + dr}_{col + dc}"
        for dr in range(-rings_lat, rings_lat + 1)
        for dc in range(-rings_lon, rings_lon + 1)
    ]


@dataclass(slots=True)
class Incident:
    incident_id: str
    family: str
    category: str
    priority: int
    first_seen: datetime
    last_seen: datetime
    lon: float | None
    lat: float | None
    district: str | None
    location_status: str
    status: str = "open"
    iot_reports: int = 0
    hotline_reports: int = 0
    open311_reports: int = 0
    event_keys: array[int] = field(default_factory=lambda: array("Q"))  # every report's key
    devices: tuple[str, ...] = ()  # a tuple: a quarter of a one-item set's size
    texts: list[tuple[str, ...]] = field(default_factory=list)  # distinct report signatures
    points: array[float] = field(default_factory=lambda: array("d"))  # lon, lat, lon, lat...

    @property
    def report_count(self) -> int:
        return len(self.event_keys)

    @property
    def reports(self) -> dict[str, int]:
        """Report counts by source kind (those with any)."""
        counts = {
            "iot": self.iot_reports,
            "hotline": self.hotline_reports,
            "open311": self.open311_reports,
        }
        return {kind: n for kind, n in counts.items() if n}

    def count_report(self, source_kind: str) -> None:
        if source_kind == "iot":
            self.iot_reports += 1
        elif source_kind == "open311":
            self.open311_reports += 1
        else:
            self.hotline_reports += 1

    @property
    def cell(self) -> str:
        if self.lon is None or self.lat is None:
            return f"d{self.district}" if self.district else "unlocated"
        return cell_of(self.lon, self.lat)


@dataclass(frozen=True)
class Change:
    incident: Incident
    opened: bool
    reopened: bool = False


class Correlator:
    """Holds open incidents; `add` is the one operation."""

    def __init__(self, rules: Rules | None = None, place_names: Iterable[str] = ()) -> None:
        """`place_names`: the city's district names, which every report in a district shares
        and which therefore say nothing about which incident a report belongs to."""
        self.rules = rules or default_rules()
        # longest first, so that no shorter name cuts a longer one apart
        self._ignored = sorted({*place_names, *self.rules.text_boilerplate}, key=len, reverse=True)
        self.by_cell: dict[str, list[Incident]] = {}
        self.by_district: dict[tuple[str, str], list[Incident]] = {}  # (district, family)
        self.unplaced: dict[tuple[str, str], list[Incident]] = {}  # the same, district-only
        # event keys of incidents that changed cell (a repeated report looks for its incident
        # where it was when the report joined it); every other key is found in the candidates
        self.moved: set[int] = set()
        self.vacated: set[str] = set()  # cells an incident moved out of (callers persist them)

    # --- indexes ---------------------------------------------------------------------------
    def hold(self, inc: Incident, cell: str | None = None) -> None:
        """Index an incident by cell, and by district while it has one."""
        self.by_cell.setdefault(cell or inc.cell, []).append(inc)
        if inc.district is not None:
            key = (inc.district, inc.family)
            self.by_district.setdefault(key, []).append(inc)
            if inc.location_status != "located":
                self.unplaced.setdefault(key, []).append(inc)

    def _release(self, inc: Incident) -> None:
        if self.moved:
            self.moved.difference_update(inc.event_keys)
        if inc.district is not None:
            key = (inc.district, inc.family)
            for index in (self.by_district, self.unplaced):
                members = index.get(key)
                if members is not None and inc in members:
                    members.remove(inc)
                    if not members:
                        del index[key]

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
            pool: Iterable[Incident] = self._candidates(cells)
        else:
            pool = [
                *(self.by_district.get((loc.district, family.name), ()) if loc.district else ()),
                *self.by_cell.get("unlocated", ()),
            ]
        return any(key in inc.event_keys for inc in pool if inc.family == family.name)

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
            yield from self.by_cell.get(cell, ())

    def _in_window(self, inc: Incident, at: datetime, family: Family) -> bool:
        window = family.window_td
        return inc.first_seen - window <= at <= inc.last_seen + window

    def _match(self, e: CanonicalEvent, family: Family) -> Incident | None:
        loc = e.location
        cells = self._search_cells(e, family)
        if self._by_device(e, family):
            device = loc.device_id
            if device is None or cells is None:
                return None
            for inc in self._candidates(cells):
                if (
                    device in inc.devices
                    and inc.family == family.name
                    and self._in_window(inc, e.observed_at, family)
                ):
                    return inc
            return None
        best: tuple[float, Incident] | None = None
        if cells is not None:
            # measure to the nearest report of each candidate
            assert loc.lon is not None and loc.lat is not None
            for inc in self._candidates(cells):
                if inc.family != family.name or inc.lon is None or inc.lat is None:
                    continue
                if e.source_kind not in family.sources or not self._in_window(
                    inc, e.observed_at, family
                ):
                    continue
                pts = inc.points or array("d", (inc.lon, inc.lat))
                d = min(
                    distance_m(loc.lon, loc.lat, pts[i], pts[i + 1]) for i in range(0, len(pts), 2)
                )
                if d <= family.radius_m and (best is None or d < best[0]):
                    best = (d, inc)
            if best is not None:
                return best[1]
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

    def _signature(self, e: CanonicalEvent) -> frozenset[str]:
        """Where the caller says it is, as comparable bigrams: the place a coarse report
        names is what ties it to the other reports of its problem."""
        return bigrams(e.location.address, self._ignored)

    @staticmethod
    def _likeness(signature: frozenset[str], inc: Incident) -> float:
        """How alike a report is to the most alike report of an incident."""
        return max((similarity(signature, t) for t in inc.texts), default=0.0)

    def _district_candidates(
        self, e: CanonicalEvent, family: Family, located: bool | None
    ) -> list[Incident]:
        if e.location.district is None:
            return []
        index = self.unplaced if located is False else self.by_district
        return [
            inc
            for inc in index.get((e.location.district, family.name), ())
            if (located is None or (inc.location_status == "located") == located)
            and self._in_window(inc, e.observed_at, family)
        ]

    def _best_by_text(
        self, e: CanonicalEvent, family: Family, located: bool | None
    ) -> Incident | None:
        candidates = self._district_candidates(e, family, located)
        if not candidates:
            return None
        text = self._signature(e)
        threshold, margin = self.rules.text_similarity, self.rules.text_margin
        if len(candidates) == 1:
            only = candidates[0]
            if not text or not only.texts or self._likeness(text, only) >= threshold:
                return only
            return None
        if not text:
            return None
        # Located incidents first: a district-only incident exactly as alike as a located one
        # is most likely the same problem, reported before anyone gave its place.
        scored = sorted(
            (
                (self._likeness(text, inc), inc.location_status == "located", inc)
                for inc in candidates
            ),
            key=lambda t: (t[0], t[1]),
            reverse=True,
        )
        best, best_located, winner = scored[0]
        rivals = [sim for sim, is_located, _ in scored[1:] if is_located or not best_located]
        second = rivals[0] if rivals else 0.0
        if best >= threshold and best - second >= margin:
            return winner
        return None

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
            inc = Incident(
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
        self._absorb(inc, e, key)
        return Change(inc, opened, reopened)

    def _absorb(self, inc: Incident, e: CanonicalEvent, key: int) -> None:
        inc.event_keys.append(key)
        inc.count_report(e.source_kind)
        inc.priority = min(inc.priority, e.severity)
        inc.first_seen = min(inc.first_seen, e.observed_at)
        inc.last_seen = max(inc.last_seen, e.observed_at)
        if e.location.device_id and e.location.device_id not in inc.devices:
            inc.devices = (*inc.devices, e.location.device_id)
        signature = tuple(sorted(self._signature(e)))
        if signature and len(inc.texts) < MAX_TEXTS and signature not in inc.texts:
            inc.texts.append(signature)
        placed = e.location.lon is not None and e.location.status != "needs_location"
        if placed and len(inc.points) < 2 * MAX_POINTS:
            inc.points.extend((e.location.lon, e.location.lat))  # type: ignore[arg-type]
        if (inc.lon is None and placed) or (inc.district is None and e.location.district):
            # it found its place (or its district): index it again
            old = inc.cell
            self.by_cell[old].remove(inc)
            if not self.by_cell[old]:
                del self.by_cell[old]
            self._release(inc)
            if inc.lon is None and placed:
                inc.lon, inc.lat, inc.location_status = e.location.lon, e.location.lat, "located"
            inc.district = inc.district or e.location.district
            if inc.cell != old:
                self.vacated.add(old)
                self.moved.update(inc.event_keys)
            self.hold(inc)

    def set_status(self, incident_id: str, status: str) -> Incident | None:
        """Record an incident's status from the dispatch stage (a resolved incident that
        gets new reports within its window is reopened); None if it is not held."""
        for incs in self.by_cell.values():
            for inc in incs:
                if inc.incident_id == incident_id:
                    inc.status = status
                    return inc
        return None

    def expire(self, now: datetime) -> int:
        """Forget incidents quiet for twice their window (keeps the state bounded)."""
        dropped = 0
        for cell in list(self.by_cell):
            keep = []
            for inc in self.by_cell[cell]:
                family = self.rules.family_of(inc.category)
                if now - inc.last_seen > timedelta(seconds=2 * family.window_s):
                    self._release(inc)
                    dropped += 1
                else:
                    keep.append(inc)
            if keep:
                self.by_cell[cell] = keep
            else:
                del self.by_cell[cell]
        return dropped
