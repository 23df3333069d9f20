"""Address registers in the database (`address_registers`, `address_entries`): a new version
per changed file, recorded with who imported it; the newest version read back as gazetteer
entries for the worker's matcher."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from citybrain.geo.address import GazetteerEntry


@dataclass(frozen=True)
class RegisterImport:
    pack: str
    version: int
    entries: int
    imported: bool  # False: the newest version has the same content


def checksum(entries: Sequence[GazetteerEntry]) -> str:
    digest = hashlib.sha256()
    for e in entries:
        digest.update(repr(e).encode())
    return digest.hexdigest()


def store_register(
    conn: psycopg.Connection[Any],
    pack: str,
    entries: Sequence[GazetteerEntry],
    source: str,
    operator: str,
) -> RegisterImport:
    """Store the entries as the pack's next register version, unless the newest is the same."""
    digest = checksum(entries)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('address_registers:' || %s))", (pack,))
        newest = conn.execute(
            "SELECT version, checksum FROM address_registers WHERE pack = %s"
            " ORDER BY version DESC LIMIT 1",
            (pack,),
        ).fetchone()
        if newest is not None and newest[1] == digest:
            return RegisterImport(pack, int(newest[0]), len(entries), False)
        version = 1 if newest is None else int(newest[0]) + 1
        conn.execute(
            "INSERT INTO address_registers (pack, version, checksum, entries, source, imported_by)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (pack, version, digest, len(entries), source, operator),
        )
        with conn.cursor().copy(
            "COPY address_entries (pack, version, kind, name, district, lon, lat, aliases, line)"
            " FROM STDIN"
        ) as copy:
            for e in entries:
                copy.write_row(
                    (
                        pack,
                        version,
                        e.kind,
                        e.name,
                        e.district,
                        e.lon,
                        e.lat,
                        list(e.aliases),
                        Jsonb([list(p) for p in e.line]) if e.line else None,
                    )
                )
    return RegisterImport(pack, version, len(entries), True)


def newest_register(conn: psycopg.Connection[Any], pack: str) -> list[GazetteerEntry]:
    """The entries of the pack's newest register version (none stored: empty)."""
    rows = conn.execute(
        "SELECT kind, name, district, lon, lat, aliases, line FROM address_entries"
        " WHERE pack = %s AND version = (SELECT max(version) FROM address_registers"
        " WHERE pack = %s)",
        (pack, pack),
    ).fetchall()
    return [
        GazetteerEntry(
            kind,
            name,
            district,
            lon,
            lat,
            tuple(aliases or ()),
            tuple((float(x), float(y)) for x, y in (line or [])),
        )
        for kind, name, district, lon, lat, aliases, line in rows
    ]
