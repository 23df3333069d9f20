"""The simulator's callers speak apart from the correlator: no phrase of the simulator's
vocabulary is in the correlator's configuration or code, and renaming every phrase moves
no correlation figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import citybrain.correlation
from citybrain_tools.accuracy import evaluate
from citybrain_tools.sim.scenario import load_vocabulary

CORRELATION = Path(citybrain.correlation.__file__).parent


def _phrases(words: dict[str, Any]) -> list[str]:
    return [p for key in ("vague", "after", "before") for p in words[key] if p]


def test_the_vocabulary_is_large_and_apart_from_the_correlator() -> None:
    words = load_vocabulary()
    assert len(words["vague"]) >= 40
    config = "".join(p.read_text(encoding="utf-8") for p in CORRELATION.glob("*.*"))
    shared = [p for p in _phrases(words) if len(p) >= 2 and p in config]
    assert shared == []


def test_renaming_every_phrase_moves_no_figure() -> None:
    words = load_vocabulary()
    renamed = {
        **words,
        # the same number of phrases, none alike the old ones (read backwards, marked)
        "vague": [f"嗯{p[::-1]}" for p in words["vague"]],
        "after": ["" if not p else f"{p[::-1]}呢" for p in words["after"]],
        "before": ["" if not p else f"哎{p[::-1]}" for p in words["before"]],
    }
    for seed in (3, 8):
        before = evaluate(3000, seed, 4.0)
        after = evaluate(3000, seed, 4.0, vocabulary=renamed)
        for figure in ("precision", "recall", "located_recall", "suggestion_top3", "incidents"):
            assert getattr(after, figure) == getattr(before, figure), (seed, figure)
