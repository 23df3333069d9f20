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
    storage_mode: Annotated[
        str,
        typer.Option(
            help="timescale or plain: sets the datasource's timescaledb flag (time_bucket or "
            "not); auto reads the mode `db migrate` recorded in the database."
        ),
    ] = "auto",
) -> None:
    """Create or update the citybrain folder, datasource and dashboards in a Grafana
    (one that is not also provisioned from these files)."""
    import os

    from citybrain.grafana.push import DASHBOARDS_DIR, DATASOURCE_FILE, PushError, push

    if storage_mode not in ("auto", "timescale", "plain"):
        raise fail(f"--storage-mode: {storage_mode!r} is not auto, timescale or plain")
    mode = storage_mode if storage_mode != "auto" else _recorded_mode()
    try:
        push(
            url,
            token,
            DASHBOARDS_DIR,
            DATASOURCE_FILE,
            os.environ,
            dry_run=dry_run,
            echo=typer.echo,
            timescaledb=mode == "timescale",
        )
    except PushError as exc:
        raise fail(str(exc)) from exc


def _recorded_mode() -> str:
    """The storage mode `db migrate` recorded (timescale or plain)."""
    from citybrain.cli.common import cli_settings
    from citybrain.db.connect import connect
    from citybrain.db.migrate import recorded_mode

    try:
        with connect(cli_settings(), connect_timeout=5) as conn:
            mode = recorded_mode(conn)
    except Exception as exc:
        raise fail(
            f"cannot read the storage mode from the database ({exc}); run `citybrain db "
            "migrate` first or pass --storage-mode timescale|plain"
        ) from exc
    if mode is None:
        raise fail("the database is not migrated: run `citybrain db migrate` first")
    return mode
