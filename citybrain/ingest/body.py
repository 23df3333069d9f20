"""An HTTP ingestion request's body -> the feed's raw records (pure).

Which content types a feed takes (JSON feeds: `application/json`, an array of records or
one object, and `application/x-ndjson` / `application/jsonl`, one record per line; CSV
feeds: `text/csv`, one record per line, a first line equal to the declared columns being a
header), in the feed's declared text encoding. Each record gets the key a Kafka vendor
would give it (the value at the feed's device id path, when the record has one).

Limits refuse the whole request (`Refusal`: 413 for records or bytes over them, a record
over the feed's `max_bytes` included; 415 for a content type the feed does not take; 400
for a body that is not the declared format at all). A record whose own form is wrong (a
line that is not JSON, a CSV line with the wrong number of fields, bytes that are not the
feed's encoding) is still written: the normalize stage dead-letters it with the reason,
exactly as if a Kafka vendor had sent it, and the answer names it (`Records.notes`), so
nothing is dropped without a word. Blank lines are not records.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from citybrain.feeds.definition import Feed
from citybrain.feeds.normalize import Reject, decode, get_path

JSON = "application/json"
JSON_LINES = ("application/x-ndjson", "application/jsonl")
CSV = "text/csv"
_BOM = "\ufeff"
#: the largest record the API's producer sends (its max_request_size is 1 MiB, key and
#: headers included): a larger one is refused with 413 whatever the feed's `max_bytes`
KAFKA_RECORD_BYTES = 1_000_000


class Refusal(Exception):
    """The request as a whole is refused: the HTTP status, the field (or line) and why."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{status} {field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class Records:
    """What a body carries: the records' bytes and keys in order, and a note for each record
    the normalize stage will dead-letter for its form (`line` or `index`, `reason`, `detail`)."""

    values: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def accepted_types(feed: Feed) -> tuple[str, ...]:
    """The media types a feed's records may come in."""
    return (CSV,) if feed.definition.source.format == "csv" else (JSON, *JSON_LINES)


def media_type(content_type: str | None, feed: Feed) -> str:
    """The request's media type when the feed takes it (a `charset` parameter, if given,
    must name the feed's encoding); a 415 Refusal otherwise."""
    taken = accepted_types(feed)
    encoding = feed.definition.source.encoding
    media, *params = (part.strip() for part in (content_type or "").split(";"))
    media = media.lower()
    if media not in taken:
        raise Refusal(
            415,
            "content-type",
            f"{media or 'none given'}: feed {feed.name} takes {', '.join(taken)}",
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and not _same_encoding(
            value.strip().strip('"'), encoding
        ):
            raise Refusal(
                415,
                "content-type",
                f"charset {value.strip()}: feed {feed.name}'s records are {encoding}",
            )
    return media


def _same_encoding(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return False


def split(feed: Feed, media: str, body: bytes, max_records: int) -> Records:
    """The records of a body of media type `media` (one `media_type` returned); a Refusal
    for an empty body, one not in the declared format, or over a limit."""
    if not body.strip():
        raise Refusal(400, "body", "empty: no records")
    if media == JSON:
        return _json_body(feed, body, max_records)
    lines = _lines(feed, body)
    if media == CSV and lines and _is_header(feed, lines[0][1]):
        lines = lines[1:]
    if not lines:
        raise Refusal(400, "body", "no records (blank lines and a header only)")
    _count(len(lines), max_records)
    out = Records()
    limit = record_limit(feed)
    for number, raw in lines:
        if len(raw) > limit:
            raise Refusal(413, f"body.line.{number}", _too_big(len(raw), limit))
        _add(out, feed, raw, {"line": number})
    return out


def _json_body(feed: Feed, body: bytes, max_records: int) -> Records:
    encoding = feed.definition.source.encoding
    utf8 = _same_encoding(encoding, "utf-8")
    try:
        doc = orjson.loads(
            body.removeprefix(_BOM.encode()) if utf8 else body.decode(encoding).lstrip(_BOM)
        )
    except UnicodeDecodeError as exc:
        raise Refusal(400, "body", f"not {encoding}: {exc.reason} at byte {exc.start}") from exc
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, "body", f"not JSON: {exc}") from exc
    if isinstance(doc, dict):
        items: list[Any] = [doc]
    elif isinstance(doc, list):
        items = doc
    else:
        raise Refusal(400, "body", "expected a JSON object or an array of objects")
    if not items:
        raise Refusal(400, "body", "an empty array: no records")
    _count(len(items), max_records)
    out = Records()
    limit = record_limit(feed)
    for index, item in enumerate(items):
        raw = orjson.dumps(item) if utf8 else _encoded(item, encoding)
        if len(raw) > limit:
            raise Refusal(413, f"body.{index}", _too_big(len(raw), limit))
        _add(out, feed, raw, {"index": index})
    return out


def _encoded(item: Any, encoding: str) -> bytes:
    """A record in a feed's own encoding; characters it lacks as JSON escapes."""
    try:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode(encoding)
    except UnicodeEncodeError:
        return json.dumps(item, separators=(",", ":")).encode(encoding)


def _lines(feed: Feed, body: bytes) -> list[tuple[int, bytes]]:
    """(line number from 1, bytes) of each non-blank line, without its line end."""
    encoding = feed.definition.source.encoding
    if "\n".encode(encoding) == b"\n":  # ASCII-compatible: split the bytes as they came
        pieces = body.split(b"\n")
    else:
        try:
            pieces = [line.encode(encoding) for line in body.decode(encoding).split("\n")]
        except UnicodeError as exc:
            raise Refusal(400, "body", f"not {encoding}: {exc}") from exc
    return [
        (number, piece.removesuffix(b"\r"))
        for number, piece in enumerate(pieces, 1)
        if piece.strip()
    ]


def _is_header(feed: Feed, raw: bytes) -> bool:
    """Whether a CSV line names exactly the declared columns, in order."""
    source = feed.definition.source
    try:
        text = raw.decode(source.encoding).lstrip(_BOM)
        row = next(csv.reader([text], delimiter=source.csv_delimiter))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return False
    return [cell.strip() for cell in row] == source.csv_columns


def _count(records: int, max_records: int) -> None:
    if records > max_records:
        raise Refusal(
            413, "body", f"{records} records: at most {max_records} a request (send the rest)"
        )


def record_limit(feed: Feed) -> int:
    """The most bytes one record may have: the feed's `source.max_bytes`, at most what the
    producer sends."""
    return min(feed.definition.source.max_bytes, KAFKA_RECORD_BYTES)


def _too_big(size: int, limit: int) -> str:
    return f"a record of {size} bytes: at most {limit} bytes a record"


def _add(out: Records, feed: Feed, raw: bytes, where: dict[str, Any]) -> None:
    """One record, with its key; a note when the normalize stage will dead-letter it."""
    out.values.append(raw)
    try:
        doc = decode(feed, raw)
    except Reject as exc:
        out.keys.append(None)
        out.notes.append({**where, "reason": exc.reason, "detail": str(exc)})
        return
    out.keys.append(key_of(feed, doc))


def key_of(feed: Feed, doc: dict[str, Any]) -> bytes | None:
    """The record key a Kafka vendor gives the record: its device id, when the feed has a
    device id path and the record a value there."""
    path = feed.definition.device_id
    if path is None:
        return None
    value = get_path(doc, path)
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    return str(value).encode()
