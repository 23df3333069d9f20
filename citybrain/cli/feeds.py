"""`citybrain feeds list | validate | test`: feed definitions; `feeds token` (the ingest
tokens of HTTP feeds) is `citybrain.cli.feed_tokens`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from citybrain.cli import feed_tokens
from citybrain.cli.common import cli_settings, fail

if TYPE_CHECKING:
    from citybrain.feeds.definition import Feed

app = typer.Typer(
    help="Feed definitions: list, validate, test; ingest tokens.", no_args_is_help=True
)
app.add_typer(feed_tokens.app, name="token")  # ingest tokens of the feeds that come by HTTP


@app.command("list")
def feeds_list() -> None:
    """The feeds the worker will run: built-in ones and those in CITYBRAIN_FEEDS_DIR."""
    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import feed_folders, load_feeds, with_city_devices

    s = cli_settings()
    try:
        feeds = with_city_devices(load_feeds(*feed_folders(s.feeds_dir)), s.city_pack)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    for feed in feeds:
        d = feed.definition
        kinds = "+".join(
            k for k, on in (("events", d.event is not None), ("readings", bool(d.readings))) if on
        )
        via: str = d.transport_kind
        if d.mqtt is not None:
            via = f"mqtt {d.mqtt.topic}"
        typer.echo(
            f"{d.feed:<16} {d.source_kind:<8} {d.source.topic:<24} {via:<24} {kinds:<16} "
            f"{len(d.alarms)} alarm rule(s)  {feed.path}"
        )


@app.command("validate")
def feeds_validate(files: list[str]) -> None:
    """Validate feed files; each error names the file, line and field."""
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import load_feed

    failed = False
    loaded = []
    for name in files:
        try:
            feed = load_feed(Path(name))
            loaded.append(feed)
            via = feed.definition.transport_kind
            typer.echo(f"{name}: ok ({feed.name} on {feed.topic}, by {via})")
        except ConfigError as exc:
            failed = True
            typer.secho(str(exc), fg="red", err=True)
    if not failed:
        failed = not _fit_with_installed(loaded)
    if failed:
        raise typer.Exit(1)


def _fit_with_installed(feeds: list[Feed]) -> bool:
    """The validated feeds beside the installed ones (built-in and CITYBRAIN_FEEDS_DIR; a
    file given here replaces the installed feed of its name): names, raw topics and MQTT
    topic filters must not clash."""
    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import check_together, feed_folders, load_feeds

    given = {f.name for f in feeds} | {f.path.resolve() for f in feeds}
    try:
        installed = load_feeds(*feed_folders(cli_settings().feeds_dir))
        others = [f for f in installed if f.name not in given and f.path.resolve() not in given]
        check_together(others + feeds)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        return False
    return True


@app.command("test")
def feeds_test(
    file: Annotated[str, typer.Argument(help="Feed definition file.")],
    samples: Annotated[str | None, typer.Argument(help="JSONL of payloads.")] = None,
) -> None:
    """Run sample payloads through the feed: print the canonical events, or why each
    sample is rejected."""
    from datetime import UTC, datetime
    from pathlib import Path

    import orjson

    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import load_feed
    from citybrain.feeds.pipeline import normalize_batch
    from citybrain.feeds.samples import read_samples
    from citybrain.geo.address import load_gazetteer
    from citybrain.geo.geotag import Geotagger
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import load_pack

    try:
        feed = load_feed(Path(file))
        sample_path = Path(samples) if samples else feed.sample_path()
        if sample_path is None:
            raise ConfigError(f"{file}: no samples given and none declared")
        records = read_samples(feed, sample_path)
        pack = load_pack(cli_settings().city_pack)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    out = normalize_batch(feed, records, tagger, {}, datetime.now(UTC))
    rejected = dict(out.rejects)
    by_line: dict[int, list[str]] = {}
    for event in out.events:
        by_line.setdefault(event.raw_ref.offset, []).append(
            orjson.dumps(event.to_dict(), option=orjson.OPT_INDENT_2).decode()
        )
    for index, record in enumerate(records):
        where = f"{sample_path}:{record.offset}"
        if index in rejected:
            reject = rejected[index]
            typer.secho(f"{where}: REJECTED {reject.reason}: {reject}", fg="red")
            continue
        events = by_line.get(record.offset, [])
        typer.echo(f"{where}: ok, {len(events)} event(s)")
        for text in events:
            typer.echo(text)
    typer.echo(
        f"{len(records)} samples: {len(records) - len(rejected)} ok, "
        f"{len(rejected)} rejected; {len(out.events)} events, "
        f"{len(out.readings)} readings"
    )
