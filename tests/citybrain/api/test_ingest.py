"""`POST /ingest/v1/{feed}` on the real broker and database: 202 once the broker has every
record, each on the feed's raw topic with the key a Kafka vendor gives it and the headers
saying it came by HTTP; every refusal (400, 401, 403, 404, 413, 415, 429, 503) in the
API's error format, with nothing of a refused request on Kafka; Idempotency-Key replays,
422 and 409; ingest tokens refused by every other route."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiokafka.errors import KafkaTimeoutError
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from citybrain.api.app import create_app
from citybrain.api.ingest_store import store_ingest_token
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.settings import Settings

pytestmark = pytest.mark.integration

TOPIC = "raw.iot.streetlight"
LINES = "application/x-ndjson"
RUN = uuid.uuid4().hex[:8]
#: a CSV feed of this test's own, taken by HTTP with at most 3 records a request
CSV_FEED = f"""\
feed: ingest-csv-{RUN}
description: A test feed of CSV lines pushed over HTTP.
source_kind: iot
source:
  topic: raw.test.ingest-csv-{RUN}
  format: csv
  csv_columns: [station, at, pm25]
transport: {{http: {{max_records: 3}}}}
device_id: station
observed_at: {{path: at, format: iso8601}}
readings:
  - {{metric: pm25, path: pm25, unit: ug/m3}}
"""


def lamp(n: int | str, code: str = "LAMP_OFF") -> dict[str, Any]:
    return {
        "lampId": f"SL-T{RUN}-{n}",
        "eventCode": code,
        "eventTime": datetime.now(UTC).isoformat(timespec="seconds"),
        "gps": {"lon": 121.5142, "lat": 31.3012},
        "circuit": "YP-C17",
        "powerW": 0,
    }


def lines(*records: dict[str, Any] | bytes) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records)


class Tokens:
    """Tokens of every kind, made for this module."""

    def __init__(self, settings: Settings) -> None:
        self.plain: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            for name, feed in (
                ("streetlight", "streetlight"),
                ("smoke", "smoke-alarm"),
                ("csv", f"ingest-csv-{RUN}"),
                ("revoked", "streetlight"),
            ):
                token = new_token()
                store_ingest_token(conn, token, feed, f"vendor {RUN}", rotate=False)
                self.plain[name], self.ids[name] = token.plain, token.token_id
            for role, department in (("department", "streetlight"), ("operations", None)):
                token = new_token()
                store_token(conn, token, role, department, f"ingest {RUN}", rotate=False)  # type: ignore[arg-type]
                self.plain[role], self.ids[role] = token.plain, token.token_id
            conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s",
                (self.ids["revoked"],),
            )

    def auth(self, who: str, media: str = LINES, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plain[who]}", "Content-Type": media, **more}


@pytest.fixture(scope="module")
def tokens(stack: Settings) -> Tokens:
    return Tokens(stack)


@pytest.fixture(scope="module")
def feeds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("feeds")
    (folder / "ingest-csv.yaml").write_text(CSV_FEED, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ingest_settings(stack: Settings, feeds_dir: Path) -> Settings:
    return stack.model_copy(
        update={
            "feeds_dir": str(feeds_dir),
            "ingest_rate": 1000.0,
            "ingest_burst": 1000.0,
            "ingest_max_records": 50,
            "ingest_max_bytes": 20_000,
        }
    )


@pytest.fixture(scope="module")
def client(ingest_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(ingest_settings)) as c:
        yield c


def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_list)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return dict(consumer.end_offsets(tps)) if tps else {}
    finally:
        consumer.close()


def written_since(settings: Settings, topic: str, start: dict[TopicPartition, int]) -> list[Any]:
    """The records of `topic` after the offsets `start` (a partition not in it: all)."""
    end = end_offsets(settings, topic)
    todo = [tp for tp, offset in end.items() if offset > start.get(tp, 0)]
    if not todo:
        return []
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, start.get(tp, 0))
        out = []
        for message in consumer:
            out.append(message)
            if all(consumer.position(p) >= end[p] for p in todo):
                break
        return out
    finally:
        consumer.close()


def of_request(messages: list[Any], request_id: str) -> list[Any]:
    return [m for m in messages if dict(m.headers).get("http.request") == request_id.encode()]


def detail(answer: Any) -> tuple[int, str, str]:
    (problem,) = answer.json()["detail"]
    return answer.status_code, problem["field"], problem["reason"]


# --- 202 ----------------------------------------------------------------------------------------
def test_a_batch_is_on_the_raw_topic_with_keys_and_headers_once_acknowledged(
    stack: Settings, client: TestClient, tokens: Tokens
) -> None:
    start = end_offsets(stack, TOPIC)
    body = lines(lamp(1), b"{not json", lamp(3, "CABLE_THEFT"))
    answer = client.post("/ingest/v1/streetlight", content=body, headers=tokens.auth("streetlight"))
    assert answer.status_code == 202, answer.text
    got = answer.json()
    assert got["feed"] == "streetlight" and got["accepted"] == 3 and got["topic"] == TOPIC
    assert got["request_id"].startswith("ing-")
    (note,) = got["records"]
    assert (note["line"], note["reason"], note["outcome"]) == (2, "malformed_json", "dead_letter")
    assert note["detail"].startswith("not JSON")
    ours = of_request(written_since(stack, TOPIC, start), got["request_id"])
    ours.sort(key=lambda m: body.split(b"\n").index(m.value))
    assert [m.value for m in ours] == body.split(b"\n")  # the bytes as sent, each once
    assert [m.key for m in ours] == [f"SL-T{RUN}-1".encode(), None, f"SL-T{RUN}-3".encode()]
    for m in ours:
        assert dict(m.headers) == {
            "transport": b"http",
            "http.token": tokens.ids["streetlight"].encode(),
            "http.request": got["request_id"].encode(),
        }


def test_a_json_array_and_a_csv_body_with_its_header(
    stack: Settings, client: TestClient, tokens: Tokens
) -> None:
    array = orjson.dumps([lamp("a1"), lamp("a2")])
    answer = client.post(
        "/ingest/v1/streetlight",
        content=array,
        headers=tokens.auth("streetlight", "application/json"),
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2 and answer.json()["records"] == []
    topic = f"raw.test.ingest-csv-{RUN}"
    start = end_offsets(stack, topic)
    csv = (
        b"station,at,pm25\r\n"
        b"AQ-1,2026-11-24T09:10:00+08:00,38\r\n"
        b"AQ-2,2026-11-24T09:10:00+08:00\r\n"
    )
    answer = client.post(
        f"/ingest/v1/ingest-csv-{RUN}", content=csv, headers=tokens.auth("csv", "text/csv")
    )
    assert answer.status_code == 202, answer.text
    got = answer.json()
    assert got["accepted"] == 2
    assert [(n["line"], n["reason"]) for n in got["records"]] == [(3, "malformed_csv")]
    ours = of_request(written_since(stack, topic, start), got["request_id"])
    assert sorted(((m.key, m.value) for m in ours), key=str) == [
        (None, b"AQ-2,2026-11-24T09:10:00+08:00"),
        (b"AQ-1", b"AQ-1,2026-11-24T09:10:00+08:00,38"),
    ]


# --- refusals -----------------------------------------------------------------------------------
# (id, who (None: no header), feed, content type, body, status, field, reason fragment)
REFUSALS: list[tuple[str, str | None, str, str, bytes, int, str, str]] = [
    ("no-token", None, "streetlight", LINES, b"{}", 401, "authorization", "a valid bearer token"),
    ("revoked", "revoked", "streetlight", LINES, b"{}", 401, "authorization", "unknown or revoked"),
    (
        "department",
        "department",
        "streetlight",
        LINES,
        b"{}",
        403,
        "authorization",
        "not an ingest",
    ),
    (
        "operations",
        "operations",
        "streetlight",
        LINES,
        b"{}",
        403,
        "authorization",
        "not an ingest",
    ),
    ("other-feed", "smoke", "streetlight", LINES, b"{}", 403, "feed", "writes feed 'smoke-alarm'"),
    (
        "not-http",
        "smoke",
        "smoke-alarm",
        LINES,
        b"{}",
        403,
        "feed",
        "not declared `transport: http`",
    ),
    ("unknown-feed", "streetlight", "no-such-feed", LINES, b"{}", 404, "feed", "no feed"),
    ("csv-to-json", "streetlight", "streetlight", "text/csv", b"a", 415, "content-type", "takes"),
    (
        "charset",
        "streetlight",
        "streetlight",
        LINES + "; charset=gbk",
        b"{}",
        415,
        "content-type",
        "gbk",
    ),
    ("empty", "streetlight", "streetlight", LINES, b"", 400, "body", "empty: no records"),
    ("not-json", "streetlight", "streetlight", "application/json", b"[{", 400, "body", "not JSON"),
    ("scalar", "streetlight", "streetlight", "application/json", b"7", 400, "body", "an array"),
    (
        "records",
        "streetlight",
        "streetlight",
        LINES,
        b"{}\n" * 51,
        413,
        "body",
        "at most 50 a request",
    ),
    (
        "bytes",
        "streetlight",
        "streetlight",
        LINES,
        b"{}" + b" " * 20_000,
        413,
        "body",
        "larger than 20000 bytes",
    ),
    (
        "feed-max-records",
        "csv",
        f"ingest-csv-{RUN}",
        "text/csv",
        b"a,b,1\n" * 4,
        413,
        "body",
        "at most 3 a request",
    ),
]


@pytest.mark.parametrize(
    ("who", "feed", "media", "body", "status", "field", "reason"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals_name_the_field_and_write_nothing(
    stack: Settings,
    client: TestClient,
    tokens: Tokens,
    who: str | None,
    feed: str,
    media: str,
    body: bytes,
    status: int,
    field: str,
    reason: str,
) -> None:
    headers = tokens.auth(who, media) if who else {"Content-Type": media}
    start = end_offsets(stack, TOPIC)
    answer = client.post(f"/ingest/v1/{feed}", content=body, headers=headers)
    got = detail(answer)
    assert got[:2] == (status, field), answer.text
    assert reason in got[2]
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    mine = {tokens.ids[w].encode() for w in ("streetlight", "smoke", "csv")}
    assert not [
        m for m in written_since(stack, TOPIC, start) if dict(m.headers).get("http.token") in mine
    ]


def test_malformed_and_unknown_tokens_and_a_bad_idempotency_key(
    client: TestClient, tokens: Tokens
) -> None:
    for header in ("Bearer nonsense", "Basic abc", f"Bearer cbt_{'0' * 12}_{'a' * 43}"):
        answer = client.post(
            "/ingest/v1/streetlight",
            content=b"{}",
            headers={"Authorization": header, "Content-Type": LINES},
        )
        assert detail(answer)[:2] == (401, "authorization")
    answer = client.post(
        "/ingest/v1/streetlight",
        content=lines(lamp(1)),
        headers=tokens.auth("streetlight", **{"Idempotency-Key": "x" * 201}),
    )
    assert detail(answer)[:2] == (400, "idempotency-key")


def test_over_the_token_s_rate_is_429_with_retry_after(
    ingest_settings: Settings, tokens: Tokens
) -> None:
    slow = ingest_settings.model_copy(update={"ingest_rate": 0.01, "ingest_burst": 1.0})
    with TestClient(create_app(slow)) as client:
        first = client.post(
            "/ingest/v1/streetlight", content=lines(lamp(1)), headers=tokens.auth("streetlight")
        )
        assert first.status_code == 202, first.text
        second = client.post(
            "/ingest/v1/streetlight", content=lines(lamp(1)), headers=tokens.auth("streetlight")
        )
    assert detail(second)[:2] == (429, "authorization")
    assert int(second.headers["Retry-After"]) >= 1


# --- Idempotency-Key ----------------------------------------------------------------------------
def test_the_same_key_and_body_get_the_first_answer_without_writing_again(
    stack: Settings, client: TestClient, tokens: Tokens
) -> None:
    key = f"idem-{uuid.uuid4()}"
    body = lines(lamp("i1"), lamp("i2"))
    start = end_offsets(stack, TOPIC)
    headers = tokens.auth("streetlight", **{"Idempotency-Key": key})
    first = client.post("/ingest/v1/streetlight", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = client.post("/ingest/v1/streetlight", content=body, headers=headers)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    ours = [
        m
        for m in written_since(stack, TOPIC, start)
        if dict(m.headers).get("http.token") == tokens.ids["streetlight"].encode()
        and m.value in body.split(b"\n")
    ]
    assert len(ours) == 2  # written once
    other = client.post("/ingest/v1/streetlight", content=lines(lamp("i3")), headers=headers)
    code, field, reason = detail(other)
    assert (code, field) == (422, "idempotency-key") and "another body" in reason
    # another token's same key is another key
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM ingest_requests WHERE idempotency_key = %s AND state = 'done'"
            " AND finished_at >= started_at",
            (key,),
        ).fetchone() or (0,)
    assert rows == 1


def _hold(settings: Settings, token_id: str, key: str, body: bytes, age_s: float) -> None:
    """A claim on `key` as an API process in the middle of the request would leave it."""
    digest = hashlib.sha256(LINES.encode() + b"\n" + body).hexdigest()
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest_requests (token_id, idempotency_key, body_sha256, request_id,"
            " started_at) VALUES (%s, %s, %s, 'ing-elsewhere', now() - make_interval(secs => %s))",
            (token_id, key, digest, age_s),
        )


def test_a_key_in_flight_is_409_until_abandoned(
    ingest_settings: Settings, client: TestClient, tokens: Tokens
) -> None:
    body = lines(lamp("f1"))
    key = f"idem-{uuid.uuid4()}"
    _hold(ingest_settings, tokens.ids["streetlight"], key, body, 1)
    headers = tokens.auth("streetlight", **{"Idempotency-Key": key})
    answer = client.post("/ingest/v1/streetlight", content=body, headers=headers)
    assert detail(answer)[:2] == (409, "idempotency-key")
    # a claim its process abandoned (older than twice the ack timeout) is taken over
    stale = f"idem-{uuid.uuid4()}"
    _hold(
        ingest_settings,
        tokens.ids["streetlight"],
        stale,
        body,
        2 * ingest_settings.ingest_ack_timeout + 60,
    )
    headers = tokens.auth("streetlight", **{"Idempotency-Key": stale})
    assert client.post("/ingest/v1/streetlight", content=body, headers=headers).status_code == 202


class FailingProducer:
    """A producer whose broker never acknowledges."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaTimeoutError("no broker acknowledged")


def test_a_503_says_retry_and_frees_the_key(client: TestClient, tokens: Tokens) -> None:
    key = f"idem-{uuid.uuid4()}"
    body = lines(lamp("u1"))
    headers = tokens.auth("streetlight", **{"Idempotency-Key": key})
    state: Any = client.app.state  # type: ignore[attr-defined]
    producer, state.producer = state.producer, FailingProducer()
    try:
        failed = client.post("/ingest/v1/streetlight", content=body, headers=headers)
    finally:
        state.producer = producer
    code, field, reason = detail(failed)
    assert (code, field) == (503, "kafka") and "same Idempotency-Key" in reason
    assert int(failed.headers["Retry-After"]) >= 1
    again = client.post("/ingest/v1/streetlight", content=body, headers=headers)
    assert again.status_code == 202, again.text
    assert "Idempotent-Replayed" not in again.headers


# --- an ingest token opens no other door ----------------------------------------------------------
def test_an_ingest_token_is_refused_by_every_other_route(
    client: TestClient, tokens: Tokens
) -> None:
    bearer = {"Authorization": f"Bearer {tokens.plain['streetlight']}"}
    for path in ("/api/v1/tasks", "/api/v1/incidents", "/api/v1/extensions"):
        answer = client.get(path, headers=bearer)
        assert answer.status_code == 403, (path, answer.text)
        assert "ingest token" in answer.text
    signed = client.post("/console/session", json={"token": tokens.plain["streetlight"]})
    assert signed.status_code == 403
    open311 = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": tokens.plain["streetlight"],
            "service_code": "pothole",
            "lat": "31.2",
            "long": "121.4",
        },
    )
    assert open311.status_code == 403


def test_the_maintenance_removes_keys_past_their_time(
    ingest_settings: Settings, tokens: Tokens
) -> None:
    from citybrain.db.maintain import expire_ingest_keys

    old, new = f"idem-old-{uuid.uuid4()}", f"idem-new-{uuid.uuid4()}"
    hours = ingest_settings.ingest_idempotency_hours
    _hold(ingest_settings, tokens.ids["streetlight"], old, b"x", hours * 3600 + 60)
    _hold(ingest_settings, tokens.ids["streetlight"], new, b"x", hours * 3600 - 60)
    with psycopg.connect(ingest_settings.conninfo(), autocommit=True) as conn:
        assert expire_ingest_keys(conn, ingest_settings) >= 1
        left = conn.execute(
            "SELECT idempotency_key FROM ingest_requests WHERE idempotency_key IN (%s, %s)",
            (old, new),
        ).fetchall()
    assert left == [(new,)]


def test_the_ingest_route_has_its_own_body_limit(ingest_settings: Settings, tokens: Tokens) -> None:
    small = ingest_settings.model_copy(update={"api_max_body": 1000, "ingest_max_bytes": 50_000})
    body = lines(*(lamp(f"b{n}") for n in range(40)))
    assert 1000 < len(body) < 50_000
    with TestClient(create_app(small)) as client:
        taken = client.post(
            "/ingest/v1/streetlight", content=body, headers=tokens.auth("streetlight")
        )
        assert taken.status_code == 202, taken.text
        other = client.post(
            "/api/v1/tasks/dsp-x/resolve",
            content=body,
            headers={"Authorization": f"Bearer {tokens.plain['operations']}"},
        )
    assert detail(other) == (413, "body", "larger than 1000 bytes")
