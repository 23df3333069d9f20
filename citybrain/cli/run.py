"""`citybrain run`: stack up, migrate, import the city pack, then the worker, the API, the
MQTT bridge (when a feed comes by MQTT) and the simulator (when the development tools are
installed) in the background, with a live summary line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from citybrain.cli import plugins
from citybrain.cli.common import cli_settings, fail
from citybrain.cli.db import db_migrate
from citybrain.cli.geo import geo_import
from citybrain.cli.stack import stack_up
from citybrain.settings import Settings


def run(
    simulate_rate: Annotated[
        float, typer.Option("--simulate", help="Simulated records/s sent meanwhile (0 = none).")
    ] = 50.0,
) -> None:
    """Start the stack, migrate, import the city pack, run the worker and the city simulator
    in the background, and print a live summary line until Ctrl-C."""
    import subprocess
    import sys

    from citybrain.stack import wants_mqtt

    stack_up()
    db_migrate()
    s = cli_settings()
    try:
        geo_import(s.city_pack)
    except typer.Exit:
        typer.secho("continuing with the boundary set already stored", fg="yellow", err=True)
    sim_log = s.resolved_log_dir / "simulator.log"
    simulator = None
    if simulate_rate > 0 and not plugins.installed("simulate"):
        typer.secho(
            plugins.NOT_INSTALLED.format(name="simulate")
            + "\n不启动模拟器 / running without the simulator",
            fg="yellow",
            err=True,
        )
        simulate_rate = 0
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
    bridge_log = s.resolved_log_dir / "bridge.log"
    bridge_proc = None
    if wants_mqtt(s):
        bridge_proc = subprocess.Popen(
            [sys.executable, "-m", "citybrain.cli", "bridge", "mqtt"],
            stdout=bridge_log.open("ab"),
            stderr=subprocess.STDOUT,
        )
    typer.echo(
        "\ncitybrain is running. Where to look next:\n"
        f"  worker log      {worker_log}\n"
        f"  console         http://{s.api_host}:{s.api_port}/console/  (sign in with a token)\n"
        f"  API             http://{s.api_host}:{s.api_port}/docs  (log {api_log})\n"
        "                  tokens: citybrain departments token create <department>\n"
        f"  worker health   http://127.0.0.1:{s.worker_web_port}/\n"
        f"  metrics         http://127.0.0.1:{s.metrics_port}/metrics\n"
        f"  service logs    {s.resolved_log_dir}\n"
        f"  simulator       {sim_log if simulator else 'off (--simulate 0)'}\n"
        f"  MQTT bridge     {bridge_log if bridge_proc else 'off (no feed comes by MQTT)'}\n"
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
        if bridge_proc is not None:
            bridge_proc.terminate()
        for proc in (worker_proc, api_proc, *([bridge_proc] if bridge_proc else [])):
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
    raise fail(f"\nthe worker stopped (exit {worker_proc.returncode}); see its log")
