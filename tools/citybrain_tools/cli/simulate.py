"""`citybrain simulate`: realistic raw traffic into Kafka, with its ground truth."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings


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

    from citybrain_tools.sim.run import build_scenario, send

    settings = cli_settings()
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
