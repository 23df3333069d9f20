"""`citybrain feeds token create | rotate | revoke | list`: the ingest tokens with which a
vendor POSTs one feed's records to `/ingest/v1/{feed}` (the feed declared `transport:
http`). The token is printed once; only its hash is stored."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings, fail

app = typer.Typer(
    help="Create, rotate, revoke and list the ingest tokens of HTTP feeds.", no_args_is_help=True
)
Vendor = Annotated[
    str,
    typer.Option("--vendor", help="Who sends the feed (the token's label).", show_default=False),
]


def _http_feed(name: str) -> None:
    """Exit 1 unless `name` is an installed feed declared `transport: http`."""
    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import feed_folders, load_feeds

    try:
        feeds = {f.name: f for f in load_feeds(*feed_folders(cli_settings().feeds_dir))}
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    http = sorted(n for n, f in feeds.items() if f.definition.http is not None)
    if name not in feeds:
        raise fail(f"unknown feed {name!r}; feeds taking HTTP: {', '.join(http) or 'none'}")
    if name not in http:
        raise fail(
            f"feed {name!r} comes by {feeds[name].definition.transport_kind}, not HTTP: declare"
            f" `transport: http` in {feeds[name].path}"
        )


def _issue(feed: str, vendor: str, rotate: bool) -> None:
    from citybrain.api.ingest_store import store_ingest_token
    from citybrain.api.tokens import new_token
    from citybrain.db.connect import connect

    if not vendor.strip():
        raise fail("--vendor names who sends the feed")
    _http_feed(feed)
    token = new_token()
    with connect(cli_settings()) as conn:
        revoked = store_ingest_token(conn, token, feed, vendor.strip(), rotate)
    typer.echo(token.plain)
    typer.secho(
        f"ingest token {token.token_id} for {vendor.strip()} on feed {feed}: shown once, store"
        " it now" + (f"; revoked {', '.join(revoked)}" if revoked else ""),
        fg="yellow",
        err=True,
    )


@app.command("create")
def token_create(
    feed: Annotated[str, typer.Argument(help="The feed (declared `transport: http`).")],
    vendor: Vendor,
) -> None:
    """Create an ingest token for a vendor and a feed (printed once; only its hash is
    stored)."""
    _issue(feed, vendor, rotate=False)


@app.command("rotate")
def token_rotate(
    feed: Annotated[str, typer.Argument(help="The feed (declared `transport: http`).")],
    vendor: Vendor,
) -> None:
    """A new ingest token for the vendor and feed; the vendor's other tokens for the feed
    are revoked."""
    _issue(feed, vendor, rotate=True)


@app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke an ingest token: its requests get 401 from now on."""
    from citybrain.api.ingest_store import revoke_ingest_token
    from citybrain.db.connect import connect

    with connect(cli_settings()) as conn:
        done = revoke_ingest_token(conn, token_id)
    if not done:
        raise fail(f"no active ingest token {token_id}")
    typer.echo(f"revoked {token_id}")


@app.command("list")
def token_list() -> None:
    """Every ingest token: id, feed, vendor, state, last use."""
    from citybrain.api.ingest_store import ingest_tokens
    from citybrain.db.connect import connect

    with connect(cli_settings()) as conn:
        rows = ingest_tokens(conn)
    for token_id, feed, vendor, created, used, revoked in rows:
        state = f"revoked {revoked:%Y-%m-%d}" if revoked else "active"
        last = f"{used:%Y-%m-%d %H:%M}" if used else "never"
        typer.echo(
            f"{token_id}  {feed:<16} {state:<18} created {created:%Y-%m-%d}"
            f"  last used {last}  {vendor}"
        )
