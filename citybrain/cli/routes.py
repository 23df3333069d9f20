"""`citybrain routes check | explain`: departments, the routing tree and SLA policies."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from citybrain.cli.common import cli_settings, fail
from citybrain.settings import environment

app = typer.Typer(
    help="Departments, the routing tree and SLA policies: check and explain.",
    no_args_is_help=True,
)


def routing_files(
    departments: str | None, routes: str | None
) -> tuple[Any, Any]:  # (departments path, routes path)
    from pathlib import Path

    from citybrain.dispatch.routing import dispatch_files

    configured = dispatch_files(cli_settings())
    return (
        Path(departments) if departments else configured[0],
        Path(routes) if routes else configured[1],
    )


@app.command("check")
def routes_check(
    departments: Annotated[str | None, typer.Option(help="Departments file.")] = None,
    routes: Annotated[str | None, typer.Option(help="Routes file.")] = None,
    sla: Annotated[str | None, typer.Option(help="SLA policy file.")] = None,
) -> None:
    """Validate departments, routes and the SLA policy; each error names file, line, field."""
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.dispatch.channels import Channels
    from citybrain.dispatch.routing import load_routing
    from citybrain.dispatch.sla import SLA_FILE, load_sla_policy

    dept_path, routes_path = routing_files(departments, routes)
    sla_path = Path(sla) if sla else (cli_settings().sla_file or SLA_FILE)
    try:
        routing = load_routing(dept_path, routes_path)
        policy = load_sla_policy(sla_path)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    channels = Channels.of(routing, environment())
    typer.echo(f"{dept_path}: ok ({len(routing.by_code)} departments)")
    typer.echo(f"{routes_path}: ok (operations center: {routing.operations_center})")
    typer.echo(f"{sla_path}: ok ({len(policy.categories)} categories + default)")
    for hook in channels.disabled:
        typer.secho(f"channel off until its variable is set: {hook}", fg="yellow")


@app.command("explain")
def routes_explain(
    event_file: Annotated[str, typer.Argument(help="A canonical event or incident (JSON).")],
    departments: Annotated[str | None, typer.Option(help="Departments file.")] = None,
    routes: Annotated[str | None, typer.Option(help="Routes file.")] = None,
) -> None:
    """Print the route an event or incident takes, and why (jurisdictions from the city pack
    when the file does not give them)."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.dispatch.places import Jurisdictions
    from citybrain.dispatch.plan import IncidentView
    from citybrain.dispatch.routing import RouteFacts, load_routing
    from citybrain.geo.pack import load_pack

    path = Path(event_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise fail(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise fail(f"{path}:1: expected a JSON object")
    try:
        facts = RouteFacts.from_event_json(data)
    except (ValueError, KeyError) as exc:
        raise fail(f"{path}: {exc}") from exc
    if not facts.jurisdiction:
        zones = Jurisdictions(load_pack(cli_settings().city_pack))(
            IncidentView(
                incident_id="-",
                category=facts.category,
                priority=facts.priority,
                status="open",
                first_seen=datetime.now(UTC),
                last_seen=datetime.now(UTC),
                reports_total=1,
                district=facts.district,
                lon=facts.lon,
                lat=facts.lat,
            )
        )
        facts = RouteFacts(
            facts.category, facts.priority, facts.district, zones, facts.lon, facts.lat
        )
    try:
        routing = load_routing(*routing_files(departments, routes))
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    typer.echo(routing.explain(routing.route(facts)))
