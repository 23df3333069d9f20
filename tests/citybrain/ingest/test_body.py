"""HTTP ingestion bodies (pure): the content types each feed takes, the records a body
carries with their keys, the records the normalize stage will dead-letter (named by line
or index, never dropped), and the refusals (400, 413, 415) with their field and reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feeds
from citybrain.feeds.pipeline import RawRecord, normalize_batch
from citybrain.feeds.samples import read_samples
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.ingest.body import (
    CSV,
    JSON,
    Records,
    Refusal,
    accepted_types,
    key_of,
    media_type,
    split,
)

FEEDS = {f.name: f for f in load_feeds(BUILTIN_DIR)}
LIGHT = {"lampId": "SL-1", "eventCode": "LAMP_OFF", "eventTime": "2026-11-23T11:03:12Z"}
AQ_HEADER = b"station,timestamp,pm25,pm10,lng,lat"
AQ_LINE = b"AQ-JA-07,2026-11-24 09:10,38,61,121.4471,31.2312"
GAS = {"设备编号": "GAS-1", "报警时间": "2026/11/24 09:20:11", "报警类型": "燃气泄漏", "浓度": "27"}


def light(n: int, **extra: Any) -> bytes:
    return orjson.dumps({**LIGHT, "lampId": f"SL-{n}", **extra})


def feed(name: str) -> Feed:
    return FEEDS[name]


# --- content types ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("streetlight", "application/json", JSON),
        ("streetlight", "Application/JSON; charset=UTF-8", JSON),
        ("streetlight", "application/x-ndjson", "application/x-ndjson"),
        ("streetlight", "application/jsonl; charset=utf8", "application/jsonl"),
        ("air-quality", "text/csv", CSV),
        ("air-quality", "text/csv; charset=utf-8", CSV),
        ("gas-leak", "application/x-ndjson; charset=GBK", "application/x-ndjson"),
        ("gas-leak", "application/json", JSON),
    ],
)
def test_the_content_types_a_feed_takes(name: str, content_type: str, expected: str) -> None:
    assert media_type(content_type, feed(name)) == expected


@pytest.mark.parametrize(
    ("name", "content_type", "reason"),
    [
        ("streetlight", None, "none given: feed streetlight takes application/json, "),
        ("streetlight", "", "none given"),
        ("streetlight", "text/csv", "text/csv: feed streetlight takes application/json"),
        ("streetlight", "text/plain", "text/plain: feed streetlight takes"),
        ("air-quality", "application/json", "application/json: feed air-quality takes text/csv"),
        ("streetlight", "application/json; charset=gbk", "charset gbk: feed streetlight's"),
        ("gas-leak", "application/json; charset=utf-8", "records are gbk"),
        ("streetlight", "application/json; charset=nonsense", "charset nonsense"),
    ],
)
def test_a_content_type_the_feed_does_not_take_is_415(
    name: str, content_type: str | None, reason: str
) -> None:
    with pytest.raises(Refusal) as refused:
        media_type(content_type, feed(name))
    assert (refused.value.status, refused.value.field) == (415, "content-type")
    assert reason in refused.value.reason


def test_accepted_types_follow_the_declared_format() -> None:
    assert accepted_types(feed("streetlight")) == (
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
    )
    assert accepted_types(feed("air-quality")) == ("text/csv",)


# --- records, keys and notes ----------------------------------------------------------------------
# (id, feed, media, body, values, keys, notes as (line or index, reason))
OK: list[tuple[str, str, str, bytes, list[bytes], list[bytes | None], list[tuple[int, str]]]] = [
    (
        "json-lines",
        "streetlight",
        "application/x-ndjson",
        light(1) + b"\n" + light(2) + b"\n",
        [light(1), light(2)],
        [b"SL-1", b"SL-2"],
        [],
    ),
    (
        "crlf-blank-lines-skipped",
        "streetlight",
        "application/jsonl",
        b"\r\n" + light(1) + b"\r\n\r\n  \n" + light(2),
        [light(1), light(2)],
        [b"SL-1", b"SL-2"],
        [],
    ),
    (
        "a-line-not-json-is-written-and-named",
        "streetlight",
        "application/x-ndjson",
        light(1) + b"\n{not json\n" + light(3),
        [light(1), b"{not json", light(3)],
        [b"SL-1", None, b"SL-3"],
        [(2, "malformed_json")],
    ),
    (
        "a-line-not-an-object",
        "streetlight",
        "application/x-ndjson",
        b"[1, 2]\n" + light(2),
        [b"[1, 2]", light(2)],
        [None, b"SL-2"],
        [(1, "schema_violation")],
    ),
    (
        "a-nul-character",
        "streetlight",
        "application/x-ndjson",
        b'{"lampId": "SL-\\u0000"}',
        [b'{"lampId": "SL-\\u0000"}'],
        [None],
        [(1, "undecodable_bytes")],
    ),
    (
        "no-device-id-no-key",
        "streetlight",
        "application/x-ndjson",
        b'{"eventCode": "LAMP_OFF"}\n{"lampId": ""}\n{"lampId": 42}',
        [b'{"eventCode": "LAMP_OFF"}', b'{"lampId": ""}', b'{"lampId": 42}'],
        [None, None, b"42"],
        [],
    ),
    (
        "utf8-bom",
        "streetlight",
        "application/x-ndjson",
        b"\xef\xbb\xbf" + light(1),
        [b"\xef\xbb\xbf" + light(1)],
        [b"SL-1"],
        [],
    ),
    (
        "json-array",
        "streetlight",
        JSON,
        orjson.dumps([orjson.loads(light(1)), orjson.loads(light(2))]),
        [light(1), light(2)],
        [b"SL-1", b"SL-2"],
        [],
    ),
    ("json-object", "streetlight", JSON, light(7), [light(7)], [b"SL-7"], []),
    (
        "json-array-with-a-number",
        "streetlight",
        JSON,
        b"[" + light(1) + b", 42]",
        [light(1), b"42"],
        [b"SL-1", None],
        [(1, "schema_violation")],
    ),
    (
        "csv-header-skipped",
        "air-quality",
        CSV,
        AQ_HEADER + b"\r\n" + AQ_LINE + b"\r\n",
        [AQ_LINE],
        [b"AQ-JA-07"],
        [],
    ),
    ("csv-without-header", "air-quality", CSV, AQ_LINE, [AQ_LINE], [b"AQ-JA-07"], []),
    (
        "csv-wrong-field-count",
        "air-quality",
        CSV,
        AQ_HEADER + b"\n" + AQ_LINE + b"\nAQ-1,2026-11-24 09:10,38\n",
        [AQ_LINE, b"AQ-1,2026-11-24 09:10,38"],
        [b"AQ-JA-07", None],
        [(3, "malformed_csv")],
    ),
    (
        "gbk-lines-kept-as-sent",
        "gas-leak",
        "application/x-ndjson",
        orjson.dumps(GAS).decode().encode("gbk") + b"\n\xff\xfe\n",
        [orjson.dumps(GAS).decode().encode("gbk"), b"\xff\xfe"],
        [b"GAS-1", None],
        [(2, "undecodable_bytes")],
    ),
]


@pytest.mark.parametrize(
    ("name", "media", "body", "values", "keys", "notes"),
    [case[1:] for case in OK],
    ids=[case[0] for case in OK],
)
def test_records_keys_and_notes(
    name: str,
    media: str,
    body: bytes,
    values: list[bytes],
    keys: list[bytes | None],
    notes: list[tuple[int, str]],
) -> None:
    got = split(feed(name), media, body, 100)
    assert got.values == values
    assert got.keys == keys
    where = "index" if media == JSON else "line"
    assert [(n[where], n["reason"]) for n in got.notes] == notes
    assert all(n["detail"] for n in got.notes)


def test_a_gbk_json_body_becomes_gbk_records() -> None:
    body = orjson.dumps([GAS, {**GAS, "设备编号": "GAS-2"}]).decode().encode("gbk")
    got = split(feed("gas-leak"), JSON, body, 10)
    assert got.keys == [b"GAS-1", b"GAS-2"]
    assert got.values[0] == orjson.dumps(GAS).decode().encode("gbk")
    assert got.notes == []


def test_a_gbk_record_with_characters_gbk_lacks_keeps_them_escaped() -> None:
    # the vendor escaped what GBK lacks (JSON \u escapes); the record keeps them escaped
    body = json.dumps({**GAS, "note": "☃ snow 😀"}).encode("gbk")
    got = split(feed("gas-leak"), JSON, body, 10)
    assert got.notes == [] and got.keys == [b"GAS-1"]
    assert b"\\u2603" in got.values[0]
    assert orjson.loads(got.values[0].decode("gbk"))["note"] == "☃ snow 😀"


# --- refusals ----------------------------------------------------------------------------------
# (id, feed, media, body, max records, status, field, reason fragment)
REFUSED: list[tuple[str, str, str, bytes, int, int, str, str]] = [
    ("empty", "streetlight", JSON, b"", 10, 400, "body", "empty: no records"),
    ("blank", "streetlight", "application/x-ndjson", b" \n\r\n", 10, 400, "body", "empty"),
    ("header-only", "air-quality", CSV, AQ_HEADER + b"\n", 10, 400, "body", "a header only"),
    ("not-json", "streetlight", JSON, b'{"a": 1,}', 10, 400, "body", "not JSON: trailing comma"),
    ("a-scalar", "streetlight", JSON, b"42", 10, 400, "body", "a JSON object or an array"),
    ("empty-array", "streetlight", JSON, b"[]", 10, 400, "body", "an empty array"),
    ("not-gbk", "gas-leak", JSON, b'{"a": "\xff"}', 10, 400, "body", "not gbk"),
    (
        "too-many-lines",
        "streetlight",
        "application/x-ndjson",
        b"\n".join(light(n) for n in range(4)),
        3,
        413,
        "body",
        "4 records: at most 3 a request",
    ),
    (
        "too-many-in-an-array",
        "streetlight",
        JSON,
        orjson.dumps([LIGHT] * 4),
        3,
        413,
        "body",
        "4 records: at most 3 a request",
    ),
    (
        "a-line-over-the-feeds-max-bytes",
        "streetlight",
        "application/x-ndjson",
        light(1) + b"\n" + light(2, pad="x" * 1_048_576),
        10,
        413,
        "body.line.2",
        "bytes: at most 1000000 bytes a record",
    ),
    (
        "an-element-over-the-feeds-max-bytes",
        "streetlight",
        JSON,
        b"[" + light(1) + b"," + light(2, pad="x" * 1_048_576) + b"]",
        10,
        413,
        "body.1",
        "at most 1000000 bytes a record",
    ),
]


@pytest.mark.parametrize(
    ("name", "media", "body", "most", "status", "field", "reason"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refusals_name_the_field_and_the_reason(
    name: str, media: str, body: bytes, most: int, status: int, field: str, reason: str
) -> None:
    with pytest.raises(Refusal) as refused:
        split(feed(name), media, body, most)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert reason in refused.value.reason


def test_a_record_over_the_feed_s_own_max_bytes_is_413() -> None:
    streetlight = feed("streetlight")
    definition = streetlight.definition
    small = replace(
        streetlight,
        definition=definition.model_copy(
            update={"source": definition.source.model_copy(update={"max_bytes": 150})}
        ),
    )
    body = light(1) + b"\n" + light(2, pad="x" * 100)
    assert len(light(1)) <= 150 < len(light(2, pad="x" * 100))
    with pytest.raises(Refusal) as refused:
        split(small, "application/x-ndjson", body, 10)
    assert (refused.value.status, refused.value.field) == (413, "body.line.2")
    assert refused.value.reason.endswith("at most 150 bytes a record")


# --- the records are what a Kafka vendor would send -----------------------------------------------
def test_the_records_normalize_exactly_as_the_vendors_kafka_records() -> None:
    """The streetlight samples POSTed as JSON lines and as a JSON array give the same
    events as the sample records themselves."""
    streetlight = feed("streetlight")
    path = streetlight.sample_path()
    assert path is not None
    samples = read_samples(streetlight, path)
    pack = load_pack("shanghai")
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def events(records: list[bytes]) -> list[dict[str, Any]]:
        raw = [RawRecord(v, "raw.iot.streetlight", 0, i) for i, v in enumerate(records)]
        out = normalize_batch(streetlight, raw, tagger, {}, now)
        assert out.rejects == []
        return [e.to_dict() for e in out.events]

    expected = events([r.value for r in samples if r.value is not None])
    lines = b"\n".join(r.value for r in samples if r.value is not None)
    array = orjson.dumps([orjson.loads(r.value) for r in samples if r.value is not None])
    for body, media in ((lines, "application/x-ndjson"), (array, JSON)):
        got: Records = split(streetlight, media, body, 100)
        assert events(got.values) == expected
        assert got.keys == [orjson.loads(v)["lampId"].encode() for v in got.values]


def test_key_of_follows_the_device_id_path() -> None:
    assert key_of(feed("streetlight"), {"lampId": "SL-9"}) == b"SL-9"
    assert key_of(feed("streetlight"), {"lampId": None}) is None
    assert key_of(feed("streetlight"), {"lampId": True}) is None
    assert key_of(feed("streetlight"), {"lampId": {"a": 1}}) is None
    assert key_of(feed("hotline-12345"), {"ticketNo": "T-1"}) is None  # no device id path
