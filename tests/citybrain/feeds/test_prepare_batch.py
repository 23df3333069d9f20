"""The normalize stage's batch decision with isolation (pure): a record that makes the
pipeline raise is handed back as a failure and the rest of the batch is normalized."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from citybrain.feeds import pipeline as batch_module
from citybrain.feeds.definition import Feed
from citybrain.feeds.pipeline import BatchOutput, RawRecord, prepare_batch
from citybrain.feeds.pipeline import normalize_batch as real_normalize
from citybrain.geo.geotag import Geotagger
from tests.citybrain.feeds.conftest import NOW
from tests.citybrain.feeds.test_normalize import smoke


def test_a_batch_that_raises_is_done_again_record_by_record(
    feeds: dict[str, Feed], tagger: Geotagger, monkeypatch: Any
) -> None:
    def exploding(
        feed: Feed, records: Sequence[RawRecord], g: Geotagger, s: Any, now: datetime
    ) -> BatchOutput:
        if any(r.offset == 2 for r in records):
            raise RuntimeError("a bug this record finds")
        return real_normalize(feed, records, g, s, now)

    monkeypatch.setattr(batch_module, "normalize_batch", exploding)
    records = [
        RawRecord(smoke(alarmTime="2026-11-24 08:00:00"), "t", 0, 1),
        RawRecord(smoke(alarmTime="2026-11-24 08:00:03"), "t", 0, 2),
        RawRecord(smoke(alarmTime="2026-11-24 08:00:05"), "t", 0, 3),
        RawRecord(b"{oops", "t", 0, 4),
    ]
    out, failures = prepare_batch(feeds["smoke-alarm"], records, tagger, {}, NOW)
    assert [e.raw_ref.offset for e in out.events] == [1, 3]
    assert [(i, str(e)) for i, e in failures] == [(1, "a bug this record finds")]
    assert [(i, r.reason) for i, r in out.rejects] == [(3, "malformed_json")]


def test_a_good_batch_is_done_at_once(feeds: dict[str, Feed], tagger: Geotagger) -> None:
    records = [RawRecord(smoke(), "t", 0, 1), RawRecord(b"{oops", "t", 0, 2)]
    out, failures = prepare_batch(feeds["smoke-alarm"], records, tagger, {}, NOW)
    assert failures == [] and len(out.events) == 1 and [i for i, _ in out.rejects] == [1]
