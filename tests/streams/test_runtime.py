"""The worker's collector: what is alive at start-up is frozen, collections are rarer."""

from __future__ import annotations

import gc

from citybrain.streams.runtime import THRESHOLDS, tune_gc


def test_start_up_objects_are_frozen_and_collections_rarer() -> None:
    before = gc.get_threshold()
    try:
        old = tune_gc()
        assert old == before
        assert gc.get_threshold() == THRESHOLDS
        assert THRESHOLDS[0] > 50 * 700  # the young generation: far fewer collections
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
