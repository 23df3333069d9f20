"""Address registers in the real PostgreSQL: `citybrain geo gazetteer import` stores a new
version only when the content changed, with who imported it; the worker's matcher places
with the newest version; a bad row is refused with its file and line before anything is
stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from citybrain.agents.context import StageContext
from citybrain.cli import app
from citybrain.db.migrate import migrate
from citybrain.db.registers import newest_register, store_register
from citybrain.geo.register import read_register
from citybrain.settings import Settings

pytestmark = pytest.mark.integration

HEADER = "kind,district,town,road,number,estate,building,name,aliases,lon,lat,line\n"
FIRST = HEADER + "poi,310115,,,,,,滨江观景台,观景台,121.5010,31.2400,\n"
SECOND = FIRST + "address,310115,,丰和路,88,,,,,121.5100,31.2450,\n"


def _entries(tmp_path: Path, text: str) -> list[Any]:
    path = tmp_path / "register.csv"
    path.write_text(text, encoding="utf-8")
    return read_register(path, "GCJ-02", {"310115"})


def test_a_version_per_changed_content_and_the_worker_places_with_the_newest(
    scratch: Settings, tmp_path: Path
) -> None:
    migrate(scratch)
    with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
        first = store_register(conn, "shanghai", _entries(tmp_path, FIRST), "a.csv", "王工")
        again = store_register(conn, "shanghai", _entries(tmp_path, FIRST), "a.csv", "王工")
        second = store_register(conn, "shanghai", _entries(tmp_path, SECOND), "b.csv", "李工")
        assert (first.version, first.imported) == (1, True)
        assert (again.version, again.imported) == (1, False)
        assert (second.version, second.imported, second.entries) == (2, True, 2)
        who = conn.execute(
            "SELECT version, imported_by, entries FROM address_registers ORDER BY version"
        ).fetchall()
        assert who == [(1, "王工", 1), (2, "李工", 2)]
        assert {e.name for e in newest_register(conn, "shanghai")} == {"滨江观景台", "丰和路88号"}
        assert newest_register(conn, "guiyang") == []
    ctx = StageContext(None, scratch)  # type: ignore[arg-type]
    match = ctx.gazetteer.match("浦东新区丰和路88号门口")
    assert match.entry is not None and match.entry.name == "丰和路88号" and match.placed()


def test_a_bad_row_is_refused_with_its_line_before_anything_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_text(FIRST + "address,310115,,丰和路,八八,,,,,121.51,31.245,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["geo", "gazetteer", "import", str(path), "--crs", "GCJ-02"])
    assert result.exit_code == 1
    assert f"{path}:3: number: digits only, got '八八'" in result.output
