"""Commands from other distributions: each entry point of the `citybrain.commands` group
is a command of that name (a Typer app: a command group; a function: a command). The
development tools (citybrain-tools, `pip install -e ./tools`) plug in `bench`, `chaos`,
`correlate` and `simulate` this way; when they are not installed, those names print how to
install them and exit 2. An entry point is imported only when its command runs (or for the
list of commands), so that a worker does not import the tools."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer

GROUP = "citybrain.commands"
#: the commands the development tools provide
TOOL_COMMANDS = ("bench", "chaos", "correlate", "simulate")
EXIT_NOT_INSTALLED = 2
NOT_INSTALLED = (
    "`citybrain {name}` 属于开发工具 citybrain-tools（基准测试、故障注入、城市模拟器），"
    "当前未安装。请在仓库根目录安装：pip install -e ./tools"
    '（开发安装：pip install -e ".[dev]" -e ./tools）。\n'
    "`citybrain {name}` is one of the development tools (citybrain-tools: benchmarks, fault"
    " injection, the city simulator), which are not installed. Install them from the"
    ' repository root: pip install -e ./tools (the development install: pip install -e ".[dev]"'
    " -e ./tools)."
)


def found() -> list[EntryPoint]:
    """The installed entry points of the group (metadata only: nothing is imported)."""
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def installed(name: str) -> bool:
    return any(ep.name == name for ep in found())


def invoked(argv: Sequence[str]) -> str | None:
    """The command named on the command line (None for the list of commands)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def plug_in(
    app: typer.Typer, argv: Sequence[str], points: Iterable[EntryPoint] | None = None
) -> list[str]:
    """Add to `app` the plugged-in command that `argv` invokes (all of them when it names
    none) and a stand-in for each tooling command no entry point provides; the names of the
    commands plugged in."""
    points = found() if points is None else list(points)
    wanted = invoked(argv)
    plugged = []
    for ep in points:
        if wanted is not None and ep.name != wanted:
            continue  # not the command that runs: not imported
        try:
            command = ep.load()
        except Exception as exc:
            if wanted is not None:
                raise  # the command asked for is broken: say why
            # the list of commands is still shown without it
            typer.secho(
                f"cannot load the command {ep.name} ({ep.value}): {exc}", fg="yellow", err=True
            )
            continue
        _add(app, ep.name, command)
        plugged.append(ep.name)
    provided = {ep.name for ep in points}
    for name in TOOL_COMMANDS:
        if name not in provided:
            app.command(
                name,
                help="开发工具，未安装 / development tool, not installed: pip install -e ./tools",
                add_help_option=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_stand_in(name))
    return plugged


def _add(app: typer.Typer, name: str, command: Any) -> None:
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=name)
    elif callable(command):
        app.command(name)(command)
    else:
        raise TypeError(f"{GROUP} entry point {name}: a Typer app or a function, not {command!r}")


def _stand_in(name: str) -> Any:
    def not_installed(ctx: typer.Context) -> None:
        typer.secho(NOT_INSTALLED.format(name=name), fg="red", err=True)
        raise typer.Exit(EXIT_NOT_INSTALLED)

    return not_installed
