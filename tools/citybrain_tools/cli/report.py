"""Printing a figures report for the tools' commands: a table with the target's verdict,
or JSON only."""

from __future__ import annotations

from typing import Annotated, Any

import typer

#: the option of every command that prints a report: JSON only, no table
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def print_report(
    data: dict[str, Any],
    json_out: bool,
    target: str | None = None,
    met: bool = True,
    notes: list[str] | None = None,
) -> None:
    """Print a figures report: a table and the target verdict, or JSON only (with the
    verdict in it); a missed target ends the command with exit code 1."""
    import orjson

    from citybrain_tools.bench.report import format_table

    if json_out:
        if target is not None:
            data = {**data, "target": target, "target_met": met}
        typer.echo(orjson.dumps(data).decode())
    else:
        typer.echo(format_table(list(data.items())))
        for note in notes or []:
            typer.echo(f"  {note}")
        if target is not None:
            typer.echo(f"target: {target} -> {'met' if met else 'MISSED'}")
    if target is not None and not met:
        raise typer.Exit(1)
