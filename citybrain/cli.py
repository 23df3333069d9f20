"""The `citybrain` command line: stack, worker, doctor, db, settings."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from citybrain.settings import Settings, get_settings
from citybrain.stack.process import ServiceStatus

if TYPE_CHECKING:
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import CityPack

app = typer.Typer(
    name="citybrain",
    help="Event-stream platform for city operations centers.",
    no_args_is_help=True,
    add_completion=False,
)
stack_app = typer.Typer(
    help="The local stack without Docker: Kafka (KRaft) and PostgreSQL.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema: migrations and status.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
feeds_app = typer.Typer(help="Feed definitions: list, validate, test.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
correlate_app = typer.Typer(help="Correlation of reports into incidents.", no_args_is_help=True)
app.add_typer(correlate_app, name="correlate")
geo_app = typer.Typer(help="City packs and geo-tagging.", no_args_is_help=True)
app.add_typer(geo_app, name="geo")
bench_app = typer.Typer(help="Benchmarks on the real local stack.", no_args_is_help=True)
routes_app = typer.Typer(
    help="Departments, the routing tree and SLA policies: check and explain.",
    no_args_is_help=True,
)
app.add_typer(routes_app, name="routes")
grafana_app = typer.Typer(help="Grafana: dashboards as code.", no_args_is_help=True)
app.add_typer(grafana_app, name="grafana")
departments_app = typer.Typer(help="Departments' API tokens.", no_args_is_help=True)
app.add_typer(departments_app, name="departments")
token_app = typer.Typer(help="Create, rotate, revoke and list API tokens.", no_args_is_help=True)
departments_app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        typer.secho(f"invalid settings:\n{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


# --- stack ---------------------------------------------------------------------------
@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka and PostgreSQL (installing/resolving them first if needed). Idempotent."""
    from citybrain.stack import StackError
    from citybrain.stack import up as stack_up_

    settings = _settings()
    typer.echo(
        f"starting postgres on 127.0.0.1:{settings.db_port} and kafka on "
        f"{settings.kafka_bootstrap_servers} (data in {settings.data_dir}) ..."
    )
    try:
        statuses = stack_up_(settings)
    except StackError as exc:
        raise _fail(str(exc)) from exc
    _print_status(statuses)


@stack_app.command("down")
def stack_down() -> None:
    """Stop Kafka, then PostgreSQL."""
    from citybrain.stack import StackError, down

    try:
        down(_settings())
    except StackError as exc:
        raise _fail(str(exc)) from exc
    typer.echo("stack stopped")


@stack_app.command("status")
def stack_status() -> None:
    """Show each service: address, version, broker id, TimescaleDB availability."""
    from citybrain.stack import status

    statuses = status(_settings())
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


# --- worker --------------------------------------------------------------------------
@app.command()
def worker() -> None:
    """Run the Faust worker with every agent (stops on Ctrl-C / SIGTERM)."""
    settings = _settings()
    from citybrain.logs import configure_logging
    from citybrain.metrics import serve_metrics

    configure_logging(settings.log_level, settings.log_format)
    if settings.worker_nice:
        os.nice(settings.worker_nice)  # threads and children started later inherit it
    try:
        serve_metrics(settings.metrics_port)
    except OSError as exc:
        raise _fail(
            f"cannot serve metrics on 127.0.0.1:{settings.metrics_port} ({exc.strerror}): is "
            "another worker running? Set CITYBRAIN_METRICS_PORT (0 turns metrics off)."
        ) from exc
    import faust

    from citybrain import agents
    from citybrain.streams.app import app as faust_app

    stages = agents.STAGES if settings.stages == "all" else settings.stages.split(",")
    try:
        agents.register(s.strip() for s in stages)
    except ValueError as exc:
        raise _fail(f"CITYBRAIN_STAGES: {exc}") from exc

    from citybrain.streams.runtime import tune_gc

    tune_gc()  # after the agents and their city pack are loaded
    worker_ = faust.Worker(
        faust_app,
        loglevel=settings.log_level.lower(),
        override_logging=False,
    )
    worker_.execute_from_commandline()


@app.command()
def run(
    simulate_rate: Annotated[
        float, typer.Option("--simulate", help="Simulated records/s sent meanwhile (0 = none).")
    ] = 50.0,
) -> None:
    """Start the stack, migrate, import the city pack, run the worker and the city simulator
    in the background, and print a live summary line until Ctrl-C."""
    import subprocess
    import sys

    stack_up()
    db_migrate()
    s = _settings()
    try:
        geo_import(s.city_pack)
    except typer.Exit:
        typer.secho("continuing with the boundary set already stored", fg="yellow", err=True)
    sim_log = s.resolved_log_dir / "simulator.log"
    simulator = None
    if simulate_rate > 0:
        sim_log.parent.mkdir(parents=True, exist_ok=True)
        simulator = subprocess.Popen(  # an hour of traffic, city time 10x faster
            [
                sys.executable,
                "-m",
                "citybrain.cli",
                "simulate",
                "--rate",
                str(simulate_rate),
                "--duration",
                "3600",
                "--speed",
                "10",
                "--truth",
                str(s.resolved_log_dir / "simulator-truth.jsonl"),
            ],
            stdout=sim_log.open("ab"),
            stderr=subprocess.STDOUT,
        )
    worker_log = s.resolved_log_dir / "worker.log"
    worker_proc = subprocess.Popen(
        [sys.executable, "-m", "citybrain.cli", "worker"],
        stdout=worker_log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    api_log = s.resolved_log_dir / "api.log"
    api_proc = subprocess.Popen(
        [sys.executable, "-m", "citybrain.cli", "api"],
        stdout=api_log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    typer.echo(
        "\ncitybrain is running. Where to look next:\n"
        f"  worker log      {worker_log}\n"
        f"  API             http://{s.api_host}:{s.api_port}/docs  (log {api_log})\n"
        "                  tokens: citybrain departments token create <department>\n"
        f"  worker health   http://127.0.0.1:{s.worker_web_port}/\n"
        f"  metrics         http://127.0.0.1:{s.metrics_port}/metrics\n"
        f"  service logs    {s.resolved_log_dir}\n"
        f"  simulator       {sim_log if simulator else 'off (--simulate 0)'}\n"
        f"  database        psql {s.safe_conninfo()}\n"
        "                  e.g. SELECT department, status, count(*) FROM dispatches\n"
        "                  GROUP BY 1, 2;\n"
        "  stack status    citybrain stack status\n"
        "  stop            Ctrl-C here, then `citybrain stack down`\n"
    )
    try:
        _live_summary(s, worker_proc)
    except KeyboardInterrupt:
        typer.echo("\nstopping...")
    finally:
        if simulator is not None:
            simulator.terminate()
        api_proc.terminate()
        worker_proc.terminate()
        for proc in (worker_proc, api_proc):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _live_summary(s: Settings, worker_proc: Any, every: float = 5.0) -> None:
    """One summary line, rewritten every few seconds, until the worker stops."""
    import time

    from citybrain.db.connect import connect
    from citybrain.summary import read_snapshot, summary_line

    url = f"http://127.0.0.1:{s.metrics_port}/metrics"
    before = None
    with connect(s) as conn:
        conn.autocommit = True
        while worker_proc.poll() is None:
            now = read_snapshot(url, conn, time.monotonic())
            typer.echo("\r" + summary_line(before, now), nl=False)
            before = now
            time.sleep(every)
    raise _fail(f"\nthe worker stopped (exit {worker_proc.returncode}); see its log")


# --- api -------------------------------------------------------------------------------
@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address (CITYBRAIN_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CITYBRAIN_API_PORT).")] = None,
) -> None:
    """Serve the department API and Open311 (OpenAPI document at /openapi.json, docs at
    /docs)."""
    import uvicorn

    from citybrain.api.app import create_app
    from citybrain.logs import configure_logging

    s = _settings()
    configure_logging(s.log_level, s.log_format)
    uvicorn.run(create_app(s), host=host or s.api_host, port=port or s.api_port, log_config=None)


def _issue_token(role: str, department: str | None, label: str, rotate: bool) -> None:
    from citybrain.api.store import store_token
    from citybrain.api.tokens import new_token
    from citybrain.db.connect import connect

    s = _settings()
    if department is not None:
        from citybrain.dispatch.routing import load_routing

        known = load_routing(*_routing_files(None, None)).by_code
        if department not in known:
            raise _fail(f"unknown department {department!r}; known: {', '.join(sorted(known))}")
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
        raise _fail("give a department code, or --operations, or --open311")
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

    with connect(_settings()) as conn:
        row = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL"
            " RETURNING token_id",
            (token_id,),
        ).fetchone()
    if row is None:
        raise _fail(f"no active token {token_id}")
    typer.echo(f"revoked {token_id}")


@token_app.command("list")
def token_list() -> None:
    from citybrain.db.connect import connect

    with connect(_settings()) as conn:
        rows = conn.execute(
            "SELECT token_id, role, coalesce(department, '-'), label, created_at, last_used_at,"
            " revoked_at FROM api_tokens ORDER BY created_at"
        ).fetchall()
    for r in rows:
        state = f"revoked {r[6]:%Y-%m-%d}" if r[6] else "active"
        used = f"{r[5]:%Y-%m-%d %H:%M}" if r[5] else "never"
        typer.echo(f"{r[0]}  {r[1]:<10} {r[2]:<20} {state:<18} last used {used}  {r[3]}")


# --- grafana -----------------------------------------------------------------------------
@grafana_app.command("push")
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
        raise _fail(str(exc)) from exc


# --- routes ------------------------------------------------------------------------------
def _routing_files(
    departments: str | None, routes: str | None
) -> tuple[Any, Any]:  # (departments path, routes path)
    from pathlib import Path

    from citybrain.dispatch.routing import DEPARTMENTS_FILE, ROUTES_FILE

    s = _settings()
    return (
        Path(departments) if departments else (s.departments_file or DEPARTMENTS_FILE),
        Path(routes) if routes else (s.routes_file or ROUTES_FILE),
    )


@routes_app.command("check")
def routes_check(
    departments: Annotated[str | None, typer.Option(help="Departments file.")] = None,
    routes: Annotated[str | None, typer.Option(help="Routes file.")] = None,
    sla: Annotated[str | None, typer.Option(help="SLA policy file.")] = None,
) -> None:
    """Validate departments, routes and the SLA policy; each error names file, line, field."""
    import os
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.dispatch.channels import Channels
    from citybrain.dispatch.routing import load_routing
    from citybrain.dispatch.sla import SLA_FILE, load_sla_policy

    dept_path, routes_path = _routing_files(departments, routes)
    sla_path = Path(sla) if sla else (_settings().sla_file or SLA_FILE)
    try:
        routing = load_routing(dept_path, routes_path)
        policy = load_sla_policy(sla_path)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    channels = Channels.of(routing, os.environ)
    typer.echo(f"{dept_path}: ok ({len(routing.by_code)} departments)")
    typer.echo(f"{routes_path}: ok (operations center: {routing.operations_center})")
    typer.echo(f"{sla_path}: ok ({len(policy.categories)} categories + default)")
    for hook in channels.disabled:
        typer.secho(f"webhook off until its secret is set: {hook}", fg="yellow")


@routes_app.command("explain")
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
        raise _fail(f"{path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise _fail(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise _fail(f"{path}:1: expected a JSON object")
    try:
        facts = RouteFacts.from_event_json(data)
    except (ValueError, KeyError) as exc:
        raise _fail(f"{path}: {exc}") from exc
    if not facts.jurisdiction:
        zones = Jurisdictions(load_pack(_settings().city_pack))(
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
        routing = load_routing(*_routing_files(departments, routes))
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(routing.explain(routing.route(facts)))


# --- simulate ----------------------------------------------------------------------------
@app.command()
def simulate(
    rate: Annotated[
        float, typer.Option(help="Records per second (0 = as fast as it goes).")
    ] = 200.0,
    duration: Annotated[float, typer.Option(help="Seconds of sending.")] = 60.0,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same traffic).")] = 7,
    malformed: Annotated[float, typer.Option(help="Fraction of malformed records.")] = 0.0,
    truth: Annotated[str | None, typer.Option(help="Write the ground truth (JSONL) here.")] = None,
) -> None:
    """Realistic raw traffic for every built-in feed and the hotline, into Kafka: background
    telemetry, bursts of related reports for one problem, near-misses, optional malformed
    records, and a ground-truth file."""
    from datetime import timedelta
    from pathlib import Path

    from citybrain.sim.run import build_scenario, send

    settings = _settings()
    events = int(rate * duration) if rate > 0 else int(duration * 1000)
    span = timedelta(seconds=duration * speed)
    records = build_scenario(settings, events, span, seed, malformed)
    typer.echo(f"scenario: {len(records)} records over {span} of city time", err=True)
    result = send(settings, records, rate, Path(truth) if truth else None)
    typer.echo(
        f"sent {result.records} records ({result.problems} problems, "
        f"{result.malformed} malformed) in {result.seconds}s, {result.rate}/s"
        + (f"; ground truth in {result.truth_file}" if result.truth_file else "")
    )


# --- doctor --------------------------------------------------------------------------
@app.command()
def doctor() -> None:
    """Check connectivity and configuration; exit non-zero saying what is wrong and how."""
    from citybrain.doctor import run_checks

    results = run_checks(_settings())
    for check in results:
        mark = typer.style("ok  ", fg="green") if check.ok else typer.style("FAIL", fg="red")
        typer.echo(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            typer.echo(f"       fix: {check.fix}")
    if not all(c.ok for c in results):
        raise typer.Exit(1)


# --- db ------------------------------------------------------------------------------
@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (ordered, recorded, safe to run twice), policies and roles."""
    from citybrain.db.migrate import MigrationError, migrate

    settings = _settings()
    try:
        result = migrate(settings)
    except MigrationError as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:
        raise _fail(f"cannot migrate {settings.safe_conninfo()}: {exc}") from exc
    for m in result.applied:
        typer.echo(f"applied {m.filename}")
    if not result.applied:
        typer.echo("schema is up to date")
    typer.echo(f"mode: {result.mode}; policies and roles applied")


@db_app.command("status")
def db_status() -> None:
    """Schema version, TimescaleDB or plain PostgreSQL mode, table sizes, chunk counts."""
    import psycopg

    from citybrain.db.connect import connect
    from citybrain.db.status import read_status

    settings = _settings()
    try:
        with connect(settings, connect_timeout=5) as conn:
            st = read_status(conn, settings)
    except psycopg.Error as exc:
        raise _fail(f"cannot read {settings.safe_conninfo()}: {exc}") from exc
    ts = (
        f"TimescaleDB {st.timescale_version}"
        if st.timescale_version
        else (
            "TimescaleDB available, not installed"
            if st.timescale_available
            else "TimescaleDB not available"
        )
    )
    typer.echo(f"database: {settings.safe_conninfo()}")
    typer.echo(f"schema version: {st.version}; pending: {', '.join(st.pending) or 'none'}")
    typer.echo(f"mode: {st.mode} ({ts})")
    typer.echo(f"{'table':<20} {'rows (est.)':>12} {'size':>10} {'chunks':>7}")
    for t in st.tables:
        typer.echo(f"{t.name:<20} {t.rows_estimate:>12} {_size(t.total_bytes):>10} {t.chunks:>7}")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@db_app.command("maintain")
def db_maintain() -> None:
    """Plain mode: create partitions ahead, drop expired ones, refresh the dashboard views.
    TimescaleDB mode: refresh the continuous aggregates now (policies do the rest)."""
    from citybrain.db.connect import connect
    from citybrain.db.maintain import maintain, refresh_continuous_aggregates
    from citybrain.db.migrate import recorded_mode

    settings = _settings()
    with connect(settings, autocommit=True) as conn:
        mode = recorded_mode(conn)
        if mode is None:
            raise _fail("the database is not migrated yet: run `citybrain db migrate`")
        if mode == "timescale":
            typer.echo("refreshed " + ", ".join(refresh_continuous_aggregates(conn)))
            return
        report = maintain(conn, mode, settings)
    typer.echo(
        f"partitions created {report.partitions_created}, dropped {report.partitions_dropped}; "
        f"refreshed {', '.join(report.refreshed)}"
    )


# --- feeds ---------------------------------------------------------------------------
@feeds_app.command("list")
def feeds_list() -> None:
    """The feeds the worker will run: built-in ones and those in CITYBRAIN_FEEDS_DIR."""
    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import feed_folders, load_feeds

    try:
        feeds = load_feeds(*feed_folders(_settings().feeds_dir))
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    for feed in feeds:
        d = feed.definition
        kinds = "+".join(
            k for k, on in (("events", d.event is not None), ("readings", bool(d.readings))) if on
        )
        typer.echo(
            f"{d.feed:<16} {d.source_kind:<8} {d.source.topic:<24} {kinds:<16} "
            f"{len(d.alarms)} alarm rule(s)  {feed.path}"
        )


@feeds_app.command("validate")
def feeds_validate(files: list[str]) -> None:
    """Validate feed files; each error names the file, line and field."""
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import load_feed

    failed = False
    for name in files:
        try:
            feed = load_feed(Path(name))
            typer.echo(f"{name}: ok ({feed.name} on {feed.topic})")
        except ConfigError as exc:
            failed = True
            typer.secho(str(exc), fg="red", err=True)
    if failed:
        raise typer.Exit(1)


@feeds_app.command("test")
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
        pack = load_pack(_settings().city_pack)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
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


# --- correlate ---------------------------------------------------------------------------
@correlate_app.command("accuracy")
def correlate_accuracy(
    records: Annotated[int, typer.Option(help="Simulated raw records.")] = 6000,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 11,
    hours: Annotated[float, typer.Option(help="Hours of city time.")] = 6.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Pairwise precision, recall and F1 of the fused incidents on the simulator's ground
    truth (target: F1 >= 0.95 with precision >= 0.97)."""

    from citybrain.correlation.accuracy import as_dict, evaluate

    result = evaluate(records, seed, hours)
    _report(
        as_dict(result),
        json_out,
        "F1 >= 0.95 and precision >= 0.97",
        result.f1 >= 0.95 and result.precision >= 0.97,
    )


def _report(
    data: dict[str, Any],
    json_out: bool,
    target: str | None = None,
    met: bool = True,
    notes: list[str] | None = None,
) -> None:
    """Print a figures report: a table and the target verdict, or JSON only."""
    import orjson

    from citybrain.bench.report import format_table

    if json_out:
        typer.echo(orjson.dumps(data).decode())
        return
    typer.echo(format_table(list(data.items())))
    for note in notes or []:
        typer.echo(f"  {note}")
    if target is not None:
        typer.echo(f"target: {target} -> {'met' if met else 'MISSED'}")


# --- geo -----------------------------------------------------------------------------
def _load_pack(pack: str | None) -> tuple[CityPack, GeoIndex]:
    from citybrain.config_errors import ConfigError
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import load_pack

    try:
        loaded = load_pack(pack or _settings().city_pack)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    return loaded, GeoIndex(loaded)


@geo_app.command("check")
def geo_check(
    pack: Annotated[str, typer.Argument(help="Pack folder or shipped pack name.")],
) -> None:
    """Validate a city pack (schema, geometries, repairs) without touching the database."""

    loaded, index = _load_pack(pack)
    typer.echo(
        f"{loaded.spec.pack} v{loaded.spec.version} ({loaded.spec.city}), "
        f"source CRS {loaded.spec.source_crs} -> WGS-84"
    )
    for layer, regions in loaded.regions.items():
        typer.echo(f"  {layer:<24} {len(regions):>6} regions")
    typer.echo(
        f"  {'grid':<24} {len(index.grid_regions()):>6} cells of {loaded.spec.grid.cell_m:.0f} m"
    )
    for note in loaded.repaired:
        typer.echo(f"  repaired {note}")


@geo_app.command("import")
def geo_import(
    pack: Annotated[str, typer.Argument(help="Pack folder or shipped pack name.")],
) -> None:
    """Store a city pack (all layers plus the generated grid) in the database, versioned."""
    from citybrain.db.connect import connect
    from citybrain.geo.store import ImportRefused, import_pack

    loaded, index = _load_pack(pack)

    def progress(done: int, total: int) -> None:
        typer.echo(f"\r  stored {done}/{total} boundaries", nl=False, err=True)

    try:
        with connect(_settings()) as conn:
            result = import_pack(conn, loaded, index, progress)
    except ImportRefused as exc:
        raise _fail(str(exc)) from exc
    typer.echo("", err=True)
    verb = "imported" if result.imported else "already imported (no change)"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    typer.echo(f"{result.set_code} v{result.version} {verb}: {counts}")


@geo_app.command("tag")
def geo_tag(
    lon: float,
    lat: float,
    crs: Annotated[str, typer.Option(help="WGS-84, GCJ-02 or BD-09.")] = "WGS-84",
    pack: Annotated[str | None, typer.Option(help="Pack (default: CITYBRAIN_CITY_PACK).")] = None,
) -> None:
    """Show what geo-tagging makes of one point."""

    _, index = _load_pack(pack)
    tags = index.tag([lon], [lat], crs)
    typer.echo(
        f"WGS-84: {tags.lon[0]:.6f}, {tags.lat[0]:.6f}"
        + ("  (longitude and latitude were swapped)" if tags.swapped[0] else "")
    )
    typer.echo("status: " + ("located" if tags.in_area[0] else "out_of_area"))
    typer.echo(f"grid: {index.grid_code(int(tags.cell[0]))}")
    for layer in index.layers:
        typer.echo(f"{layer}: {index.code_of(tags, layer, 0)}")


# --- bench ---------------------------------------------------------------------------
@bench_app.command("store")
def bench_store(
    rows: Annotated[int, typer.Option(help="Rows to write.")] = 500_000,
    batch_size: Annotated[int, typer.Option(help="Rows per batch (one transaction).")] = 5000,
    concurrency: Annotated[int, typer.Option(help="Batches written in parallel.")] = 1,
    method: Annotated[str, typer.Option(help="copy or insert.")] = "copy",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Sustained write rate into the events table and p99 batch commit time."""
    import asyncio

    from citybrain.bench.store import as_dict, run_store_bench

    if method not in ("copy", "insert"):
        raise _fail("--method is copy or insert")
    result = asyncio.run(
        run_store_bench(_settings(), rows, batch_size, concurrency, method)  # type: ignore[arg-type]
    )
    _report(as_dict(result), json_out, ">= 50000 rows/s", result.rows_per_s >= 50_000)


@bench_app.command("geo")
def bench_geo(
    points: Annotated[int, typer.Option(help="Points to tag.")] = 2_000_000,
    batch: Annotated[int, typer.Option(help="Points per batch.")] = 10_000,
    pack: Annotated[str | None, typer.Option(help="Pack (default: CITYBRAIN_CITY_PACK).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Geo-tagging throughput (target: 500,000 points/s on one core: numpy's element-wise
    work is single-threaded; pin the process with `taskset -c 0` to be sure)."""

    from citybrain.bench.geo import as_dict, run_geo_bench

    result = run_geo_bench(pack or _settings().city_pack, points, batch)
    _report(as_dict(result), json_out, ">= 500000 points/s", result.points_per_s >= 500_000)


@bench_app.command("e2e")
def bench_e2e(
    load_rate: Annotated[
        float, typer.Option(help="Gauge messages/s of the load phase (0 skips it).")
    ] = 10_000.0,
    load_seconds: Annotated[float, typer.Option(help="Seconds of the load phase.")] = 600.0,
    latency_rate: Annotated[
        float, typer.Option(help="Gauge messages/s while latency is measured (0 skips it).")
    ] = 2_000.0,
    latency_seconds: Annotated[float, typer.Option(help="Seconds of the latency phase.")] = 90.0,
    backlog: Annotated[
        int, typer.Option(help="Messages drained by the baseline and by the pipeline.")
    ] = 300_000,
    idle: Annotated[float, typer.Option(help="Seconds idle before the last probe.")] = 60.0,
    split: Annotated[
        bool,
        typer.Option(
            "--split/--single",
            help="Telemetry in a worker of its own (the recommended deployment), or one "
            "worker for everything.",
        ),
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """The whole pipeline against a plain consume-and-COPY baseline, about 15 minutes:
    the drain rate of a backlog (ratio to the baseline), a sustained load (lag over time),
    latency at a moderate rate, a probe after an idle period, worker CPU and RSS, each
    stage's batches (targets: >= 10,000 events/s for 10 min with lag not growing, p99
    produce-to-dispatch <= 100 ms and produce-to-row <= 250 ms at 2,000/s, RSS <= 2 GiB,
    >= 50% of the baseline). The JSON also goes to bench/results/."""
    import json
    from datetime import UTC, datetime

    from citybrain.bench.e2e import as_dict, run_e2e_bench, targets

    s = _settings()
    result = run_e2e_bench(
        s,
        load_rate=load_rate,
        load_seconds=load_seconds,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        backlog=backlog,
        idle=idle,
        split=split,
    )
    data = as_dict(result)
    from citybrain.settings import PROJECT_ROOT

    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"e2e-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(json.dumps(data, indent=2))
    verdicts = targets(result)
    if not json_out:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("load", "latency"):
                series = value.pop("lag_series")
                hops = value.pop("hops_ms", {})
                for k, v in value.items():
                    if k != "name":
                        flat[f"{key}.{k}"] = v
                step = max(1, len(series) // 12)
                flat[f"{key}.lag_series"] = " ".join(f"{t:.0f}s:{lag}" for t, lag in series[::step])
                for hop, (p50, p99) in hops.items():
                    flat[f"{key}.hop {hop} p50/p99 ms"] = f"{p50} / {p99}"
            elif key == "stage_batches":
                for stage, b in value.items():
                    flat[f"stage {stage}"] = (
                        f"{b['batches']} batches, {b['records_per_batch']} records and "
                        f"{b['ms_per_batch']} ms a batch (p99 <= {b['p99_ms_at_most']} ms), "
                        f"{b['busy_s']} s busy"
                    )
            else:
                flat[key] = value
        for name, met in verdicts.items():
            flat[f"target {name}"] = "met" if met else "MISSED"
        data = flat
    else:
        data["targets"] = verdicts
    _report(data, json_out, "every target above", all(verdicts.values()))


@bench_app.command("correlate")
def bench_correlate(
    keys: Annotated[int, typer.Option(help="Live correlation keys (reports held).")] = 1_000_000,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Memory per million live correlation keys (target: at most 100 MB)."""

    from citybrain.bench.correlate import as_dict, run_correlate_bench

    result = run_correlate_bench(keys)
    _report(
        as_dict(result),
        json_out,
        "<= 100 MB (95.4 MiB) per million keys",
        result.mib_per_million_keys <= 100e6 / 2**20,
    )


@bench_app.command("normalize")
def bench_normalize(
    messages: Annotated[int, typer.Option(help="Telemetry messages to normalise.")] = 400_000,
    workers: Annotated[int, typer.Option(help="Worker processes in the consumer group.")] = 2,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Normalize throughput on the telemetry path with the real broker and database
    (target: 20,000 messages/s)."""

    from citybrain.bench.normalize import as_dict, run_normalize_bench

    result = run_normalize_bench(_settings(), messages, workers)
    steady = result.steady_records_per_s or result.records_per_s
    _report(as_dict(result), json_out, ">= 20000 messages/s (steady)", steady >= 20_000)


@bench_app.command("address")
def bench_address(
    sample: Annotated[
        str, typer.Option(help="Labelled TSV: text, expected_entry, district.")
    ] = "tests/data/addresses_shanghai.tsv",
    pack: Annotated[str | None, typer.Option(help="Pack (default: CITYBRAIN_CITY_PACK).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """The address matcher's match rate and accuracy on a labelled sample."""
    from pathlib import Path

    from citybrain.bench.address import as_dict, run_address_bench

    result = run_address_bench(pack or _settings().city_pack, Path(sample))
    data = as_dict(result)
    if json_out:
        _report(data, json_out)
        return
    misses = data.pop("misses")
    _report(data, json_out, notes=[f"miss: {m}" for m in misses])


# --- settings ------------------------------------------------------------------------
@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print the README table of settings.")] = False,
) -> None:
    """Print every setting with its environment variable and current value (secrets hidden)."""
    settings = _settings()
    if markdown:
        typer.echo("| variable | default | description |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        env = f"CITYBRAIN_{name.upper()}"
        if markdown:
            default = field.default
            shown = "(secret)" if "SecretStr" in str(field.annotation) else default
            if hasattr(shown, "relative_to"):
                shown = str(shown).replace(
                    str(Settings.model_fields["kafka_home"].default.parents[2]), "."
                )
            typer.echo(f"| `{env}` | `{shown}` | {field.description} |")
        else:
            typer.echo(f"{env}={getattr(settings, name)}")


@app.command("chaos")
def chaos(
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            "-s",
            help="worker-kills, broker-kill, database-stop, rebalances, slow-event-kill,"
            " poison, webhook-outage, stall-watchdog (repeat; default: all).",
        ),
    ] = None,
    scale: Annotated[
        float, typer.Option(help="Multiply counts and durations (1 = the issue's full size).")
    ] = 1.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    repeat: Annotated[
        int, typer.Option(min=1, help="Run the scenarios this many times; every run is reported.")
    ] = 1,
    cycles: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="rebalances: join/leave cycles per run (default 3); the traffic lasts as long.",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="rebalances: alarms per second (default 300)."),
    ] = None,
) -> None:
    """Fault injection on the stack the settings name: kill -9 workers, kill the broker,
    stop PostgreSQL, rebalance, kill -9 during a slow event under agent concurrency,
    poison pills, a webhook receiver down, a worker stuck in a rebalance (the stall
    watchdog must end it). Prints lost and
    duplicate counts (all must be 0), recovery and stall times; exits 1 when one is not.
    Progress goes to stderr."""
    from citybrain.chaos.report import as_dict, render
    from citybrain.chaos.scenarios import SCENARIOS, stderr_progress

    s = _settings()
    names = scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s): {', '.join(unknown)}")

    def n(value: float) -> int:
        return max(1, round(value * scale))

    def t(value: float) -> float:
        return max(3.0, value * scale)

    sizes: dict[str, dict[str, Any]] = {
        "worker-kills": {"events": n(100_000), "rate": 1000.0, "every": (10.0, 30.0)},
        "broker-kill": {"events": n(20_000), "rate": 500.0, "kill_after": t(15), "down_for": t(20)},
        "database-stop": {
            "events": n(30_000),
            "rate": 300.0,
            "stop_after": t(15),
            "down_for": t(60),
        },
        "rebalances": {
            # a cycle: the join (~5 s), `period`, the leave (~3 s), `period`
            "events": max(
                n(30_000) if rate is None else 0,
                round((rate or 300.0) * (2 * t(30) + 8) * (cycles or 3)),
            ),
            "rate": rate or 300.0,
            "period": t(30),
            "cycles": cycles or 3,
        },
        "slow-event-kill": {"events": n(5000), "concurrency": 3, "slow_seconds": t(90)},
        "poison": {"good": 40},
        "webhook-outage": {"events": 200, "down_for": t(300)},
        "stall-watchdog": {"events": n(200), "stall_timeout": t(10)},
    }
    rows = []
    for run in range(1, repeat + 1):
        for name in names:
            label = f"{name} (run {run}/{repeat})" if repeat > 1 else name
            stderr_progress(f"scenario {label}")
            result = SCENARIOS[name](s, progress=stderr_progress, **sizes[name])
            row = as_dict(name, result)
            if repeat > 1:
                row["run"] = run
            rows.append(row)
            settle = (
                f", settled {row['settle_s']} s after the last leave" if row.get("settle_s") else ""
            )
            stderr_progress(f"{label}: {'OK' if row['ok'] else 'FAILED'}{settle}")
    typer.echo(render(rows, json_out))
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    app(prog_name="citybrain")


if __name__ == "__main__":
    main()
