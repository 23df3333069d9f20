"""Importing a city pack into the real PostgreSQL: versioned, idempotent, readable by Grafana."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from citybrain.db.connect import connect
from citybrain.db.packs import ImportRefused, import_pack
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import PACKS_DIR, load_pack
from citybrain.settings import Settings

pytestmark = pytest.mark.integration


def test_import_is_versioned_and_idempotent(stack: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "shanghai-copy"
    shutil.copytree(PACKS_DIR / "shanghai", folder)
    manifest = folder / "pack.yaml"
    manifest.write_text(manifest.read_text().replace("pack: shanghai", "pack: sh-test"))
    pack = load_pack(folder)
    index = GeoIndex(pack)
    with connect(stack) as conn:
        conn.execute("DELETE FROM boundary_sets WHERE set_code = 'sh-test'")
        conn.commit()
        first = import_pack(conn, pack, index)
        again = import_pack(conn, pack, index)
        assert first.imported and not again.imported
        assert first.counts["district"] == 16 and first.counts["grid"] > 30_000

        # same version, other content: refused, pointing at the manifest
        manifest.write_text(manifest.read_text().replace("cell_m: 500", "cell_m: 1000"))
        changed = load_pack(folder)
        with pytest.raises(ImportRefused, match="bump `version`"):
            import_pack(conn, changed, GeoIndex(changed))
        conn.rollback()

        # a new version becomes the active one
        manifest.write_text(manifest.read_text().replace("version: 1", "version: 2"))
        v2 = load_pack(folder)
        assert import_pack(conn, v2, GeoIndex(v2)).imported
        active = conn.execute(
            "SELECT version FROM boundary_sets WHERE set_code = 'sh-test' AND active"
        ).fetchall()
        assert active == [(2,)]
        pudong = conn.execute(
            "SELECT name, geometry->>'type' FROM boundaries WHERE set_code = 'sh-test' "
            "AND version = 2 AND layer = 'district' AND code = '310115'"
        ).fetchone()
        assert pudong == ("浦东新区", "MultiPolygon")
        conn.execute("DELETE FROM boundary_sets WHERE set_code = 'sh-test'")
        conn.commit()


def test_grafana_reader_can_read_boundaries(stack: Settings) -> None:
    reader = stack.model_copy(
        update={"db_user": "grafana_reader", "db_password": stack.grafana_reader_password}
    ).conninfo()
    with psycopg.connect(reader) as conn:
        conn.execute("SELECT count(*) FROM boundaries").fetchone()
