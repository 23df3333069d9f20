"""`citybrain bench address`: the figures on the hand-written labelled sample, and a
wrong-district figure that can fail (a sample whose label disagrees with what the matcher
places is counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.geo.address import load_gazetteer
from citybrain.geo.pack import load_pack
from citybrain_tools.bench.address import Labelled, evaluate, load_sample, run_throughput

SAMPLE = Path(__file__).parents[2] / "data" / "addresses_labelled.tsv"


def test_the_labelled_sample_is_large_and_varied() -> None:
    sample = load_sample(SAMPLE)
    assert len(sample) >= 300
    kinds = {s.kind for s in sample}
    assert {"address", "building", "poi", "intersection", "road", "wrong_district"} <= kinds
    assert sum(s.place == "-" for s in sample) >= 40
    assert {s.pack for s in sample} == {"shanghai", "guiyang"}


def test_no_text_of_the_sample_is_placed_in_a_wrong_district() -> None:
    sample = load_sample(SAMPLE)
    for pack in ("shanghai", "guiyang"):
        figures = evaluate(load_gazetteer(load_pack(pack)), sample, pack)
        assert figures.wrong_district == 0, figures.wrong


def test_a_wrong_district_is_counted() -> None:
    gazetteer = load_gazetteer(load_pack("shanghai"))
    lying = [Labelled("shanghai", "东方明珠旁边冒烟", "poi:东方明珠", "310101", "poi")]
    figures = evaluate(gazetteer, lying, "shanghai")
    assert figures.wrong_district == 1 and figures.placed == 1  # it is in 310115


@pytest.mark.parametrize("pack", ["shanghai", "guiyang"])
def test_the_throughput_figures_come_from_a_register_of_the_size_asked(pack: str) -> None:
    speed = run_throughput(pack, 2_000, texts=300)
    assert speed.register_entries == 2_000 and speed.texts == 300
    assert speed.placed_share > 0.5 and speed.texts_per_s > 0 and speed.matcher_mib > 0
