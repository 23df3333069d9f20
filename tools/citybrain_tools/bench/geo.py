"""`citybrain bench geo`: geo-tagging throughput in batches on one core, on a real city pack.

Points are drawn inside the city (and 5% outside it), tagged in batches of `batch` with
every layer and turned into codes, as the normalize stage does.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import shapely

from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack


@dataclass
class GeoBenchResult:
    pack: str
    layers: int
    grid_cells: int
    build_seconds: float
    points: int
    batch: int
    seconds: float
    points_per_s: float
    in_area_fraction: float


def sample_points(index: GeoIndex, n: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """n points: 95% inside the city area, 5% anywhere in its bounding box."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = index.bounds
    inside_x: list[np.ndarray] = []
    inside_y: list[np.ndarray] = []
    want = int(n * 0.95)
    have = 0
    while have < want:
        x = rng.uniform(minx, maxx, want)
        y = rng.uniform(miny, maxy, want)
        ok = shapely.contains_xy(index.area, x, y)
        inside_x.append(x[ok])
        inside_y.append(y[ok])
        have += int(ok.sum())
    x = np.concatenate([*inside_x, rng.uniform(minx, maxx, n)])[:n]
    y = np.concatenate([*inside_y, rng.uniform(miny, maxy, n)])[:n]
    x[want:] = rng.uniform(minx, maxx, n - want)
    y[want:] = rng.uniform(miny, maxy, n - want)
    order = rng.permutation(n)
    return x[order], y[order]


def run_geo_bench(pack_name: str, points: int, batch: int) -> GeoBenchResult:
    started = time.perf_counter()
    index = GeoIndex(load_pack(pack_name))
    build = time.perf_counter() - started
    x, y = sample_points(index, points)
    inside = 0
    started = time.perf_counter()
    for lo in range(0, points, batch):
        tags = index.tag(x[lo : lo + batch], y[lo : lo + batch])
        for layer in index.layers:
            index.codes_for(tags, layer)
        inside += int(tags.in_area.sum())
    seconds = time.perf_counter() - started
    return GeoBenchResult(
        pack=index.pack.spec.pack,
        layers=len(index.layers) + 1,
        grid_cells=int((index.area_state != 0).sum()),
        build_seconds=round(build, 3),
        points=points,
        batch=batch,
        seconds=round(seconds, 3),
        points_per_s=round(points / seconds),
        in_area_fraction=round(inside / points, 3),
    )


def as_dict(result: GeoBenchResult) -> dict[str, Any]:
    return asdict(result)
