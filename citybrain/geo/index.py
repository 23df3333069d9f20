"""The spatial index: WGS-84 points -> district, street, community, grid cell, jurisdictions.

Vectorised over numpy arrays, one pass for all layers (pure). A regular grid (the pack's
cell size, default 500 m) covers the city; each cell remembers, per layer, the region that
contains it entirely, so most points are tagged by an array lookup. Only points in cells
that a boundary crosses are tested against the polygons, all layers in one STRtree query.

Conventions: a point exactly on a shared border gets the region that comes first in the
pack's file order; a point in a hole gets no region of that layer; points outside the city
are `out_of_area` (kept, never dropped); coordinates that only make sense swapped (lat,
lon) are swapped back and flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

from citybrain.geo.crs import normalize_crs, to_wgs84
from citybrain.geo.pack import CityPack, Region

M_PER_DEG_LAT = 111_320.0
MIXED = -1
NONE = -2


@dataclass(frozen=True)
class Grid:
    """A lon/lat grid of nearly square cells of `cell_m` metres over a bounding box."""

    lon0: float
    lat0: float
    dlon: float
    dlat: float
    rows: int
    cols: int

    @classmethod
    def over(cls, bounds: tuple[float, float, float, float], cell_m: float) -> Grid:
        minx, miny, maxx, maxy = bounds
        dlat = cell_m / M_PER_DEG_LAT
        dlon = cell_m / (M_PER_DEG_LAT * math.cos(math.radians((miny + maxy) / 2)))
        rows = math.ceil((maxy - miny) / dlat) + 1
        cols = math.ceil((maxx - minx) / dlon) + 1
        return cls(minx, miny, dlon, dlat, rows, cols)

    def cell_ids(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int64]:
        """Cell id (row * cols + col) of each point; -1 outside the grid."""
        row = np.floor((lat - self.lat0) / self.dlat).astype(np.int64)
        col = np.floor((lon - self.lon0) / self.dlon).astype(np.int64)
        ok = (row >= 0) & (row < self.rows) & (col >= 0) & (col < self.cols)
        return np.where(ok, row * self.cols + col, -1)

    def boxes(self) -> NDArray[np.object_]:
        """Every cell as a shapely box, indexed by cell id."""
        rows, cols = np.divmod(np.arange(self.rows * self.cols), self.cols)
        x0 = self.lon0 + cols * self.dlon
        y0 = self.lat0 + rows * self.dlat
        return shapely.box(x0, y0, x0 + self.dlon, y0 + self.dlat)

    def code(self, cell_id: int) -> str:
        row, col = divmod(int(cell_id), self.cols)
        return f"{row:03d}-{col:03d}"


@dataclass
class GeoTags:
    """The result of tagging a batch: per layer, region indexes (-1 = none)."""

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    in_area: NDArray[np.bool_]
    swapped: NDArray[np.bool_]
    cell: NDArray[np.int64]  # grid cell id, -1 when out of area
    region: dict[str, NDArray[np.int32]]  # layer -> index into GeoIndex.regions[layer]


class GeoIndex:
    """Built once per city pack; `tag` is the hot path."""

    def __init__(self, pack: CityPack) -> None:
        self.pack = pack
        self.layers = list(pack.regions)
        self.regions: dict[str, list[Region]] = pack.regions
        self.codes = {
            layer: np.array([r.code for r in regions], dtype=object)
            for layer, regions in pack.regions.items()
        }
        self.area: BaseGeometry = pack.area()
        shapely.prepare(self.area)
        minx, miny, maxx, maxy = self.area.bounds
        self.bounds = (minx, miny, maxx, maxy)
        self.grid = Grid.over(self.bounds, pack.spec.grid.cell_m)
        boxes = self.grid.boxes()
        cell_tree = shapely.STRtree(boxes)
        n_cells = len(boxes)

        self.area_state = np.zeros(n_cells, dtype=np.int8)  # 1 inside, 0 outside, -1 mixed
        touching = cell_tree.query(self.area, predicate="intersects")
        inside = cell_tree.query(self.area, predicate="contains")
        self.area_state[touching] = MIXED
        self.area_state[inside] = 1

        # all regions of all layers, for the mixed cells
        self._flat: list[tuple[str, int]] = []
        geoms: list[BaseGeometry] = []
        self.cell_region: dict[str, NDArray[np.int32]] = {}
        for layer, regions in self.regions.items():
            lookup = np.full(n_cells, NONE, dtype=np.int32)
            for region in regions:
                shapely.prepare(region.geometry)
                lookup[cell_tree.query(region.geometry, predicate="intersects")] = MIXED
            for i, region in enumerate(regions):
                lookup[cell_tree.query(region.geometry, predicate="contains")] = i
                self._flat.append((layer, i))
                geoms.append(region.geometry)
            self.cell_region[layer] = lookup
        self._geoms = geoms
        self._tree = shapely.STRtree(geoms)
        self._flat_layer = np.array([self.layers.index(layer) for layer, _ in self._flat])
        self._flat_index = np.array([i for _, i in self._flat], dtype=np.int32)

    # --- the hot path --------------------------------------------------------------
    def tag(self, lon: ArrayLike, lat: ArrayLike, crs: str = "WGS-84") -> GeoTags:
        """Tag a batch of points given in `crs` (converted to WGS-84) with every layer."""
        x = np.array(lon, dtype=np.float64)
        y = np.array(lat, dtype=np.float64)
        swapped = self._fix_swapped(x, y)  # before conversion: the offset depends on order
        if normalize_crs(crs) != "WGS-84":
            x, y = to_wgs84(x, y, crs)
        cell = self.grid.cell_ids(x, y)
        on_grid = cell >= 0
        safe_cell = np.where(on_grid, cell, 0)

        state = np.where(on_grid, self.area_state[safe_cell], 0)
        in_area = state == 1
        mixed_area = np.flatnonzero(state == MIXED)
        if mixed_area.size:
            in_area[mixed_area] = shapely.contains_xy(self.area, x[mixed_area], y[mixed_area])

        region: dict[str, NDArray[np.int32]] = {}
        need_test = np.zeros(x.size, dtype=bool)
        for layer in self.layers:
            idx = np.where(on_grid, self.cell_region[layer][safe_cell], NONE).astype(np.int32)
            need_test |= idx == MIXED
            region[layer] = idx
        todo = np.flatnonzero(need_test)
        if todo.size:
            for layer in self.layers:
                column = region[layer]
                column[todo] = np.where(column[todo] == MIXED, NONE, column[todo])
            # candidates by bounding box, then exact tests against each prepared polygon
            pairs = self._tree.query(shapely.points(x[todo], y[todo]))
            order = np.argsort(pairs[1], kind="stable")
            point_pos, flat = pairs[0][order], pairs[1][order]
            bounds = np.flatnonzero(np.diff(flat)) + 1
            groups = np.split(np.arange(flat.size), bounds)
            # the first region in file order wins a border point: assign the last first
            for group in reversed(groups):
                if group.size == 0:
                    continue
                f = int(flat[group[0]])
                pts = todo[point_pos[group]]
                hit = shapely.intersects_xy(self._geoms[f], x[pts], y[pts])
                region[self.layers[self._flat_layer[f]]][pts[hit]] = self._flat_index[f]
        for layer in self.layers:
            column = region[layer]
            column[column < 0] = -1
        cell = np.where(in_area, cell, -1)
        return GeoTags(x, y, in_area, swapped, cell, region)

    def _fix_swapped(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.bool_]:
        margin = 0.05  # degrees: covers the GCJ-02 / BD-09 offsets
        minx, miny, maxx, maxy = self.bounds
        minx, miny, maxx, maxy = minx - margin, miny - margin, maxx + margin, maxy + margin
        inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        flipped = (y >= minx) & (y <= maxx) & (x >= miny) & (x <= maxy)
        swap = ~inside & flipped
        if swap.any():
            x[swap], y[swap] = y[swap].copy(), x[swap].copy()
        return swap

    # --- helpers for callers -----------------------------------------------------------
    def code_of(self, tags: GeoTags, layer: str, i: int) -> str | None:
        """The code of point i in a layer, or None."""
        idx = int(tags.region[layer][i])
        return None if idx < 0 else str(self.codes[layer][idx])

    def codes_for(self, tags: GeoTags, layer: str) -> NDArray[np.object_]:
        """Codes of a whole batch for one layer (None where no region)."""
        idx = tags.region[layer]
        out = np.full(idx.size, None, dtype=object)
        hit = idx >= 0
        out[hit] = self.codes[layer][idx[hit]]
        return out

    def grid_regions(self) -> list[Region]:
        """The grid layer: every cell that touches the city, clipped to it."""
        boxes = self.grid.boxes()
        inside = np.flatnonzero(self.area_state == 1)
        mixed = np.flatnonzero(self.area_state == MIXED)
        clipped = shapely.intersection(boxes[mixed], self.area)
        keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
        cells = np.concatenate([inside, mixed[keep]])
        geoms = np.concatenate([boxes[inside], clipped[keep]])
        order = np.argsort(cells)
        return [
            Region("grid", self.grid.code(int(c)), self.grid.code(int(c)), None, g)
            for c, g in zip(cells[order], geoms[order], strict=True)
        ]

    def grid_code(self, cell_id: int) -> str | None:
        return None if cell_id < 0 else self.grid.code(cell_id)
