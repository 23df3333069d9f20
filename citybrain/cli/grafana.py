"""`citybrain grafana push`: the folder, datasource and dashboards into a Grafana."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import fail

app = typer.Typer(help="Grafana: dashboards as code.", no_args_is_help=True)


@app.command("push")
def grafana_push(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. http://127.0.0.1:3000.")],
    token: Annotated[
        str,
        typer.Option(
            envvar="CITYBRAIN_GRAFANA_TOKEN",
            show_envvar=True,
            help="Grafana service-account token (Editor or Admin role).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
) -> None:
    """Create or update the citybrain folder, datasource and dashboards in a Grafana
    (one that is not also provisioned from these files)."""
    import os

    from citybrain.grafana.push import DASHBOARDS_DIR, DATASOURCE_FILE, PushError, push

    try:
        push(
            url,
            token,
            DASHBOARDS_DIR,
            DATASOURCE_FILE,
            os.environ,
            dry_run=dry_run,
            echo=typer.echo,
        )
    except PushError as exc:
        raise fail(str(exc)) from exc
