"""The dashboards in grafana/dashboards type-check against Grafana's published dashboard
schema (`Dashboard` of the npm package @grafana/schema, through the TypeScript compiler:
grafana/check/check.mjs), and follow the project's conventions: stable uids, auto refresh,
every query on the citybrain datasource in raw SQL, and never the personal-data table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from citybrain.settings import PROJECT_ROOT

CHECK_DIR = PROJECT_ROOT / "grafana" / "check"
DASHBOARDS = sorted((PROJECT_ROOT / "grafana" / "dashboards").glob("*.json"))
UIDS = {
    "city-overview": "citybrain-overview",
    "dispatch-sla": "citybrain-dispatch",
    "sensors": "citybrain-sensors",
    "pipeline-health": "citybrain-pipeline",
}
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "citybrain-db"}
VARIABLES = {"district", "category", "department"}


def run_check(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is not installed (deploy/local/bootstrap.sh installs Node packages)"
    assert (CHECK_DIR / "node_modules" / "@grafana" / "schema").is_dir(), (
        "grafana/check/node_modules is missing: run deploy/local/bootstrap.sh"
        " (or: cd grafana/check && npm ci)"
    )
    return subprocess.run(
        [node, str(CHECK_DIR / "check.mjs"), *map(str, files)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


# ---------------------------------------------------------------------------- schema check
def test_every_dashboard_type_checks_against_the_grafana_schema() -> None:
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(DASHBOARDS)} dashboard(s) type-check" in result.stdout


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda d: d["panels"][0].__setitem__("gridPos", "oops"), r"panels\[0\].*gridPos"),
        (lambda d: d.__setitem__("refreshEvery", "10s"), r"refreshEvery"),
        (
            lambda d: d["panels"][0]["fieldConfig"]["defaults"]["thresholds"].__setitem__(
                "mode", "absolut"
            ),
            r"thresholds\.mode.*absolut",
        ),
        (lambda d: d["panels"][0].pop("type"), r"panels\[0\].*Property 'type' is missing"),
    ],
    ids=["gridPos-not-an-object", "unknown-top-level-property", "bad-enum-value", "no-type"],
)
def test_a_broken_dashboard_fails_naming_the_problem(
    tmp_path: Path, breakage: Any, expected: str
) -> None:
    doc = load(PROJECT_ROOT / "grafana" / "dashboards" / "city-overview.json")
    breakage(doc)
    broken = tmp_path / "broken-overview.json"
    broken.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    result = run_check(broken)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "broken-overview.json" in output, output
    assert re.search(expected, output, re.DOTALL), output
    assert not list((CHECK_DIR / "generated").glob("args-*")), "scratch directory left behind"


def test_invalid_json_fails(tmp_path: Path) -> None:
    broken = tmp_path / "truncated.json"
    broken.write_text('{"uid": "x", "panels": [', encoding="utf-8")
    result = run_check(broken)
    assert result.returncode == 1
    assert "truncated.json: not valid JSON" in result.stderr


# ---------------------------------------------------------------------------- conventions
def test_the_four_dashboards_have_their_stable_uids() -> None:
    found = {path.stem: load(path).get("uid") for path in DASHBOARDS}
    assert {k: found.get(k) for k in UIDS} == UIDS
    uids = list(found.values())
    assert len(uids) == len(set(uids)), f"duplicate uids: {found}"
    assert all(isinstance(u, str) and 8 <= len(u) <= 40 for u in uids), found


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_conventions(path: Path) -> None:
    doc = load(path)
    assert doc.get("refresh") == "10s"
    assert doc.get("time") == {"from": "now-6h", "to": "now"}
    assert "citybrain" in doc.get("tags", [])
    assert isinstance(doc.get("schemaVersion"), int)
    ids = [p.get("id") for p in panels(doc)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for var in doc.get("templating", {}).get("list", []):
        assert var["name"] in VARIABLES, var["name"]
        assert var.get("datasource") == DATASOURCE, var["name"]
        assert var.get("multi") is True and var.get("includeAll") is True, var["name"]
    for panel in panels(doc):
        if panel.get("type") == "row":
            continue
        title = panel.get("title")
        assert panel.get("datasource") == DATASOURCE, title
        targets = panel.get("targets")
        assert targets, f"{title}: no targets"
        for target in targets:
            assert target.get("datasource", {}).get("uid") == "citybrain-db", title
            assert target.get("rawQuery") is True and target.get("rawSql", "").strip(), title
            assert target.get("format") in ("table", "time_series"), title
            if target["format"] == "time_series":
                assert re.search(r'\$__timeGroupAlias\(|AS "time"', target["rawSql"]), title
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        assert defaults.get("unit") and defaults.get("thresholds", {}).get("steps"), title


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_only_known_macros_and_variables(path: Path) -> None:
    doc = load(path)
    defined = {v["name"] for v in doc.get("templating", {}).get("list", [])}
    allowed_macros = {"timeFilter", "timeFrom", "timeTo", "timeGroup", "timeGroupAlias"}
    sqls = [t["rawSql"] for p in panels(doc) for t in p.get("targets", [])]
    sqls += [v["query"] for v in doc.get("templating", {}).get("list", [])]
    for sql in sqls:
        assert set(re.findall(r"\$__(\w+)\(", sql)) <= allowed_macros, sql
        names = set(re.findall(r"\$(?!__)\{?(\w+)", sql))
        assert names <= defined, f"undefined variables {names - defined} in {sql}"


def test_no_query_reads_personal_data() -> None:
    for path in DASHBOARDS:
        text = path.read_text(encoding="utf-8").lower()
        assert "personal_contacts" not in text, path.name
        assert "caller_phone" not in text and "caller_name" not in text, path.name


def test_the_reader_role_may_read_exactly_what_the_dashboards_read() -> None:
    """grafana_reader's grants (citybrain.db.roles.DASHBOARD_RELATIONS) are the relations
    the dashboards' queries name: none more (personal data stays out), none fewer."""
    from citybrain.db.roles import DASHBOARD_RELATIONS, PERSONAL_TABLES, READER_RELATIONS

    migrations = " ".join(
        p.read_text() for p in (PROJECT_ROOT / "schemas" / "migrations").glob("*.sql")
    )
    known = set(
        re.findall(
            r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW)(?: IF NOT EXISTS)? ([a-z_0-9]+)",
            migrations,
            re.IGNORECASE,
        )
    )
    named: set[str] = set()
    for path in DASHBOARDS:
        text = json.dumps(load(path))
        named |= {m for m in re.findall(r"(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", text, re.I)}
    assert named & known == DASHBOARD_RELATIONS
    assert not READER_RELATIONS & PERSONAL_TABLES
