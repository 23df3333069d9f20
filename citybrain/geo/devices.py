"""The device registry: where sensors that report no coordinates stand (pure).

Loaded from a CSV (`device_id,feed,asset_type,lon,lat,installed_on`, coordinates in the
file's declared system) and looked up in batches. An unknown device is not guessed: the
caller dead-letters the record with the reason `unknown_device`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from citybrain.config_errors import ConfigError
from citybrain.geo.crs import to_wgs84

COLUMNS = ("device_id", "feed", "asset_type", "lon", "lat", "installed_on")


@dataclass(frozen=True)
class Device:
    device_id: str
    feed: str
    asset_type: str
    lon: float  # WGS-84
    lat: float
    installed_on: date | None


class DeviceRegistry:
    """device id -> Device, with vectorised lookups."""

    def __init__(self, devices: Sequence[Device]) -> None:
        self.devices = {d.device_id: d for d in devices}

    @classmethod
    def from_csv(cls, path: Path, crs: str = "WGS-84") -> DeviceRegistry:
        """Read a registry; a bad row is an error naming the file and line."""
        rows: list[tuple[int, dict[str, str]]] = []
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{path}:1: missing columns {missing}")
            for row in reader:
                rows.append((reader.line_num, row))
        lons, lats = [], []
        for line, row in rows:
            try:
                lons.append(float(row["lon"]))
                lats.append(float(row["lat"]))
            except ValueError as exc:
                raise ConfigError(f"{path}:{line}: lon/lat: {exc}") from exc
        x, y = to_wgs84(lons, lats, crs)
        devices = []
        seen: set[str] = set()
        for (line, row), lon, lat in zip(rows, x, y, strict=True):
            if not row["device_id"]:
                raise ConfigError(f"{path}:{line}: device_id is empty")
            if row["device_id"] in seen:
                raise ConfigError(f"{path}:{line}: device_id {row['device_id']!r} repeated")
            seen.add(row["device_id"])
            try:
                installed = date.fromisoformat(row["installed_on"]) if row["installed_on"] else None
            except ValueError as exc:
                raise ConfigError(f"{path}:{line}: installed_on: {exc}") from exc
            devices.append(
                Device(
                    row["device_id"],
                    row["feed"],
                    row["asset_type"],
                    float(lon),
                    float(lat),
                    installed,
                )
            )
        return cls(devices)

    def __len__(self) -> int:
        return len(self.devices)

    def lookup(
        self, device_ids: Sequence[str | None]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """(lon, lat, found) for a batch of ids; NaN where the device is unknown."""
        lon = np.full(len(device_ids), np.nan)
        lat = np.full(len(device_ids), np.nan)
        found = np.zeros(len(device_ids), dtype=bool)
        for i, device_id in enumerate(device_ids):
            device = self.devices.get(device_id) if device_id else None
            if device is not None:
                lon[i], lat[i], found[i] = device.lon, device.lat, True
        return lon, lat, found
