"""`citybrain db migrate | status | maintain`: the database schema, its mode and upkeep."""

from __future__ import annotations

import typer

from citybrain.cli.common import cli_settings, fail

app = typer.Typer(help="Database schema: migrations and status.", no_args_is_help=True)


@app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (ordered, recorded, safe to run twice), policies and roles."""
    from citybrain.db.migrate import MigrationError, migrate

    settings = cli_settings()
    try:
        result = migrate(settings)
    except MigrationError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:
        raise fail(f"cannot migrate {settings.safe_conninfo()}: {exc}") from exc
    for m in result.applied:
        typer.echo(f"applied {m.filename}")
    if not result.applied:
        typer.echo("schema is up to date")
    typer.echo(f"mode: {result.mode}; policies and roles applied")


@app.command("status")
def db_status() -> None:
    """Schema version, TimescaleDB or plain PostgreSQL mode, table sizes, chunk counts."""
    import psycopg

    from citybrain.db.connect import connect
    from citybrain.db.status import read_status

    settings = cli_settings()
    try:
        with connect(settings, connect_timeout=5) as conn:
            st = read_status(conn, settings)
    except psycopg.Error as exc:
        raise fail(f"cannot read {settings.safe_conninfo()}: {exc}") from exc
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


@app.command("maintain")
def db_maintain() -> None:
    """Plain mode: create partitions ahead, drop expired ones, refresh the dashboard views.
    TimescaleDB mode: refresh the continuous aggregates now (policies do the rest)."""
    from citybrain.db.connect import connect
    from citybrain.db.maintain import maintain, refresh_continuous_aggregates
    from citybrain.db.migrate import recorded_mode

    settings = cli_settings()
    with connect(settings, autocommit=True) as conn:
        mode = recorded_mode(conn)
        if mode is None:
            raise fail("the database is not migrated yet: run `citybrain db migrate`")
        if mode == "timescale":
            typer.echo("refreshed " + ", ".join(refresh_continuous_aggregates(conn)))
            return
        report = maintain(conn, mode, settings)
    typer.echo(
        f"partitions created {report.partitions_created}, dropped {report.partitions_dropped}; "
        f"refreshed {', '.join(report.refreshed)}"
    )
