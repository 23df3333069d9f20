"""Commands plugged in by entry points (`citybrain.commands`): a Typer app is a group, a
function a command, only the invoked one is imported, and without the development tools
their command names say, in Chinese and English, how to install them and exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint

import pytest
import typer
from typer.testing import CliRunner

from citybrain.cli import build_app, plugins
from citybrain.settings import PROJECT_ROOT

runner = CliRunner()
HERE = __name__

group = typer.Typer(help="A plugged-in group.", no_args_is_help=True)


@group.command("hello")
def group_hello() -> None:
    typer.echo("hello from the group")


def hello(name: str = "city") -> None:
    """A plugged-in command."""
    typer.echo(f"hello {name}")


def point(name: str, attr: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{HERE}:{attr}", group=plugins.GROUP)


def app_with(argv: list[str], points: list[EntryPoint]) -> typer.Typer:
    app = build_app()
    plugins.plug_in(app, argv, points)
    return app


@pytest.mark.parametrize(
    "argv",
    [
        ["bench"],
        ["bench", "store", "--rows", "5"],
        ["chaos", "-s", "poison", "--scale", "0.2"],
        ["simulate", "--rate", "10"],
        ["correlate", "accuracy"],
        ["bench", "--help"],
    ],
)
def test_without_the_tools_their_commands_say_how_to_install_them(argv: list[str]) -> None:
    result = runner.invoke(app_with(argv, []), argv)
    assert result.exit_code == plugins.EXIT_NOT_INSTALLED == 2, result.output
    chinese, english = result.output.strip().splitlines()
    assert "未安装" in chinese and "pip install -e ./tools" in chinese
    assert f"`citybrain {argv[0]}`" in english and "not installed" in english
    assert "pip install -e ./tools" in english


def test_without_the_tools_the_runtime_commands_still_run() -> None:
    result = runner.invoke(app_with(["routes", "check"], []), ["routes", "check"])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(app_with([], []), ["--help"])
    assert listing.exit_code == 0 and "not installed" in listing.output


def test_a_typer_app_is_a_group_and_a_function_a_command() -> None:
    points = [point("greet", "group"), point("hello", "hello")]
    app = app_with([], points)
    assert runner.invoke(app, ["greet", "hello"]).output == "hello from the group\n"
    assert runner.invoke(app, ["hello", "--name", "Shanghai"]).output == "hello Shanghai\n"


def test_only_the_invoked_command_is_loaded() -> None:
    points = [point("greet", "group"), point("broken", "no_such_attribute")]
    app = build_app()
    assert plugins.plug_in(app, ["greet", "hello"], points) == ["greet"]
    assert plugins.plug_in(build_app(), ["worker"], points) == []  # nothing imported


def test_a_broken_plug_in_fails_its_own_command_but_not_the_listing() -> None:
    points = [point("greet", "group"), point("broken", "no_such_attribute")]
    with pytest.raises(AttributeError):
        plugins.plug_in(build_app(), ["broken"], points)
    app = build_app()
    assert plugins.plug_in(app, [], points) == ["greet"]
    assert runner.invoke(app, ["--help"]).exit_code == 0


def test_an_entry_point_that_is_no_command_is_refused() -> None:
    with pytest.raises(TypeError, match="a Typer app or a function"):
        plugins.plug_in(build_app(), ["odd"], [point("odd", "HERE")])


def test_the_tools_declare_exactly_the_tool_commands() -> None:
    declared = tomllib.loads((PROJECT_ROOT / "tools" / "pyproject.toml").read_text())
    names = set(declared["project"]["entry-points"][plugins.GROUP])
    assert names == set(plugins.TOOL_COMMANDS)


def test_the_installed_tools_are_reachable_from_the_citybrain_command() -> None:
    """The development install (README): `citybrain bench` is the tools' group."""
    if not plugins.installed("bench"):
        pytest.skip("citybrain-tools is not installed (pip install -e ./tools)")
    done = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "e2e" in done.stdout and "normalize" in done.stdout
