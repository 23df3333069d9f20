"""Open311 GeoReport v2: services, POST validation, documents, XML and the raw record
through the real open311 feed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from citybrain.api.open311 import (
    REQUEST_FIELDS,
    REQUEST_ID_RE,
    SERVICE_FIELDS,
    Open311Error,
    RequestView,
    Service,
    ServiceRequest,
    errors_document,
    http_status,
    load_services,
    new_request_id,
    open311_status,
    post_response,
    raw_record,
    request_document,
    services_document,
    to_xml,
    validate_request,
    w3c_datetime,
)
from citybrain.config_errors import ConfigError
from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feeds
from citybrain.feeds.pipeline import BatchOutput, RawRecord, normalize_batch
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack

SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=SHANGHAI)


def parse_xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own output


@pytest.fixture(scope="module")
def services() -> list[Service]:
    return load_services()


@pytest.fixture(scope="module")
def feed() -> Feed:
    return {f.name: f for f in load_feeds(BUILTIN_DIR)}["open311"]


@pytest.fixture(scope="module")
def tagger() -> Geotagger:
    pack = load_pack("shanghai")
    return Geotagger(GeoIndex(pack), load_gazetteer(pack))


# --- services -----------------------------------------------------------------------------------
def test_services_cover_exactly_the_feeds_service_codes(
    services: list[Service], feed: Feed
) -> None:
    assert feed.definition.event is not None
    mapped = feed.definition.event.category.map or {}
    assert [s.service_code for s in services] == list(mapped)
    assert all(s.metadata is False and s.type == "realtime" for s in services)


def test_services_document_has_exactly_the_spec_fields(services: list[Service]) -> None:
    doc = services_document(services)
    assert len(doc) == 8
    for item in doc:
        assert tuple(item) == SERVICE_FIELDS
        assert tuple(item) == (
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        )
        assert item["metadata"] is False and item["type"] == "realtime"
        assert isinstance(item["keywords"], str) and item["keywords"]
        assert all(isinstance(item[k], str) and item[k] for k in ("service_name", "group"))
    pothole = next(i for i in doc if i["service_code"] == "pothole")
    assert pothole["keywords"].startswith("pothole, road damage")
    json.dumps(doc)  # the JSON format is the same list


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    metadata: false\n", "    metadata: true\n", ":7: services.0.metadata: Input should"),
        ("service_code: b", "service_code: a", ":9: services.1.service_code: 'a' is listed"),
        ("    group: g\n", "    group: g\n    colour: red\n", ":9: services.0.colour: Extra"),
        ("services:", "services: [", ":3: not valid YAML"),
    ],
)
def test_bad_service_files_name_file_and_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    good = (
        "# test\n"
        "services:\n"
        "  - service_code: a\n"
        "    service_name: A\n"
        "    description: d\n"
        "    type: realtime\n"
        "    metadata: false\n"
        "    group: g\n"
        "  - service_code: b\n"
        "    service_name: B\n"
        "    description: d\n"
        "    group: g\n"
    )
    path = tmp_path / "services.yaml"
    path.write_text(good, encoding="utf-8")
    assert [s.service_code for s in load_services(path)] == ["a", "b"]
    assert good.count(old) >= 1
    path.write_text(good.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_services(path)
    assert f"{path}{expected}" in str(info.value)


# --- POST validation ----------------------------------------------------------------------------
OK_POINT = {"service_code": "pothole", "lat": "31.2304", "long": "121.4737"}

# (id, form, expected errors as (code, description prefix)) -- [] means accepted
CASES: list[tuple[str, dict[str, str], list[tuple[int, str]]]] = [
    ("ok-lat-long", OK_POINT, []),
    ("ok-address-only", {"service_code": "streetlight", "address_string": "人民广场"}, []),
    ("ok-address-id-only", {"service_code": "garbage", "address_id": "SH-0001"}, []),
    (
        "ok-everything",
        {
            **OK_POINT,
            "api_key": "k",
            "jurisdiction_id": "citybrain.example",
            "address_string": "人民广场",
            "email": "li.wei@example.cn",
            "device_id": "tt222111",
            "account_id": "123456",
            "first_name": "Wei",
            "last_name": "Li",
            "phone": "+86 139 1234 5678",
            "description": "Large pothole\r\nnear the bus stop",
            "media_url": "https://example.org/p/1.jpg",
            "attribute[WHISPAWN]": "123456",
        },
        [],
    ),
    ("ok-empty-means-absent", {**OK_POINT, "email": "", "phone": "  ", "media_url": ""}, []),
    ("missing-service-code", {"lat": "31.2", "long": "121.4"}, [(400, "service_code: required")]),
    ("empty-service-code", {**OK_POINT, "service_code": " "}, [(400, "service_code: required")]),
    (
        "unknown-service-code",
        {**OK_POINT, "service_code": "graffiti"},
        [(404, "service_code: unknown service code 'graffiti'")],
    ),
    ("no-location", {"service_code": "pothole"}, [(400, "location: required")]),
    (
        "empty-location",
        {"service_code": "pothole", "lat": "", "long": "", "address_string": " "},
        [(400, "location: required")],
    ),
    ("lat-without-long", {"service_code": "pothole", "lat": "31.2"}, [(400, "long: required")]),
    (
        "long-without-lat-despite-address",
        {"service_code": "pothole", "long": "121.4", "address_string": "人民广场"},
        [(400, "lat: required")],
    ),
    ("lat-out-of-range", {**OK_POINT, "lat": "91"}, [(400, "lat: 91 is out of range")]),
    ("long-out-of-range", {**OK_POINT, "long": "-180.5"}, [(400, "long: -180.5 is out of")]),
    ("non-numeric-long", {**OK_POINT, "long": "east"}, [(400, "long: not a number: 'east'")]),
    ("nan-lat", {**OK_POINT, "lat": "nan"}, [(400, "lat: not a number")]),
    ("underscored-lat", {**OK_POINT, "lat": "3_1"}, [(400, "lat: not a number")]),
    (
        "bad-media-url-scheme",
        {**OK_POINT, "media_url": "javascript:alert(1)"},
        [(400, "media_url: must be an http:// or https:// URL")],
    ),
    (
        "bad-media-url-ftp",
        {**OK_POINT, "media_url": "ftp://example.org/a.jpg"},
        [(400, "media_url: must be an http")],
    ),
    (
        "media-url-with-password",
        {**OK_POINT, "media_url": "https://me:secret@example.org/a.jpg"},
        [(400, "media_url: must not contain a user name")],
    ),
    ("media-url-no-host", {**OK_POINT, "media_url": "https:///a.jpg"}, [(400, "media_url")]),
    ("bad-email", {**OK_POINT, "email": "not-an-email"}, [(400, "email: not an email")]),
    ("bad-phone", {**OK_POINT, "phone": "call me maybe"}, [(400, "phone: not a phone")]),
    (
        "description-too-long",
        {**OK_POINT, "description": "x" * 4001},
        [(400, "description: 4001 characters, the limit is 4000")],
    ),
    (
        "control-characters",
        {**OK_POINT, "first_name": "Wei\x00"},
        [(400, "first_name: contains line breaks or control characters")],
    ),
    (
        "several-at-once",
        {"service_code": "graffiti", "lat": "x"},
        [(404, "service_code: unknown"), (400, "long: required"), (400, "lat: not a number")],
    ),
]


@pytest.mark.parametrize(("form", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_request(
    services: list[Service], form: dict[str, str], expected: list[tuple[int, str]]
) -> None:
    result = validate_request(form, services, NOW)
    if not expected:
        assert isinstance(result, ServiceRequest), result
        assert result.requested_datetime == NOW
        return
    assert isinstance(result, list)
    assert len(result) == len(expected), result
    for error, (code, prefix) in zip(result, expected, strict=True):
        assert error.code == code
        assert error.description.startswith(prefix), error.description


def test_a_valid_request_keeps_the_spec_fields(services: list[Service]) -> None:
    form = dict(CASES[3][1])
    req = validate_request(form, services, NOW)
    assert isinstance(req, ServiceRequest)
    assert (req.lat, req.long) == (31.2304, 121.4737)
    assert req.description == "Large pothole\r\nnear the bus stop"
    assert req.email == "li.wei@example.cn" and req.phone == "+86 139 1234 5678"
    assert "attribute" not in req.model_dump_json()


def test_validate_request_needs_an_aware_now(services: list[Service]) -> None:
    with pytest.raises(ValueError, match="time zone"):
        validate_request(OK_POINT, services, datetime(2026, 11, 24, 9, 30))


def test_errors_document_and_http_status() -> None:
    errors = [Open311Error(400, "lat: not a number: 'x'")]
    assert errors_document(errors) == [{"code": 400, "description": "lat: not a number: 'x'"}]
    assert http_status(errors) == 400
    assert http_status([Open311Error(404, "service_code: unknown")]) == 404
    assert http_status([Open311Error(403, "api_key: invalid")]) == 403
    assert http_status([Open311Error(404, "a"), Open311Error(400, "b")]) == 400


# --- ids and responses --------------------------------------------------------------------------
def test_request_ids_are_random_or_derived_from_an_idempotency_key() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200 and all(REQUEST_ID_RE.match(i) for i in ids)
    keyed = new_request_id("retry-1", client_id="app-a")
    assert REQUEST_ID_RE.match(keyed)
    assert keyed == new_request_id("retry-1", client_id="app-a")
    assert keyed != new_request_id("retry-1", client_id="app-b")
    assert keyed != new_request_id("retry-2", client_id="app-a")
    for bad in ("", "x" * 201, "a\nb"):
        with pytest.raises(ValueError):
            new_request_id(bad)


def test_post_response() -> None:
    assert post_response("cb-0123456789abcdef") == [
        {"service_request_id": "cb-0123456789abcdef", "service_notice": None, "account_id": None}
    ]
    root = parse_xml(to_xml("service_requests", "request", post_response("cb-1", "notice")))
    assert [c.tag for c in root[0]] == ["service_request_id", "service_notice", "account_id"]
    assert root[0].findtext("account_id") == ""


def test_smoke_and_gas_carry_an_emergency_notice(services: list[Service]) -> None:
    notices = {s.service_code: s.service_notice for s in services}
    assert "119" in (notices["smoke"] or "") and "119" in (notices["gas"] or "")


# --- GET requests -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("incident", "status"),
    [
        ("open", "open"),
        ("dispatched", "open"),
        ("acknowledged", "open"),
        ("reopened", "open"),
        ("resolved", "closed"),
        ("closed", "closed"),
        ("something-new", "open"),
    ],
)
def test_open311_status(incident: str, status: str) -> None:
    assert open311_status(incident) == status


def view(**changes: object) -> RequestView:
    base: dict[str, object] = {
        "service_request_id": "cb-0123456789abcdef",
        "service_code": "pothole",
        "service_name": "Pothole or road damage",
        "incident_status": "acknowledged",
        "requested_datetime": NOW,
        "updated_datetime": NOW + timedelta(hours=1),
    }
    base.update(changes)
    return RequestView(**base)  # type: ignore[arg-type]


def test_request_document_fields_and_status_mapping() -> None:
    doc = request_document(view(expected_datetime=NOW + timedelta(days=1), lat=31.2, long=121.4))
    assert tuple(doc) == REQUEST_FIELDS
    assert doc["status"] == "open"
    assert doc["requested_datetime"] == "2026-11-24T09:30:00+08:00"
    assert doc["updated_datetime"] == "2026-11-24T10:30:00+08:00"
    assert doc["expected_datetime"] == "2026-11-25T09:30:00+08:00"
    assert doc["status_notes"] is None and doc["zipcode"] is None
    assert (doc["lat"], doc["long"]) == (31.2, 121.4)

    closed = request_document(
        view(
            incident_status="resolved",
            status_notes="已修复, 联系人 13912345678",
            agency_responsible="市政道路养护",
            description="call me on 13912345678",
        )
    )
    assert closed["status"] == "closed"
    assert closed["agency_responsible"] == "市政道路养护"
    assert "13912345678" not in closed["status_notes"]
    assert closed["status_notes"].endswith("5678")
    assert "13912345678" not in closed["description"]
    assert closed["expected_datetime"] is None
    json.dumps(closed, ensure_ascii=False)


def test_datetimes_carry_an_offset() -> None:
    assert w3c_datetime(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"
    assert w3c_datetime(NOW) == "2026-11-24T09:30:00+08:00"
    with pytest.raises(ValueError):
        w3c_datetime(datetime(2026, 1, 1))


# --- XML ----------------------------------------------------------------------------------------
def test_xml_is_well_formed_and_round_trips(services: list[Service]) -> None:
    for root_name, item_name, items in [
        ("services", "service", services_document(services)),
        ("service_requests", "request", [request_document(view()), request_document(view())]),
        ("errors", "error", errors_document([Open311Error(403, "api_key: <invalid> & co")])),
    ]:
        data = to_xml(root_name, item_name, items)
        assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        root = parse_xml(data)
        assert root.tag == root_name and len(root) == len(items)
        for element, item in zip(root, items, strict=True):
            assert element.tag == item_name
            assert [c.tag for c in element] == list(item)
            for child in element:
                value = item[child.tag]
                expected = (
                    ""
                    if value is None
                    else ("true" if value else "false")
                    if isinstance(value, bool)
                    else str(value)
                )
                assert (child.text or "") == expected, child.tag


def test_xml_utf8_empty_elements_and_bad_names() -> None:
    data = to_xml("service_requests", "request", [{"address": "人民广场", "zipcode": None}])
    assert "人民广场".encode() in data
    root = parse_xml(data)
    assert root[0].findtext("address") == "人民广场"
    assert root[0].find("zipcode") is not None and root[0].findtext("zipcode") == ""
    assert b"<zipcode />" in data
    with pytest.raises(ValueError):
        to_xml("errors", "error", [{"bad name": 1}])
    with pytest.raises(TypeError):
        to_xml("errors", "error", [{"code": [1, 2]}])


# --- through the real feed ----------------------------------------------------------------------
def run_feed(feed: Feed, tagger: Geotagger, record: dict[str, object], key: str) -> BatchOutput:
    raw = json.dumps(record, ensure_ascii=False).encode()
    received = NOW.astimezone(UTC) + timedelta(seconds=2)
    return normalize_batch(
        feed, [RawRecord(raw, "raw.open311", 0, 42, key.encode())], tagger, {}, received
    )


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("flooding", "flooding"),
        ("manhole", "manhole"),
        ("streetlight", "streetlight_out"),
        ("pothole", "road_damage"),
        ("garbage", "garbage"),
        ("noise", "noise"),
        ("smoke", "fire_smoke"),
        ("gas", "gas_leak"),
    ],
)
def test_raw_record_becomes_a_canonical_event(
    services: list[Service], feed: Feed, tagger: Geotagger, code: str, category: str
) -> None:
    form = {
        "service_code": code,
        "lat": "31.2304",
        "long": "121.4737",
        "address_string": "人民广场",
        "description": "Reported from the app, call 13912345678",
        "phone": "+86 139 1234 5678",
        "media_url": "https://example.org/p/1.jpg",
        "email": "li.wei@example.cn",
        "first_name": "Wei",
    }
    req = validate_request(form, services, NOW)
    assert isinstance(req, ServiceRequest)
    request_id = new_request_id()
    record = raw_record(req, request_id, NOW + timedelta(seconds=1))
    assert "email" not in record and "first_name" not in record
    out = run_feed(feed, tagger, record, request_id)
    assert out.rejects == [], [str(r) for _, r in out.rejects]
    [event] = out.events
    assert event.event_id == f"open311:{request_id}"
    assert event.source_kind == "open311" and event.kind == "report"
    assert event.category == category
    assert event.observed_at == NOW
    assert event.location.status == "located"
    assert event.location.source_crs == "WGS-84"
    assert event.location.lat == pytest.approx(31.2304, abs=1e-6)
    assert event.location.lon == pytest.approx(121.4737, abs=1e-6)
    assert event.location.address == "人民广场"
    assert event.location.district  # placed on the city map
    assert event.attributes == {"media_url": "https://example.org/p/1.jpg", "service_code": code}
    assert "13912345678" not in (event.text or "")
    assert event.caller_phone_masked and "1234" not in event.caller_phone_masked
    assert out.contacts == [(event.event_id, "+86 139 1234 5678", None)]
    assert event.raw_ref.key == request_id


def test_address_only_request_goes_through_the_feed(
    services: list[Service], feed: Feed, tagger: Geotagger
) -> None:
    req = validate_request(
        {"service_code": "streetlight", "address_string": "杨浦区五角场"}, services, NOW
    )
    assert isinstance(req, ServiceRequest)
    record = raw_record(req, new_request_id(), NOW)
    assert record["lat"] is None and record["long"] is None
    out = run_feed(feed, tagger, record, str(record["service_request_id"]))
    [event] = out.events
    assert event.category == "streetlight_out"
    assert event.location.address == "杨浦区五角场"
    assert event.location.status in ("located", "needs_location")
    assert "location_missing" not in event.attributes


def test_raw_record_refuses_a_foreign_id(services: list[Service]) -> None:
    req = validate_request(OK_POINT, services, NOW)
    assert isinstance(req, ServiceRequest)
    with pytest.raises(ValueError):
        raw_record(req, "../../etc", NOW)
