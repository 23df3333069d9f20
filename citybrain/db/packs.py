"""Storing a city pack in the database (`boundary_sets`, `boundaries`), for maps and audit.

A pack version is imported once: the same version with the same content is a no-op, the
same version with other content is refused (bump `version` in pack.yaml), a new version
becomes the active one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import shapely
from psycopg.types.json import Jsonb

from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import CityPack, Region


class ImportRefused(ValueError):
    """The pack conflicts with what is already stored."""


@dataclass
class ImportResult:
    set_code: str
    version: int
    imported: bool
    counts: dict[str, int]


def pack_regions(pack: CityPack, index: GeoIndex) -> list[Region]:
    """Every region to store: the pack's layers plus the generated grid."""
    regions = [r for layer in pack.regions.values() for r in layer]
    return regions + index.grid_regions()


def import_pack(
    conn: psycopg.Connection,
    pack: CityPack,
    index: GeoIndex,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Store the pack in one transaction (the connection must not be in autocommit)."""
    spec = pack.spec
    row = conn.execute(
        "SELECT checksum FROM boundary_sets WHERE set_code = %s AND version = %s",
        (spec.pack, spec.version),
    ).fetchone()
    if row is not None:
        if row[0] == pack.checksum:
            stored: dict[str, int] = dict(
                conn.execute(
                    "SELECT layer, count(*) FROM boundaries WHERE set_code = %s AND version = %s "
                    "GROUP BY layer",
                    (spec.pack, spec.version),
                ).fetchall()
            )
            return ImportResult(spec.pack, spec.version, False, stored)
        raise ImportRefused(
            f"{pack.folder}/pack.yaml: version {spec.version} of {spec.pack!r} was imported "
            "with other content; bump `version` to import the change"
        )
    regions = pack_regions(pack, index)
    counts: dict[str, int] = {}
    for r in regions:
        counts[r.layer] = counts.get(r.layer, 0) + 1
    geojson = shapely.to_geojson([r.geometry for r in regions])
    with conn.transaction():
        conn.execute("UPDATE boundary_sets SET active = false WHERE set_code = %s", (spec.pack,))
        conn.execute(
            "INSERT INTO boundary_sets (set_code, version, city, source, licence, source_crs, "
            "active, checksum, layers, repaired) VALUES (%s, %s, %s, %s, %s, %s, true, %s, %s, %s)",
            (
                spec.pack,
                spec.version,
                spec.city,
                "; ".join(f"{s.layer}: {s.source}" for s in spec.sources),
                "; ".join(f"{s.layer}: {s.licence}" for s in spec.sources),
                spec.source_crs,
                pack.checksum,
                Jsonb(counts),
                Jsonb(pack.repaired),
            ),
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY boundaries (set_code, version, layer, code, name, parent_code, geometry) "
                "FROM STDIN"
            ) as copy,
        ):
            for n, (region, geometry) in enumerate(zip(regions, geojson, strict=True)):
                copy.write_row(
                    (
                        spec.pack,
                        spec.version,
                        region.layer,
                        region.code,
                        region.name,
                        region.parent,
                        geometry,
                    )
                )
                if progress is not None and (n + 1) % 2000 == 0:
                    progress(n + 1, len(regions))
    if progress is not None:
        progress(len(regions), len(regions))
    return ImportResult(spec.pack, spec.version, True, counts)


def active_versions(conn: psycopg.Connection) -> list[tuple[str, int, str]]:
    """(set_code, version, city) of the active boundary sets."""
    rows = conn.execute(
        "SELECT set_code, version, city FROM boundary_sets WHERE active ORDER BY 1"
    ).fetchall()
    return [(str(a), int(b), str(c)) for a, b, c in rows]
