"""`citybrain bench address` on the labelled sample: the address matcher's figures."""

from __future__ import annotations

from pathlib import Path

from citybrain.geo.address import load_gazetteer
from citybrain.geo.pack import load_pack
from citybrain_tools.bench.address import evaluate, load_sample

SAMPLE = Path(__file__).parents[2] / "data" / "addresses_shanghai.tsv"


def test_labelled_sample_figures() -> None:
    sample = load_sample(SAMPLE)
    assert len(sample) >= 200
    result = evaluate(load_gazetteer(load_pack("shanghai")), sample)
    assert result.match_rate >= 0.95, result.misses
    assert result.accuracy_entry >= 0.95, result.misses
    assert result.vague_kept_for_operator >= 0.95, result.misses
