"""The poison scenario sends the normalize stage's one bad-input corpus (the file the feed
tests check) to the raw topics of its feeds."""

from __future__ import annotations

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.feeds.normalize import REASONS
from citybrain_tools.chaos import poison


def test_the_corpus_is_the_feed_tests_file_read_to_bytes() -> None:
    corpus = poison.raw_corpus()
    assert poison.CORPUS_FILE.parts[-3:] == ("tests", "data", "bad_input.jsonl")
    assert {reason for _, _, reason in corpus} == set(REASONS) - {"internal_error"}
    raws = {reason: raw for _, raw, reason in corpus}
    assert raws["malformed_json"] == b"{not json"
    assert len(raws["payload_too_large"]) == 1_100_011  # {"pad": "x...x"}
    gas = next(raw for feed, raw, _ in corpus if feed == "gas-leak")
    assert gas.endswith(b"\xff\xfe\x80")  # bytes that are no text in any encoding


def test_every_corpus_record_goes_to_its_feed_s_raw_topic() -> None:
    topics = {f.name: f.topic for f in load_feeds(BUILTIN_DIR)}
    for feed, _, _ in poison.raw_corpus():
        assert poison.raw_topics()[feed] == topics[feed]
