"""`citybrain bench correlate --open-incidents N`: the correlator's ceiling on one core.

The correlate stage is one partition by design (`agents/correlate/agent.py`): a single
owner decides every report of the city. This bench measures how many reports a second
that owner's decision takes while it holds N open incidents, pinned to one core.

The city is the simulator's (`citybrain_tools/sim/scenario.py`) in a real city pack: its
problems (flooding, fire, gas, manhole, dark street, chosen alike), each at a gauge or a
manhole cover while a free one is left, else at the simulator's urban points (a manhole
cover's place and up to 800 m around); a smoke or gas alarm, 1-3 street lamps or a gauge's
or cover's readings; 3-7 hotline calls within 40 minutes and 300 m naming the problem's
place (or something vague), 40% without coordinates; a near-miss beside 30% of them. The
vendor records are normalised by the real pure pipeline (`accuracy.normalise`), with the
run's address register in the gazetteer, as the correlator reads it. Unlike the accuracy
runs, problems are not kept two radii apart: at 40,000 open incidents a city's problems
crowd each other, and so they do here (the correlator looks at more candidates; none of
the figures is about accuracy).

- **Preload**: the steady state at T0 of a city whose problems arrive at one rate: each
  kind planned over the time before T0 its incidents can still be held (its callers' 40
  minutes and twice its family's window: `Correlator.expire`), their reports before T0
  added, then expired as the stage expires them; the rate is raised until N incidents
  are held (the last step overshoots by a few).
- **Stream**: the reports from T0 on of those problems (further calls: most join an
  incident) and of new problems arriving at the same rate (their first reports open
  incidents), in time order, the first `reports` of them.
- **Rounds**: each starts from a copy of the preloaded state (`clone`) and feeds the stream
  through `correlation.batch.correlate_batch`, what the stage calls per batch, `batch`
  reports at a time (the stage's largest batch: at its ceiling every batch is full). The
  decision alone is timed; the stage's serialisation around it (decoding the events,
  encoding the changed cells for the table's changelog and the incidents.v1 messages) is
  timed apart. Kafka and the database are not part of it: the rows a report costs are
  counted, their time is not measured here. A round stops early once its decisions have
  taken `budget_s`. Then the same rounds again without merge suggestions (what if:
  `UnsuggestingCorrelator`; suggestions change nothing held, so the preload goes without
  them too).
- **Memory**: tracemalloc of a copy of the preloaded correlator, and of the table's values
  (each cell's incidents as JSON dicts: what the worker's in-memory table holds).
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import time
import tracemalloc
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.correlation.batch import correlate_batch
from citybrain.correlation.core import Change, Correlator, Incident, Suggestion
from citybrain.correlation.places import PlaceWords
from citybrain.correlation.rules import Family, Rules
from citybrain.correlation.state import to_json
from citybrain.feeds.definition import BUILTIN_DIR, load_feeds, with_city_devices
from citybrain.geo.address import Gazetteer, load_gazetteer
from citybrain.geo.devices import Device
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.events import CanonicalEvent
from citybrain_tools.accuracy import normalise
from citybrain_tools.bench.report import percentile
from citybrain_tools.sim.scenario import PROBLEMS, Place, ProblemType, Scenario, SimRecord, _offset

#: where the preload ends and the stream starts (simulated time; a fixed instant, so that a
#: seed gives the same city every run)
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: the simulator's callers call within this after their problem starts, 3 to 7 of them
CALL_SPAN = timedelta(minutes=40)
CALLS = (3, 7)
NEAR_MISS_SHARE = 0.3  # problems with a near-miss beside them, as the simulator makes
#: the stream is simulated in about this many steps (new problems, further calls), each
#: 30 s of city time at least
STREAM_STEPS = 10
REPORTS_PER_PROBLEM = 6  # about: a sensor's alarm or two and 3-7 calls
#: the correlate agent's largest batch (`max_records`)
STAGE_BATCH = 1000

Progress = Callable[[str], None]


def stderr_progress(line: str) -> None:
    print(f"\r  {line}\033[K", end="", file=sys.stderr, flush=True)


def _quiet(line: str) -> None:
    return None


# --- the city -------------------------------------------------------------------------------
@dataclass
class Problem:
    """One simulated problem: where, when, what its callers name; its sensors' records
    (made when it is planned) and its calls (made when their time is needed)."""

    number: int
    kind: ProblemType
    lon: float
    lat: float
    start: datetime
    place: Place
    records: list[SimRecord] = field(default_factory=list)  # sensors' and near-miss calls
    calls: list[datetime] = field(default_factory=list)  # in time order
    made: int = 0  # calls made so far (those before `calls[made]` are past)


class City:
    """The simulator's problems in a city pack, as canonical events between two times."""

    def __init__(self, pack: str, seed: int) -> None:
        feeds = with_city_devices(load_feeds(BUILTIN_DIR), pack)
        self.feeds = {f.topic: f for f in feeds}
        registries = {f.name: f.devices for f in feeds if f.devices}
        self.pack = load_pack(pack)
        self.index = GeoIndex(self.pack)
        self.base = load_gazetteer(self.pack)
        self.sim = Scenario(registries, self.base, seed=seed, index=self.index)
        self.rng = self.sim.rng
        #: gauges and covers no problem has yet (a device reports one problem at a time)
        self.free: dict[str, list[Device]] = {}
        for feed in ("water-level", "manhole-cover"):
            devices = sorted(registries[feed].devices.values(), key=lambda d: d.device_id)
            self.rng.shuffle(devices)
            self.free[feed] = devices
        self.problems: list[Problem] = []
        self.states: dict[str, dict[str, dict[str, Any]]] = {}  # devices' alarm state
        self._gazetteer: tuple[int, Gazetteer] | None = None

    def gazetteer(self) -> Gazetteer:
        """The pack's gazetteer with the run's address register so far (built again only
        when the register grew)."""
        size = len(self.sim.register)
        if self._gazetteer is None or self._gazetteer[0] != size:
            self._gazetteer = (size, load_gazetteer(self.pack, self.sim.register))
        return self._gazetteer[1]

    def plan(self, start: datetime, kind: ProblemType | None = None) -> Problem:
        """A new problem starting at `start`, as the simulator's `problem` makes one (of a
        kind chosen as it chooses, unless given)."""
        sim, rng = self.sim, self.rng
        number = len(self.problems)
        kind = kind or rng.choice(PROBLEMS)
        device = None
        free = self.free.get(kind.sensor or "")
        if free:
            device = free.pop()
            lon, lat = device.lon, device.lat
        else:
            lon, lat = sim._random_point()
        records: list[SimRecord] = []
        if device is not None and kind.sensor == "water-level":
            for minute in range(12):
                level = 30 + min(70, minute * 9) + rng.uniform(-2, 2)
                at = start + timedelta(minutes=minute)
                records.append(sim.water_level(device, at, level, {}))
        elif device is not None:
            for minute in (1, 6):
                tilt = 25 + rng.uniform(0, 10)
                records.append(sim.manhole(device, start + timedelta(minutes=minute), tilt, {}))
        else:
            at = start + timedelta(minutes=rng.uniform(0, 3))
            if kind.sensor == "smoke-alarm":
                records.append(sim.smoke(lon, lat, at, {}))
            elif kind.sensor == "gas-leak":
                records.append(sim.gas(lon, lat, at, {}))
            elif kind.sensor == "streetlight":
                for _ in range(rng.randint(1, 3)):
                    records.append(sim.lamp(*_offset(lon, lat, 120, rng), at, {}))
        place = sim.new_place(lon, lat)
        calls = sorted(start + CALL_SPAN * rng.random() for _ in range(rng.randint(*CALLS)))
        if rng.random() < NEAR_MISS_SHARE:
            records += sim.near_miss(number, kind, lon, lat, start)
        problem = Problem(number, kind, lon, lat, start, place, records, calls)
        self.problems.append(problem)
        return problem

    def records(
        self, problems: Sequence[Problem], before: datetime
    ) -> list[tuple[SimRecord, Problem]]:
        """The records of these problems not made yet and timed before `before`, each with
        its problem, in time order (the calls are made here, each once)."""
        out: list[tuple[SimRecord, Problem]] = []
        for p in problems:
            while p.made < len(p.calls) and p.calls[p.made] < before:
                at = p.calls[p.made]
                clon, clat = _offset(p.lon, p.lat, 300, self.rng)
                out.append((self.sim.call(p.kind, clon, clat, at, {}, p.place), p))
                p.made += 1
            if p.records:
                p.records.sort(key=lambda r: r.at)
                due = [r for r in p.records if r.at < before]
                p.records = p.records[len(due) :]
                out += [(r, p) for r in due]
        out.sort(key=lambda pair: pair[0].at)
        return out

    def events(
        self, records: Sequence[tuple[SimRecord, Problem]], received_at: datetime
    ) -> list[CanonicalEvent]:
        """The records as the normalize stage makes them into events, in time order (an
        event's `raw_ref.offset` is its record's index in `records`)."""
        tagger = Geotagger(self.index, self.gazetteer())
        raw = [r for r, _ in records]
        out = normalise(self.feeds, raw, tagger, received_at, self.states)
        out.sort(key=lambda e: e.observed_at)
        return out

    def correlator(self, cls: type[Correlator] = Correlator) -> Correlator:
        """An empty correlator reading places as the stage does: the city's gazetteer (with
        the run's register) and its districts' neighbours."""
        return cls(places=PlaceWords(self.gazetteer()), neighbours=self.pack.neighbours())


def horizon(kind: ProblemType, rules: Rules) -> timedelta:
    """How long before T0 a problem of this kind may have started and still be held at T0:
    its callers call within CALL_SPAN, and the correlator forgets an incident quiet for
    twice its family's window (`Correlator.expire`)."""
    return CALL_SPAN + 2 * rules.family_of(kind.category).window_td


def problems_for(shortfall: int, planned: int, held: int, cap: int = 20_000) -> int:
    """How many problems to plan next for `shortfall` more incidents, from how many
    incidents the problems planned so far left held (at least 20; at most `cap`)."""
    per_incident = planned / held if held else 0.5
    return max(20, min(cap, math.ceil(shortfall * per_incident)))


@dataclass
class Preload:
    held: int
    reports: int
    problems: int
    rate: float  # problems a second


def preload(city: City, c: Correlator, n: int, progress: Progress = _quiet) -> Preload:
    """Fill `c` with the steady state of the city at T0 that holds at least `n` incidents:
    problems of every kind arriving at one rate, each kind over its `horizon` before T0
    (the kinds alike, as the simulator chooses them: a kind held longer is planned over a
    longer past), their reports before T0 added, and what the stage would have forgotten
    by T0 expired. Planned in chunks until `n` are held (the last chunk overshoots by a
    few)."""
    kinds = list(PROBLEMS)
    spans = [horizon(k, c.rules) for k in kinds]
    weights = [span.total_seconds() for span in spans]
    held = added = planned = 0
    while held < n:
        chunk = problems_for(n - held, planned, held)
        progress(f"preload: {held:,}/{n:,} incidents, planning {chunk:,} problems")
        first = len(city.problems)
        for _ in range(chunk):
            k = city.rng.choices(range(len(kinds)), weights)[0]
            city.plan(T0 - spans[k] * city.rng.random(), kinds[k])
        planned += chunk
        records = city.records(city.problems[first:], T0)
        progress(f"preload: {held:,}/{n:,} incidents, normalising {len(records):,} records")
        events = city.events(records, T0)
        for i, e in enumerate(events):
            c.add(e)
            if i % 5000 == 0:
                progress(f"preload: {held:,}/{n:,} incidents, {i:,}/{len(events):,} reports")
        added += len(events)
        c.expire(T0)
        held = sum(len(members) for members in c.by_cell.values())
    # the problems' arrival rate: the kinds alike, each over its own horizon
    rate = planned * len(kinds) / sum(weights)
    progress(f"preload: {held:,} incidents held, {added:,} reports, {planned:,} problems")
    return Preload(held, added, planned, rate)


def stream(
    city: City, reports: int, rate: float, progress: Progress = _quiet
) -> list[CanonicalEvent]:
    """The city's reports from T0 on, in time order, the first `reports` of them: the
    problems planned so far and new ones starting at `rate` a second."""
    out: list[CanonicalEvent] = []
    lo = T0
    owed = 0.0
    step = timedelta(seconds=max(30.0, reports / (STREAM_STEPS * rate * REPORTS_PER_PROBLEM)))
    while len(out) < reports:
        if lo - T0 > 100 * STREAM_STEPS * step:
            raise RuntimeError(f"the city made {len(out)} reports in {lo - T0}")
        hi = lo + step
        owed += rate * step.total_seconds()
        while owed >= 1:
            city.plan(lo + step * city.rng.random())
            owed -= 1
        records = city.records(city.problems, hi)
        out += city.events(records, hi)
        progress(f"stream: {min(len(out), reports):,}/{reports:,} reports")
        lo = hi
    return out[:reports]


# --- the state ------------------------------------------------------------------------------
class TimedCorrelator(Correlator):
    """A correlator that keeps each `add`'s time (ns): two clock reads a report."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_ns: list[int] = []

    def add(self, e: CanonicalEvent) -> Change | None:
        started = time.perf_counter_ns()
        change = super().add(e)
        self.add_ns.append(time.perf_counter_ns() - started)
        return change


class UnsuggestingCorrelator(Correlator):
    """The same decisions without merge suggestions (`suggest` and `rescore` only say what
    to suggest: no incident, index or report changes with them), for the preload and for
    the what-if rounds."""

    def suggest(self, e: CanonicalEvent, family: Family, opened: Incident) -> list[Suggestion]:
        return []

    def rescore(self, grown: Incident, family: Family) -> list[Suggestion]:
        return []


class TimedUnsuggesting(UnsuggestingCorrelator, TimedCorrelator):
    """The what-if rounds' correlator: no merge suggestions, each `add` timed."""


def clone(c: Correlator, cls: type[Correlator] = Correlator) -> Correlator:
    """A copy of a correlator's state that shares nothing a report changes: each incident's
    array copied once and put in the same places of the same indexes (the rules, the place
    reader and the neighbours are shared; the place reader's cache is new)."""
    places = getattr(c.places, "__wrapped__", None)
    out = cls(c.rules, places, c.neighbours)
    copies = {id(d): array("q", d) for members in c.by_cell.values() for d in members}

    def copied(index: dict[Any, list[array[int]]]) -> dict[Any, list[array[int]]]:
        return {key: [copies[id(d)] for d in members] for key, members in index.items()}

    out.by_cell = copied(c.by_cell)
    out.by_district = copied(c.by_district)
    out.unplaced = copied(c.unplaced)
    out.moved = set(c.moved)
    out.vacated = set(c.vacated)
    return out


def traced_mib(make: Callable[[], Any]) -> tuple[float, Any]:
    """The Python heap (MiB) what `make` returns holds, measured with tracemalloc."""
    gc.collect()
    tracemalloc.start()
    made = make()
    gc.collect()
    heap, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return heap / 2**20, made


def table_values(c: Correlator) -> dict[str, list[dict[str, Any]]]:
    """The correlate agent's table as it would hold this state: each cell's incidents as
    JSON dicts."""
    return {cell: [to_json(i) for i in c.incidents_in(cell)] for cell in c.by_cell}


# --- the rounds -----------------------------------------------------------------------------
@dataclass
class Round:
    reports: int
    decide_s: float  # correlate_batch, every batch
    serialise_s: float  # decoding the events, encoding the cells and the incident messages
    batch_ms: list[float]
    add_us: list[float]
    changes: dict[str, int]  # opened / merged / reopened / none (a repeat, a lone clear)
    rows: dict[str, int]  # database rows the batches would write, by table

    @property
    def rate(self) -> float:
        return self.reports / self.decide_s


def run_round(
    preloaded: Correlator,
    events: Sequence[CanonicalEvent],
    encoded: Sequence[bytes],
    batch: int,
    now: datetime,
    budget_s: float = math.inf,
    kind: type[TimedCorrelator] = TimedCorrelator,
) -> Round:
    """Feed the stream to a copy of the preloaded state, `batch` reports at a time, until
    it ends or the decisions have taken `budget_s` (a whole batch at least)."""
    import orjson
    from faust.serializers import codecs

    c = clone(preloaded, kind)
    assert isinstance(c, TimedCorrelator)
    gc.collect()
    decide = serialise = 0
    batch_ms: list[float] = []
    changes = {"opened": 0, "merged": 0, "reopened": 0, "none": 0}
    rows = {"incidents": 0, "incident_reports": 0, "incident_history": 0, "suggestions": 0}
    fed = 0
    for lo in range(0, len(events), batch):
        if fed and decide >= budget_s * 1e9:
            break
        items = events[lo : lo + batch]
        fed += len(items)
        started = time.perf_counter_ns()
        out = correlate_batch(c, items, now)
        took = time.perf_counter_ns() - started
        decide += took
        batch_ms.append(took / 1e6)
        started = time.perf_counter_ns()
        for raw in encoded[lo : lo + batch]:
            CanonicalEvent.from_json(raw)
        for cell, value in out.cells.items():
            codecs.dumps("json", cell)
            codecs.dumps("json", value)
        for _, message in out.messages:
            orjson.dumps(message)
        serialise += time.perf_counter_ns() - started
        for row in out.history:
            changes[row[2]] = changes.get(row[2], 0) + 1
        changes["none"] += len(items) - len(out.reports) - len(out.failures)
        rows["incidents"] += len(out.incidents)
        rows["incident_reports"] += len(out.reports)
        rows["incident_history"] += len(out.history)
        rows["suggestions"] += len(out.suggestions)
        if out.failures:
            raise RuntimeError(f"reports refused: {out.failures[:3]}")
    return Round(
        reports=fed,
        decide_s=decide / 1e9,
        serialise_s=serialise / 1e9,
        batch_ms=batch_ms,
        add_us=[ns / 1e3 for ns in c.add_ns],
        changes=changes,
        rows=rows,
    )


@dataclass
class Spread:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def rounded(self) -> Spread:
        return Spread(round(self.median), round(self.min), round(self.max))


# --- the whole bench ------------------------------------------------------------------------
@dataclass
class CeilingResult:
    open_incidents: int  # held after the preload
    district_only: int  # of them, placed only by their district (needs_location)
    cells: int
    preload_reports: int
    problems_preloaded: int
    problems_per_hour: int  # the arrival rate whose steady state holds them
    batch: int
    core: int | None
    round_reports: list[int]  # reports each round fed (the stream, or what its budget took)
    rounds: list[int]  # reports/s of each round, in order
    reports_per_s: Spread  # of the rounds: the ceiling
    stage_cpu_reports_per_s: Spread  # the decision and the serialisation around it
    mean_us_per_report: float  # the decision, 1 / the median rate
    add_us_mean: float  # Correlator.add alone, every report of every round
    add_us_p99: float
    add_us_max: float
    batch_ms_p99: float
    serialise_us_per_report: float
    #: what if: the same rounds without merge suggestions
    without_suggestions_rounds: list[int]
    without_suggestions: Spread
    # the reports the first round fed
    hotline_share: float
    located_share: float
    joined_share: float  # joined (or reopened) an incident
    opened_share: float
    db_rows_per_report: dict[str, float]  # what the stage would write, by table
    correlator_mib: float
    table_mib: float
    bytes_per_incident: float  # the correlator's
    setup_s: float


def pin(core: int | None) -> int | None:
    """Bind this process to one core (the highest this process may use, by default)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    chosen = max(allowed) if core is None else core
    if chosen not in allowed:
        raise ValueError(f"core {chosen} is not one of {sorted(allowed)}")
    os.sched_setaffinity(0, {chosen})
    return chosen


def run_ceiling_bench(
    open_incidents: int,
    pack: str,
    reports: int = 20_000,
    rounds: int = 5,
    batch: int = STAGE_BATCH,
    seed: int = 11,
    budget_s: float = 60.0,
    core: int | None = None,
    progress: Progress = _quiet,
) -> CeilingResult:
    """The ceiling with `open_incidents` held: `rounds` rounds of up to `reports` reports
    (each stopped after `budget_s` of decisions), then as many without merge suggestions.
    `core`: the core this process was pinned to (said in the result)."""
    started = time.monotonic()
    city = City(pack, seed)
    # suggestions change nothing held: the preload goes without them, the state is the same
    preloaded = city.correlator(UnsuggestingCorrelator)
    loaded = preload(city, preloaded, open_incidents, progress)
    held = list(preloaded.incidents())
    events = stream(city, reports, loaded.rate, progress)
    encoded = [e.to_json() for e in events]
    progress("memory: tracemalloc of a copy of the state and of its table")
    correlator_mib, _ = traced_mib(lambda: clone(preloaded))
    table_mib, _ = traced_mib(lambda: table_values(preloaded))
    setup_s = time.monotonic() - started

    def measure(kind: type[TimedCorrelator], what: str) -> list[Round]:
        done: list[Round] = []
        for n in range(rounds):
            progress(f"{open_incidents:,} open incidents: round {n + 1}/{rounds}{what}")
            done.append(run_round(preloaded, events, encoded, batch, T0, budget_s, kind))
            progress(
                f"{open_incidents:,} open incidents: round {n + 1}/{rounds}{what}: "
                f"{done[-1].reports:,} reports, {done[-1].rate:,.0f}/s"
            )
        return done

    done = measure(TimedCorrelator, "")
    without = measure(TimedUnsuggesting, " without merge suggestions")
    progress(f"{open_incidents:,} open incidents: done\n")
    first = done[0]
    fed = events[: first.reports]
    adds = [us for r in done for us in r.add_us]
    rates = [r.rate for r in done]
    return CeilingResult(
        open_incidents=len(held),
        district_only=sum(i.location_status != "located" for i in held),
        cells=len(preloaded.by_cell),
        preload_reports=loaded.reports,
        problems_preloaded=loaded.problems,
        problems_per_hour=round(loaded.rate * 3600),
        batch=batch,
        core=core,
        round_reports=[r.reports for r in done],
        rounds=[round(r) for r in rates],
        reports_per_s=Spread.of(rates).rounded(),
        stage_cpu_reports_per_s=Spread.of(
            [r.reports / (r.decide_s + r.serialise_s) for r in done]
        ).rounded(),
        mean_us_per_report=round(1e6 / statistics.median(rates), 1),
        add_us_mean=round(statistics.fmean(adds), 1),
        add_us_p99=round(percentile(adds, 99), 1),
        add_us_max=round(max(adds), 1),
        batch_ms_p99=round(percentile([ms for r in done for ms in r.batch_ms], 99), 1),
        serialise_us_per_report=round(
            statistics.median(r.serialise_s * 1e6 / r.reports for r in done), 1
        ),
        without_suggestions_rounds=[round(r.rate) for r in without],
        without_suggestions=Spread.of([r.rate for r in without]).rounded(),
        hotline_share=_share(sum(e.source_kind == "hotline" for e in fed), len(fed)),
        located_share=_share(sum(e.location.status == "located" for e in fed), len(fed)),
        joined_share=_share(first.changes["merged"] + first.changes["reopened"], len(fed)),
        opened_share=_share(first.changes["opened"], len(fed)),
        db_rows_per_report={k: round(v / len(fed), 2) for k, v in first.rows.items()},
        correlator_mib=round(correlator_mib, 1),
        table_mib=round(table_mib, 1),
        bytes_per_incident=round(correlator_mib * 2**20 / max(1, len(held))),
        setup_s=round(setup_s, 1),
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def as_dict(result: CeilingResult) -> dict[str, Any]:
    return asdict(result)


def table(r: CeilingResult) -> dict[str, Any]:
    """The figures as the command prints them, one line each."""

    def spread(s: Spread) -> str:
        return f"{s.median:,} (min {s.min:,}, max {s.max:,})"

    rows = r.db_rows_per_report
    return {
        "open incidents held": f"{r.open_incidents:,} ({r.district_only:,} placed only by "
        f"district) in {r.cells:,} cells",
        "steady state of": f"{r.problems_per_hour:,} problems/h ({r.problems_preloaded:,} "
        f"planned, {r.preload_reports:,} reports added)",
        "pinned to core": "none" if r.core is None else r.core,
        "batch": f"{r.batch:,} reports",
        "reports each round": ", ".join(f"{n:,}" for n in r.round_reports),
        "mix fed": f"{r.hotline_share:.1%} hotline, {r.located_share:.1%} located, "
        f"{r.joined_share:.1%} joined, {r.opened_share:.1%} opened",
        "reports/s each round": ", ".join(f"{v:,}" for v in r.rounds),
        "reports/s (median of rounds)": spread(r.reports_per_s),
        "mean per report": f"{r.mean_us_per_report:,} µs",
        "add() mean / p99 / max": f"{r.add_us_mean:,} / {r.add_us_p99:,} / {r.add_us_max:,} µs",
        "batch p99": f"{r.batch_ms_p99:,} ms",
        "serialisation per report": f"{r.serialise_us_per_report} µs (events in, cells and "
        "incident messages out)",
        "stage CPU reports/s": spread(r.stage_cpu_reports_per_s),
        "without merge suggestions, each round": ", ".join(
            f"{v:,}" for v in r.without_suggestions_rounds
        ),
        "without merge suggestions reports/s": spread(r.without_suggestions),
        "database rows per report": ", ".join(f"{k} {v:,}" for k, v in rows.items()),
        "state memory": f"correlator {r.correlator_mib} MiB ({r.bytes_per_incident:,.0f} "
        f"bytes an incident), table {r.table_mib} MiB",
        "setup": f"{r.setup_s} s",
    }
