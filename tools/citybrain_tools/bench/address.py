"""`citybrain bench address`: the address matcher on the labelled hotline sample, and its
throughput and memory with a large register.

The sample (`tests/data/addresses_labelled.tsv`) is written by hand, apart from the
registers: callers' texts in their own words (colloquial order, no district, typos,
full-width digits, Chinese numerals, 号/弄/栋/单元 variants, a wrong district), each labelled
with the register entry it means (`kind:key`, or `-`) and the district where the place truly
is. Figures, per city pack:

- placed: of the texts that name a register entry, the share placed (confidence >= 0.5);
- within 300 m: of those placed, the share within 300 m of the labelled entry;
- wrong district: texts placed (any of them) in another district than the labelled one.
  This must be 0: the matcher may decline, never mislead.

With `--register N` the bench also builds a generated register of N entries in the city
(`bench/register.py`) and times the matcher on texts about it: texts per second on one core
(target 5,000 with 100,000 entries) and the memory the matcher holds (tracemalloc).
"""

from __future__ import annotations

import csv
import math
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import LineString

from citybrain.geo.address import DEFAULT_THRESHOLD, Gazetteer, GazetteerEntry, load_gazetteer
from citybrain.geo.address import normalize as normalize_text
from citybrain.geo.pack import load_pack

SAMPLE = Path("tests/data/addresses_labelled.tsv")
WITHIN_M = 300.0
#: the matcher's target with a register of 100,000 entries, texts per second on one core
TARGET_TEXTS_PER_S = 5_000


@dataclass(frozen=True)
class Labelled:
    pack: str
    text: str
    place: str  # kind:key or "-"
    district: str  # code or "-"
    kind: str


@dataclass
class PackFigures:
    pack: str
    texts: int
    naming_a_place: int
    placed: int
    placed_share: float
    within_300m: int
    within_300m_share: float
    wrong_district: int
    vague_placed: int  # texts naming no register entry but placed (by a place they name)
    misses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


@dataclass
class ThroughputFigures:
    register_entries: int
    build_seconds: float
    matcher_mib: float  # Python allocations the matcher holds (tracemalloc)
    matcher_rss_mib: float  # the process's resident memory grown while building it
    texts: int
    texts_per_s: float
    placed_share: float


def load_sample(path: Path = SAMPLE) -> list[Labelled]:
    with path.open(encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        return [
            Labelled(r["pack"], r["text"], r["place"].strip(), r["district"].strip(), r["kind"])
            for r in reader
        ]


def labelled_point(gazetteer: Gazetteer, place: str, district: str) -> tuple[float, float] | None:
    """The point of a labelled place (`kind:key`) in the gazetteer; None if it is not there."""
    kind, _, key = place.partition(":")
    if kind == "intersection":
        a, _, b = key.partition("|")
        lines_a = [e for e in gazetteer.by_key.get(normalize_text(a), []) if len(e.line) >= 2]
        lines_b = [e for e in gazetteer.by_key.get(normalize_text(b), []) if len(e.line) >= 2]
        for ea in lines_a:
            for eb in lines_b:
                where = LineString(ea.line).intersection(LineString(eb.line))
                if not where.is_empty:
                    p = where.representative_point()
                    return float(p.x), float(p.y)
        return None
    found: list[GazetteerEntry] = [
        e for e in gazetteer.by_key.get(normalize_text(key), []) if e.kind == kind
    ]
    in_district = [e for e in found if e.district == district]
    chosen = in_district or found
    return (chosen[0].lon, chosen[0].lat) if chosen else None


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres (haversine)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def evaluate(
    gazetteer: Gazetteer, sample: list[Labelled], pack: str, threshold: float = DEFAULT_THRESHOLD
) -> PackFigures:
    """The figures of one city's lines of the sample."""
    mine = [s for s in sample if s.pack == pack]
    naming = placed = within = wrong = vague_placed = 0
    misses: list[str] = []
    wrongs: list[str] = []
    for s in mine:
        m = gazetteer.match(s.text)
        is_placed = m.placed(threshold)
        if is_placed and s.district != "-" and m.district != s.district:
            wrong += 1
            wrongs.append(f"{s.text} -> {m.entry.name if m.entry else '?'} in {m.district}")
        if s.place == "-":
            vague_placed += is_placed
            continue
        naming += 1
        if not is_placed:
            misses.append(f"{s.text} -> not placed ({m.confidence}; {'; '.join(m.reasons)})")
            continue
        placed += 1
        truth = labelled_point(gazetteer, s.place, s.district)
        got = (m.lon, m.lat)
        near = (
            truth is not None
            and got[0] is not None
            and got[1] is not None
            and metres(truth, (float(got[0]), float(got[1]))) <= WITHIN_M
        )
        if near:
            within += 1
            continue
        misses.append(f"{s.text} -> {m.entry.name if m.entry else '?'} (want {s.place})")
    return PackFigures(
        pack=pack,
        texts=len(mine),
        naming_a_place=naming,
        placed=placed,
        placed_share=round(placed / max(1, naming), 3),
        within_300m=within,
        within_300m_share=round(within / max(1, placed), 3),
        wrong_district=wrong,
        vague_placed=vague_placed,
        misses=misses,
        wrong=wrongs,
    )


def run_labelled(sample_path: Path = SAMPLE, packs: list[str] | None = None) -> list[PackFigures]:
    sample = load_sample(sample_path)
    names = packs or sorted({s.pack for s in sample})
    return [evaluate(load_gazetteer(load_pack(p)), sample, p) for p in names]


def run_throughput(pack_name: str, entries: int, texts: int = 20_000) -> ThroughputFigures:
    """Build a matcher over a generated register and time it on texts about the register."""
    from citybrain_tools.bench.register import generate_register

    pack = load_pack(pack_name)
    generated = generate_register(pack, entries, texts)
    rss_before = _rss_bytes()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    started = time.perf_counter()
    gazetteer = load_gazetteer(pack, generated.entries)
    build_seconds = time.perf_counter() - started
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    rss_grown = _rss_bytes() - rss_before
    started = time.perf_counter()
    placed = sum(gazetteer.match(t).placed() for t in generated.texts)
    seconds = time.perf_counter() - started
    return ThroughputFigures(
        register_entries=len(generated.entries),
        build_seconds=round(build_seconds, 2),
        matcher_mib=round(held / 2**20, 1),
        matcher_rss_mib=round(rss_grown / 2**20, 1),
        texts=len(generated.texts),
        texts_per_s=round(len(generated.texts) / seconds),
        placed_share=round(placed / max(1, len(generated.texts)), 3),
    )


def _rss_bytes() -> int:
    import os

    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def as_dict(result: PackFigures | ThroughputFigures) -> dict[str, Any]:
    return asdict(result)
