"""Generate the built-in feeds' device registries (synthetic sensors inside Shanghai).

The devices are made up (placed at random inside the districts, seeded); their
coordinates are written in GCJ-02, as vendor asset registers in China usually are.

    python bench/make_devices.py
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import shapely

from citybrain.geo.crs import from_wgs84
from citybrain.geo.pack import load_pack

OUT = Path(__file__).resolve().parent.parent / "citybrain/feeds/builtin/devices"
FEEDS = {
    "water-level": ("WL", "water_level_gauge", 400),
    "manhole-cover": ("MH", "manhole_cover_sensor", 600),
    "noise": ("NS", "noise_monitor", 200),
}


def main() -> None:
    area = load_pack("shanghai").area()
    minx, miny, _maxx, _maxy = area.bounds
    rng = np.random.default_rng(42)
    OUT.mkdir(parents=True, exist_ok=True)
    for feed, (prefix, asset, count) in FEEDS.items():
        lon: list[float] = []
        lat: list[float] = []
        while len(lon) < count:
            # sensors cluster in the urban core: sample around People's Square
            x = rng.normal(121.47, 0.12, count)
            y = rng.normal(31.23, 0.10, count)
            ok = shapely.contains_xy(area, x, y) & (x > minx) & (y > miny)
            lon += list(x[ok])
            lat += list(y[ok])
        gx, gy = from_wgs84(lon[:count], lat[:count], "GCJ-02")
        with (OUT / f"{feed}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["device_id", "feed", "asset_type", "lon", "lat", "installed_on"])
            for i in range(count):
                installed = date(2021, 1, 1) + timedelta(days=int(rng.integers(0, 1400)))
                w.writerow(
                    [
                        f"{prefix}{i:05d}",
                        feed,
                        asset,
                        f"{gx[i]:.6f}",
                        f"{gy[i]:.6f}",
                        installed.isoformat(),
                    ]
                )
        print(f"wrote {count} devices for {feed}")


if __name__ == "__main__":
    main()
