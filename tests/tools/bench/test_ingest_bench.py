"""`citybrain bench ingest`'s pure parts: the scratch feed is the streetlight feed reading a
topic of its own, and each batch is JSON lines of distinct lamps the route takes whole."""

from __future__ import annotations

from pathlib import Path

from citybrain.feeds.definition import load_feed
from citybrain.ingest.body import split
from citybrain_tools.bench.ingest import FEED, TOPIC, batch_body, feed_folder


def test_the_bench_feed_is_streetlight_on_its_own_topic(tmp_path: Path) -> None:
    feed = load_feed(feed_folder(tmp_path) / f"{FEED}.yaml")
    assert (feed.name, feed.topic, feed.definition.transport_kind) == (FEED, TOPIC, "http")
    assert feed.definition.samples is None


def test_a_batch_is_distinct_lamps_with_no_dead_letter(tmp_path: Path) -> None:
    feed = load_feed(feed_folder(tmp_path) / f"{FEED}.yaml")
    body = batch_body(b"run1", 5000, 1000, b"2026-11-24T01:00:00Z")
    records = split(feed, "application/x-ndjson", body, 5000)
    assert len(records.values) == 1000 and records.notes == []
    assert len(set(records.keys)) == 1000 and records.keys[0] == b"SL-BENCH-run1-5000"
