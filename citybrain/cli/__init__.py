"""The `citybrain` command: `build_app` puts together the command modules of this package
(one per command group) and the commands plugged in from other distributions
(`citybrain.cli.plugins`: the development tools); `main` is the console entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from citybrain.cli import (
    api,
    bridge,
    db,
    departments,
    doctor,
    feeds,
    geo,
    grafana,
    plugins,
    privacy,
    routes,
    run,
    settings,
    stack,
    worker,
)


def build_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """The command line; with `argv`, also the plugged-in command it invokes (every one when
    it names none) and the stand-ins of the development tools when they are not installed."""
    app = typer.Typer(
        name="citybrain",
        help="Event-stream platform for city operations centers.",
        no_args_is_help=True,
        add_completion=False,
    )
    app.command()(worker.worker)
    app.command()(run.run)
    app.command()(api.api)
    app.command()(doctor.doctor)
    app.command("settings")(settings.show_settings)
    app.add_typer(stack.app, name="stack")
    app.add_typer(bridge.app, name="bridge")
    app.add_typer(feeds.app, name="feeds")
    app.add_typer(geo.app, name="geo")
    app.add_typer(routes.app, name="routes")
    app.add_typer(grafana.app, name="grafana")
    app.add_typer(departments.app, name="departments")
    app.add_typer(db.app, name="db")
    app.add_typer(privacy.app, name="privacy")
    if argv is not None:
        plugins.plug_in(app, argv)
    return app


#: the runtime's own commands (tests and documentation read it; `main` adds the plug-ins)
app = build_app()


def main() -> None:
    """Console entry point."""
    build_app(sys.argv[1:])(prog_name="citybrain")
