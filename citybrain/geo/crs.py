"""WGS-84, GCJ-02 and BD-09, vectorised over numpy arrays (pure).

GCJ-02 is WGS-84 with the published obfuscation offset (the "Mars" formula); BD-09 is
GCJ-02 with Baidu's further rotation. The forward formulas are exact by definition. The
inverses have no closed form: GCJ-02 -> WGS-84 here iterates the forward formula to
convergence (error below 1e-9 degrees, about 0.1 mm, after a handful of rounds), BD-09 ->
GCJ-02 uses the published inverse and is refined the same way. Outside China's bounding
box the offset is not applied (the usual convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Crs = Literal["WGS-84", "GCJ-02", "BD-09"]
CRS_NAMES: tuple[Crs, ...] = ("WGS-84", "GCJ-02", "BD-09")
_ALIASES = {
    "wgs84": "WGS-84",
    "wgs-84": "WGS-84",
    "epsg:4326": "WGS-84",
    "gps": "WGS-84",
    "gcj02": "GCJ-02",
    "gcj-02": "GCJ-02",
    "mars": "GCJ-02",
    "amap": "GCJ-02",
    "bd09": "BD-09",
    "bd-09": "BD-09",
    "baidu": "BD-09",
}

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the formula
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

Floats = NDArray[np.float64]


def normalize_crs(name: str) -> Crs:
    """'wgs84', 'GCJ-02', 'baidu', ... -> the canonical name; ValueError otherwise."""
    key = name.strip().lower().replace(" ", "")
    if key in _ALIASES:
        return _ALIASES[key]  # type: ignore[return-value]
    raise ValueError(f"unknown coordinate system {name!r}: use one of {', '.join(CRS_NAMES)}")


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """The bounding box where the GCJ-02 offset applies."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon_a > 72.004) & (lon_a < 137.8347) & (lat_a > 0.8293) & (lat_a < 55.8271)


def _offsets(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _offsets(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return np.where(inside, lon_a + dlon, lon_a), np.where(inside, lat_a + dlat, lat_a)


def _invert(
    forward: Callable[[Floats, Floats], tuple[Floats, Floats]],
    target_lon: Floats,
    target_lat: Floats,
    start_lon: Floats,
    start_lat: Floats,
    tolerance: float,
    max_rounds: int,
) -> tuple[Floats, Floats]:
    """Fixed-point inversion of a small offset: x <- x - (forward(x) - target)."""
    x, y = start_lon, start_lat
    for _ in range(max_rounds):
        f_lon, f_lat = forward(x, y)
        e_lon, e_lat = f_lon - target_lon, f_lat - target_lat
        x, y = x - e_lon, y - e_lat
        if (
            max(float(np.max(np.abs(e_lon), initial=0)), float(np.max(np.abs(e_lat), initial=0)))
            < tolerance
        ):
            break
    return x, y


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tolerance: float = 1e-10, max_rounds: int = 30
) -> tuple[Floats, Floats]:
    """Invert the GCJ-02 offset by fixed-point iteration (converges in a few rounds)."""
    g_lon, g_lat = _arrays(lon, lat)
    return _invert(wgs84_to_gcj02, g_lon, g_lat, g_lon.copy(), g_lat.copy(), tolerance, max_rounds)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, tolerance: float = 1e-10, max_rounds: int = 30
) -> tuple[Floats, Floats]:
    """The published inverse, refined by iteration against the forward formula."""
    b_lon, b_lat = _arrays(lon, lat)
    x, y = b_lon - 0.0065, b_lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(
        gcj02_to_bd09, b_lon, b_lat, z * np.cos(theta), z * np.sin(theta), tolerance, max_rounds
    )


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Floats, Floats]:
    """Any supported system -> WGS-84."""
    name = normalize_crs(crs)
    if name == "WGS-84":
        return _arrays(lon, lat)
    if name == "GCJ-02":
        return gcj02_to_wgs84(lon, lat)
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Floats, Floats]:
    """WGS-84 -> any supported system (the simulator writes vendor coordinates with it)."""
    name = normalize_crs(crs)
    if name == "WGS-84":
        return _arrays(lon, lat)
    if name == "GCJ-02":
        return wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> Floats:
    """Great-circle distance in metres (haversine, mean Earth radius)."""
    l1, p1 = np.radians(np.asarray(lon1, float)), np.radians(np.asarray(lat1, float))
    l2, p2 = np.radians(np.asarray(lon2, float)), np.radians(np.asarray(lat2, float))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * 6371008.8 * np.arcsin(np.sqrt(h))
