"""`citybrain chaos`: the fault-injection scenarios at the size asked, with their figures."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from citybrain.cli.common import cli_settings


def chaos(
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            "-s",
            help="worker-kills, broker-kill, database-stop, rebalances, slow-event-kill,"
            " poison, webhook-outage, stall-watchdog, bridge-kill (repeat; default: all of"
            " these);"
            " broker-loss (the controller, then a partition leader: needs"
            " `citybrain stack up --brokers 3`).",
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
            help="rebalances: join/leave cycles per run (default 3); the alarms flow until "
            "the last leave.",
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
    watchdog must end it), kill -9 the MQTT bridge while messages flow. Prints lost and
    duplicate counts (all must be 0), recovery and stall times; exits 1 when one is not.
    Progress goes to stderr."""
    from citybrain_tools.chaos.report import as_dict, render
    from citybrain_tools.chaos.scenarios import (
        ALIASES,
        CLUSTER_SCENARIOS,
        SCENARIOS,
        stderr_progress,
    )
    from citybrain_tools.chaos.scenarios import scenario as scenario_named

    s = cli_settings()
    names = [n for asked in scenario or list(SCENARIOS) for n in ALIASES.get(asked, [asked])]
    unknown = [n for n in names if n not in SCENARIOS and n not in CLUSTER_SCENARIOS]
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
            # the most sent (the alarms stop at the last leave): a cycle is the join (~5 s),
            # `period`, the leave (~3 s), `period`; room for slower joins and leaves
            "events": max(
                n(30_000) if rate is None else 0,
                round((rate or 300.0) * (2 * t(30) + 30) * (cycles or 3)),
            ),
            "rate": rate or 300.0,
            "period": t(30),
            "cycles": cycles or 3,
        },
        "slow-event-kill": {"events": n(5000), "concurrency": 3, "slow_seconds": t(90)},
        "poison": {"good": 40},
        "webhook-outage": {"events": 200, "down_for": t(300)},
        "stall-watchdog": {"events": n(200), "stall_timeout": t(10)},
        "bridge-kill": {"events": n(5000), "rate": 200.0, "kills": 5, "every": (3.0, 6.0)},
        **{
            name: {"events": n(20_000), "rate": 500.0, "kill_after": t(15), "down_for": t(20)}
            for name in CLUSTER_SCENARIOS
        },
    }
    rows = []
    for run in range(1, repeat + 1):
        for name in names:
            label = f"{name} (run {run}/{repeat})" if repeat > 1 else name
            stderr_progress(f"scenario {label}")
            result = scenario_named(name)(s, progress=stderr_progress, **sizes[name])
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
