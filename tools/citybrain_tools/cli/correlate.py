"""`citybrain correlate accuracy`: the correlator on the simulator's ground truth."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain_tools.cli.report import JsonOut, print_report

app = typer.Typer(help="Correlation of reports into incidents.", no_args_is_help=True)


@app.command("accuracy")
def correlate_accuracy(
    records: Annotated[int, typer.Option(help="Simulated raw records per seed.")] = 6000,
    seeds: Annotated[
        str, typer.Option(help="Simulator seeds, comma separated (every one is scored).")
    ] = "1,2,3,4,5",
    hours: Annotated[float, typer.Option(help="Hours of city time.")] = 6.0,
    json_out: JsonOut = False,
) -> None:
    """Per seed: pairwise precision of the merges the correlator made by itself (target
    0.99), recall over located reports (0.98), and for reports placed only by their
    district that opened their own incident, the share whose problem's incident was among
    the top 3 suggestions (0.90). Exits 1 when any seed misses a target."""
    from citybrain_tools.accuracy import TARGETS, as_dict, evaluate, missed

    failures = []
    for seed in [int(s) for s in seeds.split(",") if s.strip()]:
        typer.echo(f"seed {seed} ...", err=True)
        result = evaluate(records, seed, hours)
        misses = missed(result)
        failures += [f"seed {seed}: {m}" for m in misses]
        print_report(as_dict(result), json_out, notes=[f"MISSED {m}" for m in misses])
    target = ", ".join(f"{k} >= {v}" for k, v in TARGETS.items()) + " on every seed"
    if json_out:
        typer.echo(f'{{"target": "{target}", "target_met": {str(not failures).lower()}}}')
    else:
        for failure in failures:
            typer.echo(f"  {failure}")
        typer.echo(f"target: {target} -> {'met' if not failures else 'MISSED'}")
    if failures:
        raise typer.Exit(1)
