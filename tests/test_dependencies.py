"""Every third-party module the code imports is declared by the distribution that ships
the code: the runtime's in citybrain's dependencies, the tests' in citybrain's `dev`
extra (or the runtime's), the tools' in citybrain-tools' (or the runtime's). A module
that is only installed because something else pulls it in breaks on the day that
something stops pulling it in."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
OWN = {"citybrain", "citybrain_tools", "tests"}


def imported(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(dist: str, extra: str | None = None) -> set[str]:
    out = set()
    for req in requires(dist) or []:
        name, _, marker = req.partition(";")
        in_extra = f'extra == "{extra}"' in marker if extra else "extra ==" not in marker
        if in_extra:
            out.add(normal(re.split(r"[\s\[<>=!~(]", name.strip(), maxsplit=1)[0]))
    return out


RUNTIME = declared("citybrain")


@pytest.mark.parametrize(
    ("folders", "allowed"),
    [
        (["citybrain", "streams", "agents", "schemas"], RUNTIME),
        (["tests"], RUNTIME | declared("citybrain", "dev") | declared("citybrain-tools")),
        (["tools/citybrain_tools"], RUNTIME | declared("citybrain-tools")),
    ],
)
def test_every_imported_distribution_is_declared(folders: list[str], allowed: set[str]) -> None:
    dists = packages_distributions()
    missing = {}
    for folder in folders:
        for module in imported(ROOT / folder):
            owners = {normal(d) for d in dists.get(module, [module])}
            if not owners & allowed:
                missing[module] = sorted(owners)
    assert not missing, f"imported but not declared: {missing}"


def test_the_lock_pins_every_declared_distribution_at_the_installed_version() -> None:
    """bootstrap installs with requirements.lock as constraints: a fresh machine gets the
    versions these tests ran on."""
    from importlib.metadata import version

    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            lock[normal(name)] = pinned
    wanted = RUNTIME | declared("citybrain", "dev") | declared("citybrain-tools")
    wanted -= {"citybrain"}
    assert not wanted - set(lock), f"not in requirements.lock: {sorted(wanted - set(lock))}"
    stale = {n: (lock[n], version(n)) for n in wanted if lock[n] != version(n)}
    assert not stale, f"requirements.lock differs from what is installed: {stale}"
