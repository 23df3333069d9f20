"""`citybrain stack up | down | status`: the local stack without Docker (Kafka, PostgreSQL)."""

from __future__ import annotations

import typer

from citybrain.cli.common import cli_settings, fail
from citybrain.stack.process import ServiceStatus

app = typer.Typer(
    help="The local stack without Docker: Kafka (KRaft) and PostgreSQL.", no_args_is_help=True
)


@app.command("up")
def stack_up() -> None:
    """Start Kafka and PostgreSQL (installing/resolving them first if needed). Idempotent."""
    from citybrain.stack import StackError
    from citybrain.stack import up as stack_up_

    settings = cli_settings()
    typer.echo(
        f"starting postgres on 127.0.0.1:{settings.db_port} and kafka on "
        f"{settings.kafka_bootstrap_servers} (data in {settings.data_dir}) ..."
    )
    try:
        statuses = stack_up_(settings)
    except StackError as exc:
        raise fail(str(exc)) from exc
    _print_status(statuses)


@app.command("down")
def stack_down() -> None:
    """Stop Kafka, then PostgreSQL."""
    from citybrain.stack import StackError, down

    try:
        down(cli_settings())
    except StackError as exc:
        raise fail(str(exc)) from exc
    typer.echo("stack stopped")


@app.command("status")
def stack_status() -> None:
    """Show each service: address, version, broker id, TimescaleDB availability."""
    from citybrain.stack import status

    statuses = status(cli_settings())
    _print_status(statuses)
    if not all(s.running for s in statuses):
        raise typer.Exit(1)


def _print_status(statuses: list[ServiceStatus]) -> None:
    for s in statuses:
        state = typer.style("running", fg="green") if s.running else typer.style("down", fg="red")
        typer.echo(f"{s.name:<9} {state:<8} {s.address}")
        for key, value in s.details.items():
            typer.echo(f"    {key}: {value}")
        if s.log_file:
            typer.echo(f"    log: {s.log_file}")
