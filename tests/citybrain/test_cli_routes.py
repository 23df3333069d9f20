"""`citybrain routes check | explain`: the command line over the routing configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citybrain.cli import app
from citybrain.dispatch.routing import ROUTES_FILE

runner = CliRunner()


def test_check_passes_on_the_shipped_configuration() -> None:
    result = runner.invoke(app, ["routes", "check"])
    assert result.exit_code == 0, result.output
    assert "departments.yaml: ok" in result.output
    assert "operations center: ops-center" in result.output


def test_check_names_the_file_and_line_of_an_unknown_department(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    text = ROUTES_FILE.read_text(encoding="utf-8").replace("lead: municipal", "lead: roads")
    routes.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "lead: roads" in t)
    result = runner.invoke(app, ["routes", "check", "--routes", str(routes)])
    assert result.exit_code == 1
    assert f"{routes}:{line}:" in result.output and "roads" in result.output


@pytest.mark.parametrize(
    ("event", "lead", "helpers"),
    [
        # a canonical event as the normalize stage emits it (layers without the prefix)
        (
            {
                "category": "gas_leak",
                "severity": 1,
                "location": {"district": "310115", "jurisdiction": {"gas": "gas-pudong"}},
            },
            "gas-pudong",
            "fire",
        ),
        # only a district: the zone comes from the city pack's zone definitions
        ({"category": "flooding", "priority": 2, "district": "310104"}, "drain-puxi-central", "-"),
        # a point: the zone comes from the pack's boundaries
        (
            {"category": "water_level", "priority": 3, "lon": 121.55, "lat": 31.22},
            "drain-pudong",
            "-",
        ),
        # no route for the category: the operations center
        ({"category": "other", "priority": 3}, "ops-center", "-"),
    ],
)
def test_explain_prints_the_route_and_why(
    tmp_path: Path, event: dict[str, object], lead: str, helpers: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    result = runner.invoke(app, ["routes", "explain", str(path)])
    assert result.exit_code == 0, result.output
    assert f"lead:     {lead}" in result.output
    assert "why:" in result.output
    assert helpers in result.output.split("helpers:")[1].splitlines()[0]


def test_explain_points_at_the_line_of_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('{\n  "category": "flooding",\n  "priority": \n}', encoding="utf-8")
    result = runner.invoke(app, ["routes", "explain", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: not valid JSON" in result.output
