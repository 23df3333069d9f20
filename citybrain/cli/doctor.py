"""`citybrain doctor`: connectivity and configuration checks, each with its fix."""

from __future__ import annotations

import typer

from citybrain.cli.common import cli_settings


def doctor() -> None:
    """Check connectivity and configuration; exit non-zero saying what is wrong and how."""
    from citybrain.doctor import run_checks

    results = run_checks(cli_settings())
    for check in results:
        mark = typer.style("ok  ", fg="green") if check.ok else typer.style("FAIL", fg="red")
        typer.echo(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            typer.echo(f"       fix: {check.fix}")
    if not all(c.ok for c in results):
        raise typer.Exit(1)
