"""`POST /ingest/v1/{feed}`: a vendor without a Kafka client pushes a batch of a feed's
records over HTTP with its ingest token; they go to the feed's raw topic, keyed and
normalized exactly as if the vendor had produced them to Kafka.

The answer is 202 only once the broker has acknowledged every record (`acks=all`), with
the number accepted, the request's id and the records the normalize stage will
dead-letter for their form (which line or index, and why); 503 with Retry-After when the
broker does not acknowledge them all in `CITYBRAIN_INGEST_ACK_TIMEOUT` (some may be
written: send the request again, with the same Idempotency-Key; the pipeline's event ids
make a record written twice one event). Every record carries the headers `transport:
http`, `http.token` (the token's id) and `http.request` (the request's id), as the MQTT
bridge's records say `transport: mqtt`.

An `Idempotency-Key` makes a retry safe: the same key and body from the same token get
the first answer again (header `Idempotent-Replayed: true`) without writing again; the
same key with another body is 422; a key whose first request is still in flight is 409;
a request that got 503 frees its key. Errors have the API's format,
`{"detail": [{"field": ..., "reason": ...}]}`; the body's parsing is
`citybrain.ingest.body`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import Response
from prometheus_client import Counter

from citybrain.api import ingest_store, store
from citybrain.api.ratelimit import TokenBuckets
from citybrain.api.tokens import Principal, parse
from citybrain.feeds.definition import Feed, feed_folders, load_feeds
from citybrain.ingest.body import CSV, JSON, JSON_LINES, Records, Refusal, media_type, split
from citybrain.logs import get_logger
from citybrain.settings import Settings

PATH = "/ingest/v1/"
log = get_logger(__name__)
router = APIRouter(tags=["ingest"])
RECORDS = Counter(
    "citybrain_ingest_records_total",
    "Records accepted by POST /ingest/v1/{feed}, by feed and outcome (ok, or dead_letter: "
    "the normalize stage will dead-letter it for its form).",
    ["feed", "outcome"],
)
#: printable ASCII, as the Idempotency-Key draft's examples (a UUID, a hash)
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
RETRY_AFTER_S = 5


def install(app: FastAPI, settings: Settings) -> None:
    """The ingest route on the app, with the feeds it may write and its rate limits."""
    app.state.ingest_feeds = {f.name: f for f in load_feeds(*feed_folders(settings.feeds_dir))}
    app.state.ingest_buckets = TokenBuckets(rate=settings.ingest_rate, burst=settings.ingest_burst)
    app.include_router(router)


def problem(
    status: int, field: str, reason: str, headers: dict[str, str] | None = None
) -> Response:
    """An error answer in the API's format."""
    body = orjson.dumps({"detail": [{"field": field, "reason": reason}]})
    return Response(body, status, headers=headers, media_type="application/json")


_BODY = {"schema": {"type": "string"}}
_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
            **dict.fromkeys(JSON_LINES, _BODY),
            CSV: _BODY,
        },
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Every record acknowledged by the broker."},
    400: {"description": "Empty body, not the declared format, or a bad Idempotency-Key."},
    401: {"description": "No token, or an unknown or revoked one."},
    403: {"description": "Not an ingest token, another feed's, or a feed not taking HTTP."},
    404: {"description": "No such feed."},
    409: {"description": "The Idempotency-Key's first request is still in flight."},
    413: {"description": "Over the records, bytes or record size limit."},
    415: {"description": "A content type (or charset) the feed does not take."},
    422: {"description": "The Idempotency-Key was used with another body."},
    429: {"description": "Over the token's rate (Retry-After)."},
    503: {"description": "The broker did not acknowledge every record (Retry-After)."},
}


@router.post(
    PATH + "{feed}",
    status_code=202,
    responses=_ANSWERS,
    openapi_extra=_DOC,
    summary="Push a batch of a feed's records",
)
async def ingest(
    request: Request,
    feed: str,
    idempotency_key: Annotated[
        str | None,
        Header(description="Makes a retry safe: 1 to 200 printable ASCII characters."),
    ] = None,
) -> Response:
    """A batch of records of a feed declared `transport: http`, with that feed's ingest
    token: JSON feeds as `application/json` (an array or one object) or JSON lines
    (`application/x-ndjson`, `application/jsonl`), CSV feeds as `text/csv` (a first line
    naming the declared columns is a header), in the feed's text encoding."""
    state = request.app.state
    s: Settings = state.settings
    allowed = await _caller(request, feed)
    if isinstance(allowed, Response):
        return allowed
    who, known, most = allowed
    key = idempotency_key
    if key is not None and not _KEY.match(key):
        return problem(400, "idempotency-key", "1 to 200 printable ASCII characters")
    try:
        media = media_type(request.headers.get("content-type"), known)
        body = await request.body()  # at most CITYBRAIN_INGEST_MAX_BYTES (BodyLimit)
        records = split(known, media, body, most)
    except Refusal as refused:
        return problem(refused.status, refused.field, refused.reason)
    request_id = f"ing-{secrets.token_hex(8)}"
    if key is not None:
        digest = hashlib.sha256(media.encode() + b"\n" + body).hexdigest()
        taken = await _claim(state, who.token_id, key, digest, request_id)
        if taken is not None:
            return taken
    headers = [
        ("transport", b"http"),
        ("http.token", who.token_id.encode()),
        ("http.request", request_id.encode()),
    ]
    try:
        await asyncio.wait_for(
            _send(state.producer, known.topic, records, headers), s.ingest_ack_timeout
        )
    except Exception as exc:  # the broker's error or our timeout: the same for the vendor
        log.warning("ingest not acknowledged", feed=feed, request_id=request_id, error=repr(exc))
        if key is not None:
            async with state.pool.connection() as conn:
                await ingest_store.release(conn, who.token_id, key, request_id)
        return problem(
            503,
            "kafka",
            "the broker did not acknowledge every record: send the request again (with the "
            "same Idempotency-Key)",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    answer = orjson.dumps(
        {
            "feed": feed,
            "accepted": len(records.values),
            "request_id": request_id,
            "topic": known.topic,
            "records": [{**n, "outcome": "dead_letter"} for n in records.notes],
        }
    )
    if key is not None:
        await _remember(state, who.token_id, key, request_id, answer)
    RECORDS.labels(feed, "ok").inc(len(records.values) - len(records.notes))
    if records.notes:
        RECORDS.labels(feed, "dead_letter").inc(len(records.notes))
    return Response(answer, 202, media_type="application/json")


async def _caller(request: Request, feed: str) -> tuple[Principal, Feed, int] | Response:
    """The caller, the feed and the records a request may carry; or the refusal (401 no or
    unknown token, 429 over its rate, 403 not an ingest token or not this feed's, 404 no
    such feed, 403 a feed not declared `transport: http`)."""
    state = request.app.state
    s: Settings = state.settings
    scheme, _, plain = request.headers.get("authorization", "").partition(" ")
    parsed = parse(plain) if scheme.lower() == "bearer" else None
    if parsed is None:
        return problem(401, "authorization", "a valid bearer token is needed", _BEARER)
    wait = state.ingest_buckets.take(parsed[0])
    if wait > 0:
        return problem(
            429,
            "authorization",
            f"more than {s.ingest_rate:g} requests a second (bursts of {s.ingest_burst:g})",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    async with state.pool.connection() as conn:
        who = await store.authenticate(conn, *parsed)
    if who is None:
        return problem(401, "authorization", "unknown or revoked token", _BEARER)
    if who.role != "ingest":
        return problem(403, "authorization", "not an ingest token (citybrain feeds token create)")
    known: Feed | None = state.ingest_feeds.get(feed)
    if known is None:
        return problem(404, "feed", f"no feed {feed!r}")
    if who.feed != feed:
        return problem(403, "feed", f"this token writes feed {who.feed!r}, not {feed!r}")
    http = known.definition.http
    if http is None:
        return problem(403, "feed", f"feed {feed!r} is not declared `transport: http`")
    return who, known, http.max_records or s.ingest_max_records


async def _claim(
    state: Any, token_id: str, key: str, digest: str, request_id: str
) -> Response | None:
    """None when the request holds its Idempotency-Key now; else the answer: the first
    request's again (replayed), 409 (still in flight) or 422 (another body)."""
    s: Settings = state.settings
    async with state.pool.connection() as conn:
        held = await ingest_store.claim(
            conn, token_id, key, digest, request_id, 2 * s.ingest_ack_timeout + 30
        )
    if held.outcome == "replay":
        return Response(
            held.answer,
            held.status,
            headers={"Idempotent-Replayed": "true"},
            media_type="application/json",
        )
    if held.outcome == "in_flight":
        return problem(409, "idempotency-key", "its first request is still in flight")
    if held.outcome == "other_body":
        return problem(422, "idempotency-key", "already used with another body")
    return None


_BEARER = {"WWW-Authenticate": "Bearer"}


async def _send(
    producer: Any, topic: str, records: Records, headers: list[tuple[str, bytes]]
) -> None:
    """Hand every record to the producer, then wait for all the broker's acknowledgements."""
    send = producer.send
    acks = [
        await send(topic, value, key=key, headers=headers)
        for value, key in zip(records.values, records.keys, strict=True)
    ]
    await asyncio.gather(*acks)


async def _remember(state: Any, token_id: str, key: str, request_id: str, answer: bytes) -> None:
    """Keep the answer for the key's retries. The records are written whatever happens here:
    a failure is logged (the key stays in flight until it is abandoned)."""
    try:
        async with state.pool.connection() as conn:
            await ingest_store.finish(conn, token_id, key, request_id, 202, answer.decode())
    except Exception as exc:
        log.warning("idempotency key not recorded", request_id=request_id, error=repr(exc))
