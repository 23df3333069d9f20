"""The runtime apart from the tooling: importing every module of the installed `citybrain`
package (in a fresh interpreter) loads no module of citybrain_tools and no top-level
`streams`, `agents` or `schemas`; the runtime's source imports citybrain_tools nowhere but
in the command line's plug-in loader; and the runtime's own tests (tests/citybrain) do not
need the tools."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import citybrain
from citybrain.settings import PROJECT_ROOT

TOOLS = "citybrain_tools"
GENERIC = ("streams", "agents", "schemas")
#: the only runtime module that may name the tools: it loads them by entry points
PLUG_IN_LOADER = Path(citybrain.__file__).parent / "cli" / "plugins.py"

PROBE = """
import importlib, json, pkgutil, sys, traceback
import citybrain

failed = {}


def note(name):
    failed[name] = traceback.format_exc(limit=3)


for info in pkgutil.walk_packages(citybrain.__path__, "citybrain.", onerror=note):
    if info.name in sys.modules:
        continue
    try:
        importlib.import_module(info.name)
    except Exception:
        note(info.name)
print(json.dumps({"loaded": sorted(sys.modules), "failed": failed}))
"""


def _imports_everything(tmp: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "CITYBRAIN_DATA_DIR": str(tmp / "data"),
        "CITYBRAIN_LOG_DIR": str(tmp / "log"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp,  # not the repository: a top-level `streams` import would not resolve there
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_every_runtime_module_loads_no_tool_and_no_generic_package(
    tmp_path: Path,
) -> None:
    got = _imports_everything(tmp_path)
    assert got["failed"] == {}, "\n".join(f"{k}:\n{v}" for k, v in dict(got["failed"]).items())
    loaded = list(got["loaded"])  # type: ignore[call-overload]
    assert "citybrain.cli" in loaded and "citybrain.streams" in loaded  # it did walk the package
    assert [m for m in loaded if m.split(".")[0] == TOOLS] == []
    assert [m for m in loaded if m.split(".")[0] in GENERIC] == []


def _python_files(root: Path) -> Iterator[Path]:
    for folder, _, files in os.walk(root, followlinks=True):  # streams/, agents/, schemas/ too
        yield from (Path(folder) / f for f in files if f.endswith(".py"))


def _names_the_tools(path: Path, strings: bool = True) -> list[str]:
    """Imports of citybrain_tools, and (`strings`) strings that name one of its modules."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if node.value.startswith(TOOLS) else []
        found += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] == TOOLS]
    return found


def test_the_runtime_source_imports_the_tools_only_in_the_plug_in_loader() -> None:
    root = Path(citybrain.__file__).parent
    found = [
        hit
        for path in _python_files(root)
        if path.resolve() != PLUG_IN_LOADER.resolve()
        for hit in _names_the_tools(path)
    ]
    assert found == []


def test_the_runtime_tests_do_not_need_the_tools() -> None:
    """tests/citybrain tests the runtime alone; the tools' tests are under tests/tools."""
    tests = PROJECT_ROOT / "tests" / "citybrain"
    assert [hit for path in _python_files(tests) for hit in _names_the_tools(path, False)] == []
