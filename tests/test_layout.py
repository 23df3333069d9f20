"""The layout holds: imports go downward (no domain module imports a stage or the engine
seam; the engine seam imports no stage), agent modules are thin, and the README's report
path names at most 15 files, each of which exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOMAIN = ["core", "geo", "feeds", "correlation", "dispatch", "grafana"]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("domain", DOMAIN)
def test_no_domain_module_imports_a_stage_or_the_engine(domain: str) -> None:
    for path in modules(ROOT / "citybrain" / domain):
        wrong = {
            m
            for m in imported(path)
            if m.startswith(("citybrain.agents", "citybrain.streams", "faust", "psycopg"))
        }
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_engine_seam_imports_no_stage() -> None:
    for path in modules(ROOT / "streams"):
        wrong = {m for m in imported(path) if m.startswith("citybrain.agents")}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_a_stage_imports_no_other_stage() -> None:
    for folder in (p for p in (ROOT / "agents").iterdir() if p.is_dir() and p.name[0] != "_"):
        for path in modules(folder):
            others = {
                m.split(".")[2]
                for m in imported(path)
                if m.startswith("citybrain.agents.") and m.split(".")[2] != "context"
            }
            assert others <= {folder.name}, f"{path.relative_to(ROOT)} imports {others}"


def test_agent_modules_are_thin() -> None:
    for path in (ROOT / "agents").rglob("*.py"):
        if path.name in ("agent.py", "outbox.py", "status.py", "silence.py"):
            lines = len(path.read_text().splitlines())
            assert lines < 150, f"{path.relative_to(ROOT)}: {lines} lines"


def test_no_agent_uses_a_private_faust_name_or_builds_dead_letter_headers() -> None:
    for path in (ROOT / "agents").rglob("*.py"):
        text = path.read_text()
        assert '"dlq.' not in text, path
        for name in re.findall(r"\.(_[a-z]\w*)", text):
            assert name in ("_client",), f"{path.relative_to(ROOT)} uses {name}"


def test_the_readme_report_path_names_at_most_15_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("**One hotline report")
    block = readme[start : readme.index("```", readme.index("```", start) + 3)]
    files = set(re.findall(r"(?:agents|streams|citybrain)/[\w/]+\.py", block))
    assert 10 <= len(files) <= 15, sorted(files)
    for name in files:
        assert (ROOT / name).is_file(), name
