"""Correlation cells: the key that events.v1 is partitioned by (pure).

A located event's cell is a ~1 km square (0.01 degree) of WGS-84 longitude/latitude; the
correlation stage looks at a cell and its neighbours. An event with no usable place is
keyed by its district, or `unlocated`, so it still reaches one partition deterministically.
"""

from __future__ import annotations

import math

CELL_DEG = 0.01


def cell_of(lon: float, lat: float) -> str:
    return f"c{math.floor(lat / CELL_DEG)}_{math.floor(lon / CELL_DEG)}"


def correlation_key(lon: float | None, lat: float | None, district: str | None) -> str:
    if lon is not None and lat is not None:
        return cell_of(lon, lat)
    return f"d{district}" if district else "unlocated"


def neighbours(cell: str) -> list[str]:
    """The cell and its eight neighbours (for matching across a cell border)."""
    row_s, col_s = cell[1:].split("_")
    row, col = int(row_s), int(col_s)
    return [f"c{row + dr}_{col + dc}" for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
