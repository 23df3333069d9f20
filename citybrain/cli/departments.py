"""`citybrain departments token create | rotate | revoke | list`: the API tokens of
departments, the operations center and Open311 apps."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings, fail
from citybrain.cli.routes import routing_files

app = typer.Typer(help="Departments' API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Create, rotate, revoke and list API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _issue_token(role: str, department: str | None, label: str, rotate: bool) -> None:
    from citybrain.api.store import store_token
    from citybrain.api.tokens import new_token
    from citybrain.db.connect import connect

    s = cli_settings()
    if department is not None:
        from citybrain.dispatch.routing import load_routing

        known = load_routing(*routing_files(None, None)).by_code
        if department not in known:
            raise fail(f"unknown department {department!r}; known: {', '.join(sorted(known))}")
    token = new_token()
    with connect(s) as conn:
        revoked = store_token(conn, token, role, department, label, rotate)  # type: ignore[arg-type]
    typer.echo(token.plain)
    typer.secho(
        f"token {token.token_id} for {department or role}: shown once, store it now"
        + (f"; revoked {', '.join(revoked)}" if revoked else ""),
        fg="yellow",
        err=True,
    )


@token_app.command("create")
def token_create(
    department: Annotated[str | None, typer.Argument(help="Department code.")] = None,
    operations: Annotated[
        bool, typer.Option("--operations", help="An operations-center token (sees everything).")
    ] = False,
    open311: Annotated[
        bool, typer.Option("--open311", help="An Open311 api_key for a citizens' app.")
    ] = False,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create a token (printed once; only its hash is stored)."""
    if operations + open311 + (department is not None) != 1:
        raise fail("give a department code, or --operations, or --open311")
    role = "operations" if operations else "open311" if open311 else "department"
    _issue_token(role, department, label, rotate=False)


@token_app.command("rotate")
def token_rotate(
    department: Annotated[str, typer.Argument(help="Department code.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """A new token for the department; its other tokens are revoked."""
    _issue_token("department", department, label, rotate=True)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    from citybrain.db.connect import connect

    with connect(cli_settings()) as conn:
        row = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL"
            " RETURNING token_id",
            (token_id,),
        ).fetchone()
    if row is None:
        raise fail(f"no active token {token_id}")
    typer.echo(f"revoked {token_id}")


@token_app.command("list")
def token_list() -> None:
    from citybrain.db.connect import connect

    with connect(cli_settings()) as conn:
        rows = conn.execute(
            "SELECT token_id, role, coalesce(department, '-'), label, created_at, last_used_at,"
            " revoked_at FROM api_tokens ORDER BY created_at"
        ).fetchall()
    for r in rows:
        state = f"revoked {r[6]:%Y-%m-%d}" if r[6] else "active"
        used = f"{r[5]:%Y-%m-%d %H:%M}" if r[5] else "never"
        typer.echo(f"{r[0]}  {r[1]:<10} {r[2]:<20} {state:<18} last used {used}  {r[3]}")


@app.command("test")
def departments_test(
    department: Annotated[str, typer.Argument(help="The department's code.")],
) -> None:
    """Send a test message through every channel of a department (its Kafka topic, webhooks,
    group robots, mailboxes) and print each result; exit 1 if any failed."""
    import asyncio

    from citybrain.agents.dispatch.notify.check import send_test_messages

    s = cli_settings()
    try:
        results = asyncio.run(send_test_messages(s, department))
    except KeyError as exc:
        raise fail(str(exc.args[0])) from exc
    failed = 0
    for destination, outcome in results:
        ok = outcome.status is not None and 200 <= outcome.status < 300
        failed += not ok
        typer.secho(
            f"{'ok    ' if ok else 'FAILED'} {destination}: {outcome.describe()}",
            fg="green" if ok else "red",
        )
    if not results:
        raise fail(f"{department} has no channel this machine can use (see `routes check`)")
    if failed:
        raise typer.Exit(1)
