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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from citybrain.core.cells import CELL_DEG, cell_of
from citybrain.correlation.rules import Family, Rules, default_rules
from schemas.events import CanonicalEvent

EARTH_M_PER_DEG = 111_320.0


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


def bigrams(text: str | None) -> frozenset[str]:
    """Character bigrams of Chinese (or any) text, spaces and punctuation dropped."""
    if not text:
        return frozenset()
    chars = [c for c in text if c.isalnum()]
    return frozenset(a + b for a, b in pairwise(chars))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass
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
    reports: dict[str, int] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    text: frozenset[str] = frozenset()
    points: list[tuple[float, float]] = field(default_factory=list)  # located reports, capped

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

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or default_rules()
        self.by_cell: dict[str, list[Incident]] = {}
        self.seen: dict[str, str] = {}  # event id -> incident id
        self.vacated: set[str] = set()  # cells an incident moved out of (callers persist them)

    # --- lookup ----------------------------------------------------------------------------
    def _candidates(self, cells: Iterable[str]) -> Iterable[Incident]:
        for cell in cells:
            yield from self.by_cell.get(cell, ())

    def _in_window(self, inc: Incident, at: datetime, family: Family) -> bool:
        window = timedelta(seconds=family.window_s)
        return inc.first_seen - window <= at <= inc.last_seen + window

    def _match(self, e: CanonicalEvent, family: Family) -> Incident | None:
        loc = e.location
        if family.name == "device" or e.kind in ("clear", "device_online"):
            device = loc.device_id
            if device is None:
                return None
            cells = (
                cells_within(loc.lon, loc.lat, 50)
                if loc.lon is not None and loc.lat is not None
                else [f"d{loc.district}" if loc.district else "unlocated"]
            )
            for inc in self._candidates(cells):
                if (
                    device in inc.devices
                    and inc.family == family.name
                    and self._in_window(inc, e.observed_at, family)
                ):
                    return inc
            return None
        best: tuple[float, Incident] | None = None
        if loc.lon is not None and loc.lat is not None and loc.status != "needs_location":
            # an incident is indexed by its first place and its reports spread up to about
            # two radii from it: look that far, then measure to the nearest report
            for inc in self._candidates(cells_within(loc.lon, loc.lat, 3 * family.radius_m)):
                if inc.family != family.name or inc.lon is None or inc.lat is None:
                    continue
                if e.source_kind not in family.sources or not self._in_window(
                    inc, e.observed_at, family
                ):
                    continue
                d = min(
                    distance_m(loc.lon, loc.lat, x, y)
                    for x, y in inc.points or [(inc.lon, inc.lat)]
                )
                if d <= family.radius_m and (best is None or d < best[0]):
                    best = (d, inc)
            return best[1] if best else None
        # No usable place. A wrong merge hides a problem, so a report placed only by its
        # district joins an incident only when exactly one located incident of the family
        # is open in that district in the window and the texts agree; otherwise it opens
        # its own incident, flagged needs_location, for an operator to place.
        if loc.district is None:
            return None
        text = bigrams(e.text)
        candidates = [
            inc
            for incs in self.by_cell.values()
            for inc in incs
            if inc.district == loc.district
            and inc.family == family.name
            and inc.location_status == "located"
            and self._in_window(inc, e.observed_at, family)
        ]
        if len(candidates) == 1 and (
            not text
            or not candidates[0].text
            or similarity(text, candidates[0].text) >= self.rules.text_similarity
        ):
            return candidates[0]
        return None

    # --- the operation -----------------------------------------------------------------------
    def add(self, e: CanonicalEvent) -> Change | None:
        """Attach a report to an incident or open one; None for a repeated event id or a
        clear that follows no alarm."""
        if e.event_id in self.seen:
            return None
        family = self.rules.family_of(e.category)
        inc = self._match(e, family)
        loc = e.location
        if inc is None:
            if e.kind in ("clear", "device_online"):
                self.seen[e.event_id] = ""
                return None
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
            self.by_cell.setdefault(inc.cell, []).append(inc)
            opened, reopened = True, False
        else:
            opened = False
            reopened = inc.status in ("resolved", "closed") and e.kind != "clear"
            if reopened:
                inc.status = "reopened"
        self._absorb(inc, e)
        self.seen[e.event_id] = inc.incident_id
        return Change(inc, opened, reopened)

    def _absorb(self, inc: Incident, e: CanonicalEvent) -> None:
        inc.event_ids.append(e.event_id)
        inc.reports[e.source_kind] = inc.reports.get(e.source_kind, 0) + 1
        inc.priority = min(inc.priority, e.severity)
        inc.first_seen = min(inc.first_seen, e.observed_at)
        inc.last_seen = max(inc.last_seen, e.observed_at)
        if e.location.device_id:
            inc.devices.add(e.location.device_id)
        if e.text:
            inc.text = inc.text | bigrams(e.text)
        if (
            e.location.lon is not None
            and e.location.lat is not None
            and e.location.status != "needs_location"
            and len(inc.points) < 50
        ):
            inc.points.append((e.location.lon, e.location.lat))
        if inc.lon is None and e.location.lon is not None and e.location.status != "needs_location":
            old = inc.cell
            inc.lon, inc.lat, inc.location_status = e.location.lon, e.location.lat, "located"
            self.by_cell[old].remove(inc)
            self.vacated.add(old)
            self.by_cell.setdefault(inc.cell, []).append(inc)
        if inc.district is None:
            inc.district = e.location.district

    def expire(self, now: datetime) -> int:
        """Forget incidents quiet for twice their window (keeps the state bounded)."""
        dropped = 0
        for cell in list(self.by_cell):
            keep = []
            for inc in self.by_cell[cell]:
                family = self.rules.family_of(inc.category)
                if now - inc.last_seen > timedelta(seconds=2 * family.window_s):
                    dropped += 1
                else:
                    keep.append(inc)
            if keep:
                self.by_cell[cell] = keep
            else:
                del self.by_cell[cell]
        return dropped
