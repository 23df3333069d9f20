"""`citybrain correlate accuracy`: the correlator on the simulator's ground truth."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain_tools.cli.report import JsonOut, print_report

app = typer.Typer(help="Correlation of reports into incidents.", no_args_is_help=True)


@app.command("accuracy")
def correlate_accuracy(
    records: Annotated[int, typer.Option(help="Simulated raw records.")] = 6000,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 11,
    hours: Annotated[float, typer.Option(help="Hours of city time.")] = 6.0,
    json_out: JsonOut = False,
) -> None:
    """Pairwise precision, recall and F1 of the fused incidents on the simulator's ground
    truth (target: F1 >= 0.95 with precision >= 0.97)."""

    from citybrain_tools.accuracy import as_dict, evaluate

    result = evaluate(records, seed, hours)
    print_report(
        as_dict(result),
        json_out,
        "F1 >= 0.95 and precision >= 0.97",
        result.f1 >= 0.95 and result.precision >= 0.97,
    )
