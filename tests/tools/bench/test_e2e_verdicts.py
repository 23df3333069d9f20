"""The end-to-end bench's verdicts have no slack, say `skipped` for a phase that did not
run, and count a probe that never arrived as a miss; a missed target fails the command."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import typer

from citybrain_tools.bench.e2e import E2EResult, Phase, Window, _pct, targets
from citybrain_tools.cli.report import print_report


def _window(name: str, rate: float, start: float, end: float, p99: float) -> Window:
    return Window(
        name,
        rate,
        start,
        end,
        stored_per_s=25_300 if name == "sustained" else None,
        probes=100,
        probes_to_db=100,
        probes_to_dispatch=100,
        produce_to_dispatch_p99_ms=p99,
    )


def result(**changes: Any) -> E2EResult:
    load = Phase(
        "load",
        25_500,
        690,
        messages=17_595_000,
        messages_per_s=24_000,
        probes=1380,
        probes_to_db=1380,
        probes_to_dispatch=1380,
        windows=[
            _window("sustained", 25_500, 0, 600, 90),
            _window("overload", 38_250, 600, 660, 240),
            _window("after", 25_500, 660, 690, 120),
            _window("recovered", 25_500, 670, 690, 95),
        ],
    )
    latency = Phase(
        "latency",
        2_000,
        90,
        messages=180_000,
        probes=180,
        probes_to_db=180,
        probes_to_dispatch=180,
        produce_to_db_p99_ms=60,
        produce_to_dispatch_p99_ms=71,
    )
    base = E2EResult(
        backlog=300_000,
        baseline_messages_per_s=28_000,
        drain_messages_per_s=21_000,
        ratio_to_baseline=0.75,  # the target exactly: met
        load=load,
        latency=latency,
        readings_missing=0,
        db_rows_per_s=20_000,
        workers=2,
        worker_rss_max_mib=180,
        idle_seconds=60,
        idle_probe_to_db_ms=30,
        idle_probe_to_dispatch_ms=40,
    )
    return replace(base, **changes)


SUSTAINED = ">= 25,000 messages/s sustained for 10 min"


def test_a_run_that_meets_every_target() -> None:
    assert set(targets(result()).values()) == {"met"}


@pytest.mark.parametrize(
    ("change", "target"),
    [
        # 24,990/s against 25,000 is not met: no slack
        (lambda r: _in(r, "sustained", stored_per_s=24_990), SUSTAINED),
        # a sustained part shorter than 10 minutes shows nothing
        (lambda r: _in(r, "sustained", end_s=599), SUSTAINED),
        (lambda r: _in(r, "sustained", lag_growing=True), "lag not growing while sustained"),
        (
            lambda r: _in(r, "sustained", produce_to_dispatch_p99_ms=100.1),
            "probes p99 produce->dispatch <= 100 ms while sustained",
        ),
        (
            lambda r: _in(r, "overload", produce_to_dispatch_p99_ms=None),
            "probes p99 produce->dispatch <= 250 ms in the overload",
        ),
        (
            lambda r: _in(r, "recovered", produce_to_dispatch_p99_ms=101),
            "probes p99 produce->dispatch <= 100 ms from 10 s after it",
        ),
        (lambda r: replace(r, readings_missing=1), "no reading lost"),
        # one probe that never reached its department: a miss, not a gap
        (
            lambda r: replace(r, latency=replace(r.latency, probes_to_dispatch=179)),
            "every probe reached its row and its department",
        ),
        (
            lambda r: replace(r, latency=replace(r.latency, produce_to_dispatch_p99_ms=None)),
            "p99 produce->dispatch <= 100 ms",
        ),
        (lambda r: replace(r, idle_probe_to_dispatch_ms=None), "no stall after idle"),
        (lambda r: replace(r, ratio_to_baseline=0.74), ">= 75% of baseline"),
        # a probe of the storm that never arrived
        (
            lambda r: replace(r, load=replace(r.load, probes_to_dispatch=1379)),
            "every probe reached its row and its department",
        ),
    ],
)
def test_each_target_can_be_missed(change: Any, target: str) -> None:
    verdicts = targets(change(result()))
    assert verdicts[target] == "MISSED"
    assert [t for t, v in verdicts.items() if v != "met"] == [target]


def test_a_skipped_phase_is_said_skipped_not_missed() -> None:
    verdicts = targets(result(load=Phase("load", 25_500, 0)))
    assert verdicts[SUSTAINED] == "skipped"
    assert verdicts["lag not growing while sustained"] == "skipped"
    assert verdicts["probes p99 produce->dispatch <= 250 ms in the overload"] == "skipped"
    assert verdicts["p99 produce->row <= 250 ms"] == "met"


def test_a_storm_without_an_overload_skips_its_targets() -> None:
    r = result()
    r = replace(r, load=replace(r.load, windows=r.load.windows[:1]))
    verdicts = targets(r)
    assert verdicts["probes p99 produce->dispatch <= 250 ms in the overload"] == "skipped"
    assert verdicts["probes p99 produce->dispatch <= 100 ms from 10 s after it"] == "skipped"
    assert verdicts[SUSTAINED] == "met"


def _in(r: E2EResult, name: str, **changes: Any) -> E2EResult:
    windows = [replace(w, **changes) if w.name == name else w for w in r.load.windows]
    return replace(r, load=replace(r.load, windows=windows))


@pytest.mark.parametrize(
    ("values", "total", "p99"),
    [
        ([10.0] * 100, None, 10.0),
        ([10.0] * 100, 100, 10.0),
        ([10.0] * 99, 100, None),  # the missing probe is the 99th percentile
        ([10.0] * 198 + [500.0, 600.0], 200, 500.0),
    ],
)
def test_percentiles_count_the_probes_that_never_arrived(
    values: list[float], total: int | None, p99: float | None
) -> None:
    assert _pct(values, 0.99, total) == p99


@pytest.mark.parametrize("json_out", [False, True])
def test_a_missed_target_fails_the_command(json_out: bool) -> None:
    print_report({"x": 1}, json_out, "x >= 1", True)
    with pytest.raises(typer.Exit) as missed:
        print_report({"x": 0}, json_out, "x >= 1", False)
    assert missed.value.exit_code == 1


def test_the_terminal_table_names_each_part_of_the_storm_and_its_slowest_probes() -> None:
    from citybrain_tools.bench.e2e import as_dict, flatten

    r = _in(result(), "sustained", slowest=[(281.8, 4877.8, "normalize 13/correlate 4066")])
    flat = flatten(as_dict(r))
    assert flat["load.sustained.stored_per_s"] == 25_300
    assert flat["load.overload.produce_to_dispatch_p99_ms"] == 240
    assert flat["load.sustained.slowest probe 1"] == (
        "at 281.8 s: 4877.8 ms (normalize 13/correlate 4066)"
    )
    assert "load.windows" not in flat
