"""The normaliser on every class of bad input, and on good records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from citybrain.feeds.definition import Feed
from citybrain.feeds.normalize import REASONS, Reject, parse
from citybrain.feeds.pipeline import RawRecord, normalize_batch
from citybrain.geo.geotag import Geotagger
from tests.citybrain.feeds.conftest import NOW

SMOKE = {
    "deviceSerial": "SM-1",
    "alarmType": "1",
    "alarmTime": "2026-11-24 08:41:07",
    "location": {"lng": 121.48213, "lat": 31.23011},
}


def smoke(**changes: object) -> bytes:
    doc = json.loads(json.dumps(SMOKE))
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc, ensure_ascii=False).encode()


#: The normalize stage's bad-input corpus (`citybrain chaos` sends it to a live worker too):
#: a JSON line per record with its feed, the reason it must be rejected with, and its
#: payload: text (a \udcXX escape is a byte that is not UTF-8; a NUL character, which would
#: stop the stage that stores the text, is rejected up front) or a list of pieces, a
#: [text, n] piece standing for text n times.
CORPUS = Path(__file__).parents[2] / "data" / "bad_input.jsonl"


def payload(piece: str | list[Any]) -> bytes:
    text = (
        piece
        if isinstance(piece, str)
        else "".join(p if isinstance(p, str) else p[0] * p[1] for p in piece)
    )
    return text.encode("utf-8", "surrogateescape")


BAD = [
    (d["feed"], payload(d["payload"]), d["reason"])
    for d in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines())
]


@pytest.mark.parametrize(
    ("feed_name", "raw", "reason"), BAD, ids=[f"{r}-{i}" for i, (_, _, r) in enumerate(BAD)]
)
def test_bad_input_is_rejected_with_its_reason(
    feeds: dict[str, Feed], tagger: Geotagger, feed_name: str, raw: bytes, reason: str
) -> None:
    assert reason in REASONS
    out = normalize_batch(feeds[feed_name], [RawRecord(raw, "t", 0, 7)], tagger, {}, NOW)
    assert [(i, r.reason) for i, r in out.rejects] == [(0, reason)], [
        str(r) for _, r in out.rejects
    ]
    assert out.events == [] and out.readings == []


def test_every_reason_but_internal_error_is_covered() -> None:
    covered = {reason for _, _, reason in BAD}
    assert covered == set(REASONS) - {"internal_error"}


def test_good_records_around_a_bad_one_still_pass(
    feeds: dict[str, Feed], tagger: Geotagger
) -> None:
    batch = [
        RawRecord(smoke(alarmTime="2026-11-24 08:00:00"), "t", 0, 1),
        RawRecord(b"{oops", "t", 0, 2),
        RawRecord(smoke(alarmTime="2026-11-24 08:00:05"), "t", 0, 3),
    ]
    out = normalize_batch(feeds["smoke-alarm"], batch, tagger, {}, NOW)
    assert [e.raw_ref.offset for e in out.events] == [1, 3]
    assert [i for i, _ in out.rejects] == [1]


def test_event_ids_are_deterministic(feeds: dict[str, Feed], tagger: Geotagger) -> None:
    one = normalize_batch(feeds["smoke-alarm"], [RawRecord(smoke(), "t", 0, 1)], tagger, {}, NOW)
    two = normalize_batch(feeds["smoke-alarm"], [RawRecord(smoke(), "t", 3, 99)], tagger, {}, NOW)
    assert (
        one.events[0].event_id
        == two.events[0].event_id
        == ("smoke-alarm:SM-1:2026-11-24 08:41:07:1")
    )


def test_timestamps_use_the_feed_time_zone(feeds: dict[str, Feed]) -> None:
    rec = parse(feeds["smoke-alarm"], smoke(), NOW)
    assert rec.observed_at.isoformat() == "2026-11-24T00:41:07+00:00"  # 08:41 in Shanghai


def test_units_are_converted(feeds: dict[str, Feed]) -> None:
    rec = parse(
        feeds["water-level"],
        b'{"devId": "WL00000", "ts": 1764030000000, "data": {"level": "85.5"}}',
        NOW,
    )
    assert rec.readings == [("level_m", pytest.approx(0.855), "m")]


def test_hotline_phone_numbers_are_masked_and_kept_apart(
    feeds: dict[str, Feed], tagger: Geotagger
) -> None:
    raw = json.dumps(
        {
            "ticketNo": "T1",
            "acceptTime": "2026-11-24 09:00:00",
            "callerPhone": "13812345678",
            "category": "排水-道路积水",
            "urgency": "紧急",
            "content": "回电 13812345678，世纪大道2001号积水",
            "address": "浦东新区世纪大道2001号",
        },
        ensure_ascii=False,
    ).encode()
    out = normalize_batch(
        feeds["hotline-12345"], [RawRecord(raw, "raw.hotline", 0, 1)], tagger, {}, NOW
    )
    event = out.events[0]
    assert "13812345678" not in event.to_json().decode()
    assert event.caller_phone_masked == "*******5678"
    assert event.text == "回电 *******5678，世纪大道2001号积水"
    assert out.contacts == [("hotline-12345:T1", "13812345678", None)]
    assert event.location.district == "310115" and event.location.method == "address"


def test_gbk_payloads_decode(feeds: dict[str, Feed], tagger: Geotagger) -> None:
    raw = json.dumps(
        {
            "设备编号": "G9",
            "报警时间": "2026/11/24 09:20:11",
            "报警类型": "燃气泄漏",
            "浓度": "27",
            "经度": 121.5512,
            "纬度": 31.2281,
        },
        ensure_ascii=False,
    ).encode("gbk")
    out = normalize_batch(feeds["gas-leak"], [RawRecord(raw, "t", 0, 1)], tagger, {}, NOW)
    assert [(e.kind, e.category, e.severity) for e in out.events] == [("alarm", "gas_leak", 1)]
    assert out.events[0].location.source_crs == "BD-09"


def test_reject_carries_reason() -> None:
    assert Reject("bad_timestamp", "x").reason == "bad_timestamp"


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""])
def test_a_byte_order_mark_before_the_payload_is_accepted(
    feeds: dict[str, Feed], tagger: Geotagger, bom: bytes
) -> None:
    out = normalize_batch(
        feeds["smoke-alarm"], [RawRecord(bom + smoke(), "t", 0, 1)], tagger, {}, NOW
    )
    assert out.rejects == [] and len(out.events) == 1


def test_long_free_text_is_cut_and_its_original_size_kept(feeds: dict[str, Feed]) -> None:
    feed = feeds["hotline-12345"]
    cap = feed.definition.event.max_text  # type: ignore[union-attr]
    line = (feed.sample_path() or Path()).read_text(encoding="utf-8").splitlines()[0]
    doc = json.loads(line)
    doc["content"] = "积水" * cap + " 来电人电话138 1234 5678"
    rec = parse(feed, json.dumps(doc, ensure_ascii=False).encode(), NOW)
    assert rec.text is not None and len(rec.text) <= cap
    assert rec.attributes["text_chars"] == len(doc["content"])
    short = parse(feed, line.encode(), NOW)
    assert "text_chars" not in short.attributes


def test_a_cut_never_leaves_part_of_a_phone_number(feeds: dict[str, Feed]) -> None:
    feed = feeds["hotline-12345"]
    cap = feed.definition.event.max_text  # type: ignore[union-attr]
    doc = json.loads((feed.sample_path() or Path()).read_text(encoding="utf-8").splitlines()[0])
    doc["content"] = "x" * (cap - 7) + "13812345678 请回电"  # the cap falls inside the number
    rec = parse(feed, json.dumps(doc, ensure_ascii=False).encode(), NOW)
    assert rec.text == "x" * (cap - 7)


def test_a_number_in_the_address_is_masked_in_the_event(
    feeds: dict[str, Feed], tagger: Geotagger
) -> None:
    feed = feeds["hotline-12345"]
    doc = json.loads((feed.sample_path() or Path()).read_text(encoding="utf-8").splitlines()[0])
    doc["address"] = "浦东新区世纪大道2001号 联系 139-1234-5678"
    out = normalize_batch(feed, [RawRecord(json.dumps(doc).encode(), "t", 0, 1)], tagger, {}, NOW)
    (event,) = out.events
    assert event.location.address is not None and "1234-5678" not in event.location.address
    assert event.location.address.endswith("***-****-5678")
