"""`citybrain stack up | down | status`: the local stack without Docker (Kafka, PostgreSQL,
and mosquitto when a feed comes by MQTT)."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings, fail
from citybrain.stack.process import ServiceStatus

app = typer.Typer(
    help="The local stack without Docker: Kafka (KRaft), PostgreSQL and, when a feed comes by "
    "MQTT, mosquitto.",
    no_args_is_help=True,
)


@app.command("up")
def stack_up(
    brokers: Annotated[
        int,
        typer.Option(
            "--brokers",
            min=0,
            help="Kafka brokers: 1, or 3 for a replicated cluster (0: as last started, else "
            "CITYBRAIN_KAFKA_BROKERS).",
        ),
    ] = 0,
    sasl: Annotated[
        bool,
        typer.Option("--sasl", help="Add a SASL_SSL listener (SCRAM-SHA-512) to every broker."),
    ] = False,
) -> None:
    """Start Kafka, PostgreSQL and (when a feed comes by MQTT) mosquitto, installing or
    resolving them first if needed. Idempotent."""
    from citybrain.stack import KafkaService, Shape, StackError, wants_mqtt
    from citybrain.stack import up as stack_up_

    settings = cli_settings()
    last = Shape.read(settings.data_dir)
    count = brokers or (last.brokers if last else settings.kafka_brokers)
    if count not in (1, 3):
        raise fail(f"--brokers {count}: the local stack runs 1 broker or a cluster of 3")
    shape = Shape(count, sasl or bool(last and last.sasl and not brokers))
    kafka = KafkaService(settings, shape)
    typer.echo(
        f"starting postgres on 127.0.0.1:{settings.db_port} and {count} kafka broker(s) on "
        f"{kafka.address} (data in {settings.data_dir}) ..."
    )
    if wants_mqtt(settings):
        typer.echo(f"and mosquitto (MQTT) on {settings.mqtt_host}:{settings.mqtt_port} ...")
    try:
        statuses = stack_up_(settings, shape)
    except StackError as exc:
        raise fail(str(exc)) from exc
    _print_status(statuses)
    if count > 1 and settings.kafka_bootstrap_servers != kafka.address:
        typer.echo(f"clients: export CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS={kafka.address}")
    if shape.sasl:
        from citybrain.stack.kafka_tls import tls_dir

        typer.echo(f"SASL_SSL clients: the settings in {tls_dir(settings) / 'client.env'}")


@app.command("down")
def stack_down() -> None:
    """Stop mosquitto, Kafka, then PostgreSQL."""
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
