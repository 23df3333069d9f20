"""The geotag step: a batch of location requests -> placements on the city map (pure).

A request carries coordinates (in any supported system), or a device id, or an address
text, or several of these; the most precise one wins: coordinates, then the device
registry, then the address matcher. Every request gets a placement, whose
`location_status` says what happened: `located`, `out_of_area` (outside the city: kept),
`needs_location` (no usable place: an operator places it) or `unknown_device` (the caller
dead-letters the record with that reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from citybrain.geo.address import DEFAULT_THRESHOLD, Gazetteer
from citybrain.geo.devices import DeviceRegistry
from citybrain.geo.index import GeoIndex


@dataclass(frozen=True)
class LocationRequest:
    lon: float | None = None
    lat: float | None = None
    crs: str = "WGS-84"
    device_id: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Placement:
    location_status: str
    lon: float | None = None
    lat: float | None = None
    method: str | None = None  # coordinates, device, address
    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid_cell: str | None = None
    jurisdiction: dict[str, str] = field(default_factory=dict)
    swapped: bool = False
    match_confidence: float | None = None


class Geotagger:
    """Holds the city's index, gazetteer and device registry."""

    def __init__(
        self,
        index: GeoIndex,
        gazetteer: Gazetteer | None = None,
        devices: DeviceRegistry | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.index = index
        self.gazetteer = gazetteer
        self.devices = devices or DeviceRegistry([])
        self.threshold = threshold

    def place(
        self, requests: Sequence[LocationRequest], devices: DeviceRegistry | None = None
    ) -> list[Placement]:
        """Place a batch; `devices` (a feed's own registry) overrides the default one."""
        registry = devices or self.devices
        n = len(requests)
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        method: list[str | None] = [None] * n
        confidence: list[float | None] = [None] * n
        status: list[str | None] = [None] * n

        # 1. coordinates, converted per coordinate system (one vector call per system)
        by_crs: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            if r.lon is not None and r.lat is not None:
                by_crs.setdefault(r.crs, []).append(i)
        swapped = np.zeros(n, dtype=bool)
        for crs, rows in by_crs.items():
            xs = [float(requests[i].lon or 0.0) for i in rows]
            ys = [float(requests[i].lat or 0.0) for i in rows]
            tags = self.index.tag(xs, ys, crs)
            lon[rows], lat[rows], swapped[rows] = tags.lon, tags.lat, tags.swapped
            for i in rows:
                method[i] = "coordinates"

        # 2. devices
        need = [i for i in range(n) if method[i] is None and requests[i].device_id]
        if need:
            dlon, dlat, found = registry.lookup([requests[i].device_id for i in need])
            for k, i in enumerate(need):
                if found[k]:
                    lon[i], lat[i], method[i] = dlon[k], dlat[k], "device"
                elif not requests[i].address:
                    status[i] = "unknown_device"

        # 3. addresses
        coarse_district: dict[int, str] = {}
        for i, r in enumerate(requests):
            if method[i] is None and status[i] is None and r.address and self.gazetteer:
                m = self.gazetteer.match(r.address)
                confidence[i] = m.confidence
                if m.district:
                    coarse_district[i] = m.district  # kept even when not placed
                if m.placed(self.threshold) and m.lon is not None and m.lat is not None:
                    lon[i], lat[i], method[i] = m.lon, m.lat, "address"

        # 4. one tagging pass for everything placed (already WGS-84 now)
        placed = np.flatnonzero(~np.isnan(lon))
        tags = self.index.tag(lon[placed], lat[placed])
        out: list[Placement] = []
        position = {int(i): k for k, i in enumerate(placed)}
        layers = self.index.layers
        for i in range(n):
            if i not in position:
                out.append(
                    Placement(
                        status[i] or "needs_location",
                        district=coarse_district.get(i),
                        match_confidence=confidence[i],
                    )
                )
                continue
            k = position[i]
            codes = {layer: self.index.code_of(tags, layer, k) for layer in layers}
            inside = bool(tags.in_area[k])
            out.append(
                Placement(
                    location_status="located" if inside else "out_of_area",
                    lon=float(tags.lon[k]),
                    lat=float(tags.lat[k]),
                    method=method[i],
                    district=codes.get("district"),
                    street=codes.get("street"),
                    community=codes.get("community"),
                    grid_cell=self.index.grid_code(int(tags.cell[k])),
                    jurisdiction={
                        layer.split(":", 1)[1]: code
                        for layer, code in codes.items()
                        if layer.startswith("jurisdiction:") and code
                    },
                    swapped=bool(swapped[i]),
                    match_confidence=confidence[i],
                )
            )
        return out
