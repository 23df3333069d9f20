"""The normaliser: one raw record of a feed -> a parsed record, or a reject with a reason.

Pure. Decoding (size, text encoding, JSON or CSV), field mapping by path, types,
timestamps (format, source time zone, not in the future), unit conversion, category and
severity tables, deterministic event ids. Geo-tagging happens afterwards in a batch
(`citybrain.geo.geotag`); alarm rules on readings in `citybrain.feeds.alarms`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.core.errors import InvalidRecord, json_object
from citybrain.feeds.definition import Feed
from citybrain.privacy import mask_phone, mask_phones_in_text
from citybrain.schemas.feed_definition import Mapped

#: Every reason a record can be rejected for; each is a dead-letter counter label.
REASONS = (
    "payload_too_large",
    "undecodable_bytes",
    "malformed_json",
    "malformed_csv",
    "schema_violation",
    "wrong_type",
    "missing_timestamp",
    "bad_timestamp",
    "future_timestamp",
    "stale_timestamp",
    "implausible_value",
    "unknown_device",
    "internal_error",
)


#: digits and number punctuation at the end of a cut text
_TRAILING_NUMBER = re.compile(r"[\d\s+()-]+$")

#: A record that cannot become an event; `reason` is one of REASONS.
Reject = InvalidRecord


@dataclass(slots=True)
class ParsedRecord:
    """What a raw record says, before geo-tagging and alarm rules."""

    feed: str
    source_kind: str
    observed_at: datetime
    received_at: datetime
    device_id: str | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "WGS-84"
    address: str | None = None
    # event part (None when the record only carries readings)
    event_id: str | None = None
    kind: str | None = None
    category: str | None = None
    severity: int = 3
    text: str | None = None
    caller_phone: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    readings: list[tuple[str, float, str]] = field(default_factory=list)  # metric, value, unit


_MISSING = object()


_PATHS: dict[str, tuple[str, ...]] = {}


def get_path(doc: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; _MISSING when absent."""
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    node = doc
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _has_nul(value: Any) -> bool:
    """Whether a decoded document holds a NUL character anywhere (PostgreSQL refuses it, so
    the record would stop the stage that writes it: it is rejected here instead)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def decode(feed: Feed, raw: bytes | None) -> dict[str, Any]:
    source = feed.definition.source
    if raw is None or len(raw) == 0:
        raise Reject("schema_violation", "empty record")
    if len(raw) > source.max_bytes:
        raise Reject("payload_too_large", f"{len(raw)} bytes > limit {source.max_bytes}")
    try:
        text = raw.decode(source.encoding)
    except UnicodeDecodeError as exc:
        raise Reject(
            "undecodable_bytes", f"not {source.encoding}: {exc.reason} at byte {exc.start}"
        ) from exc
    # a byte-order mark, as Windows tools write before UTF-8 (and GBK exports as U+FEFF)
    text = text.removeprefix("\ufeff")
    if source.format == "json":
        doc = json_object(text)
        # JSON text can carry a NUL only as the escape \u0000 (raw control characters are
        # not JSON): look into the document only when the text has one
        if "\\u0000" in text and _has_nul(doc):
            raise Reject("undecodable_bytes", "a NUL character (U+0000): no text column stores it")
        return doc
    columns = source.csv_columns or []
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=source.csv_delimiter))
    except csv.Error as exc:
        raise Reject("malformed_csv", f"not CSV: {exc}") from exc
    if "\x00" in text:
        raise Reject("undecodable_bytes", "a NUL character (U+0000): no text column stores it")
    if len(rows) != 1 or len(rows[0]) != len(columns):
        got = len(rows[0]) if rows else 0
        raise Reject("malformed_csv", f"expected one line of {len(columns)} fields, got {got}")
    return dict(zip(columns, rows[0], strict=True))


def _required(doc: dict[str, Any], path: str, what: str) -> Any:
    value = get_path(doc, path)
    if value is _MISSING or value is None or value == "":
        raise Reject("schema_violation", f"{what}: field {path!r} is missing")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise Reject("wrong_type", f"{what}: expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise Reject(
        "wrong_type", f"{what}: expected a number, got {type(value).__name__} {str(value)[:40]!r}"
    )


def parse_time(feed: Feed, doc: dict[str, Any], received_at: datetime) -> datetime:
    spec = feed.definition.observed_at
    value = get_path(doc, spec.path)
    if value is _MISSING or value is None or value == "":
        raise Reject("missing_timestamp", f"timestamp field {spec.path!r} is missing")
    try:
        if spec.format in ("epoch_s", "epoch_ms"):
            seconds = _number(value, "timestamp") / (1000 if spec.format == "epoch_ms" else 1)
            ts = datetime.fromtimestamp(seconds, tz=UTC)
        elif spec.format == "iso8601":
            ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        else:
            ts = datetime.strptime(str(value), spec.format)
    except Reject as exc:
        raise Reject("bad_timestamp", str(exc)) from exc
    except (ValueError, OverflowError, OSError) as exc:
        raise Reject("bad_timestamp", f"{spec.path}={str(value)[:40]!r}: {exc}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=feed.zone)
    ts = ts.astimezone(UTC)
    if ts - received_at > timedelta(seconds=feed.max_future_s):
        raise Reject(
            "future_timestamp", f"{ts.isoformat()} is more than {spec.max_future} after receipt"
        )
    if received_at - ts > timedelta(seconds=feed.max_age_s):
        raise Reject(
            "stale_timestamp", f"{ts.isoformat()} is more than {spec.max_age} before receipt"
        )
    return ts


def _mapped(doc: dict[str, Any], spec: Mapped, what: str) -> Any:
    if spec.path is None:
        return spec.const
    value = get_path(doc, spec.path)
    if value is _MISSING or value is None:
        if spec.default is not None:
            return spec.default
        raise Reject("schema_violation", f"{what}: field {spec.path!r} is missing")
    if spec.map is not None:
        key = str(value)
        if key in spec.map:
            return spec.map[key]
        if spec.default is not None:
            return spec.default
        raise Reject("schema_violation", f"{what}: unknown code {key!r} in {spec.path}")
    return value


def event_id_for(feed: str, parts: list[Any]) -> str:
    """Deterministic id: feed plus the source's own id fields (hashed when long)."""
    joined = ":".join(str(p) for p in parts)
    if len(joined) > 120:
        joined = hashlib.sha256(joined.encode()).hexdigest()[:32]
    return f"{feed}:{joined}"


def parse(feed: Feed, raw: bytes | None, received_at: datetime) -> ParsedRecord:
    """One raw record -> ParsedRecord, or raise Reject."""
    d = feed.definition
    doc = decode(feed, raw)
    observed = parse_time(feed, doc, received_at)
    rec = ParsedRecord(
        feed=d.feed,
        source_kind=d.source_kind,
        observed_at=observed,
        received_at=received_at,
        crs=d.location.crs,
    )
    if d.device_id:
        device = get_path(doc, d.device_id)
        if device is _MISSING or device in (None, ""):
            if d.readings or not (d.location.lon or d.location.address):
                raise Reject("schema_violation", f"device id field {d.device_id!r} is missing")
        else:
            rec.device_id = str(device)
    loc = d.location
    if loc.lon and loc.lat:
        lon, lat = get_path(doc, loc.lon), get_path(doc, loc.lat)
        if lon not in (_MISSING, None, "") and lat not in (_MISSING, None, ""):
            rec.lon, rec.lat = _number(lon, "longitude"), _number(lat, "latitude")
            if not (-180 <= rec.lon <= 180 and -180 <= rec.lat <= 180):
                raise Reject("wrong_type", f"coordinates out of range: {rec.lon}, {rec.lat}")
    if loc.address:
        address = get_path(doc, loc.address)
        if isinstance(address, str) and address.strip():
            rec.address = address.strip()
    if d.event is not None:
        ev = d.event
        rec.event_id = event_id_for(d.feed, [_required(doc, p, "id") for p in ev.id])
        rec.kind = str(_mapped(doc, ev.kind, "kind"))
        rec.category = str(_mapped(doc, ev.category, "category"))
        severity = _mapped(doc, ev.severity, "severity")
        rec.severity = int(_number(severity, "severity"))
        if not 1 <= rec.severity <= 4:
            raise Reject("schema_violation", f"severity {rec.severity} is not 1-4")
        if ev.text:
            text = get_path(doc, ev.text)
            rec.text = str(text) if text not in (_MISSING, None) else None
            if rec.text is not None and len(rec.text) > ev.max_text:
                rec.attributes["text_chars"] = len(rec.text)  # the original size
                # cut before any number the cap would split (a partial number escapes masking)
                rec.text = _TRAILING_NUMBER.sub("", rec.text[: ev.max_text])
        if ev.caller_phone:
            phone = get_path(doc, ev.caller_phone)
            rec.caller_phone = str(phone) if phone not in (_MISSING, None, "") else None
        for name, path in ev.attributes.items():
            value = get_path(doc, path)
            if value is not _MISSING:
                rec.attributes[name] = value
    for reading in d.readings:
        value = get_path(doc, reading.path)
        if value is _MISSING or value is None or value == "":
            continue  # a device may omit a metric in one message
        factor, offset = feed.units[reading.metric]
        number = _number(value, reading.metric) * factor + offset
        if not math.isfinite(number) or (
            reading.plausible is not None
            and not reading.plausible[0] <= number <= reading.plausible[1]
        ):
            raise Reject(
                "implausible_value",
                f"{reading.metric} = {number:g} {reading.to_unit or reading.unit} is outside"
                f" {list(reading.plausible or ())} (plausible range)",
            )
        rec.readings.append((reading.metric, number, reading.to_unit or reading.unit))
    if d.event is None and not rec.readings:
        raise Reject("schema_violation", "the record carries none of the feed's readings")
    if rec.lon is None and rec.device_id is None and rec.address is None:
        rec.attributes.setdefault("location_missing", True)
    return rec


def masked_text(text: str | None) -> str | None:
    return mask_phones_in_text(text) if text else text


def masked_phone(phone: str | None) -> str | None:
    return mask_phone(phone) if phone else None
