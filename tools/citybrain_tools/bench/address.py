"""`citybrain bench address`: the address matcher on the labelled hotline sample.

Match rate: of the addresses that name a place, the share placed (confidence at or above
the threshold). Accuracy: of those placed, the share placed at the labelled entry, and at
the labelled district. Vague texts must not be placed (needs_location rate).
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from citybrain.geo.address import DEFAULT_THRESHOLD, Gazetteer, load_gazetteer
from citybrain.geo.pack import load_pack


@dataclass
class AddressBenchResult:
    samples: int
    placeable: int
    vague: int
    match_rate: float
    accuracy_entry: float
    accuracy_district: float
    vague_kept_for_operator: float
    matches_per_s: float
    misses: list[str]


def load_sample(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        return [(r["text"], r["expected_entry"], r["expected_district"]) for r in reader]


def evaluate(
    gazetteer: Gazetteer, sample: list[tuple[str, str, str]], threshold: float = DEFAULT_THRESHOLD
) -> AddressBenchResult:
    placeable = [s for s in sample if s[1]]
    vague = [s for s in sample if not s[1]]
    placed = right_entry = right_district = 0
    misses = []
    started = time.perf_counter()
    results = [gazetteer.match(text) for text, _, _ in sample]
    seconds = time.perf_counter() - started
    for (text, entry, district), m in zip(sample, results, strict=True):
        if not entry:
            continue
        if m.placed(threshold):
            placed += 1
            right_entry += m.entry is not None and m.entry.name == entry
            right_district += m.district == district
            if m.entry is not None and m.entry.name != entry:
                misses.append(f"{text} -> {m.entry.name} (want {entry})")
        else:
            misses.append(f"{text} -> not placed ({m.confidence})")
    vague_ok = sum(
        not m.placed(threshold) for (_, e, _), m in zip(sample, results, strict=True) if not e
    )
    return AddressBenchResult(
        samples=len(sample),
        placeable=len(placeable),
        vague=len(vague),
        match_rate=round(placed / max(1, len(placeable)), 3),
        accuracy_entry=round(right_entry / max(1, placed), 3),
        accuracy_district=round(right_district / max(1, placed), 3),
        vague_kept_for_operator=round(vague_ok / max(1, len(vague)), 3),
        matches_per_s=round(len(sample) / seconds),
        misses=misses,
    )


def run_address_bench(pack_name: str, sample_path: Path) -> AddressBenchResult:
    return evaluate(load_gazetteer(load_pack(pack_name)), load_sample(sample_path))


def as_dict(result: AddressBenchResult) -> dict[str, Any]:
    return asdict(result)
