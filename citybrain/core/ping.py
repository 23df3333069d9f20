"""The wiring probe's record: parse and validate one `pipeline.ping.v1` value (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from citybrain.core.errors import InvalidRecord, json_object
from citybrain.schemas.fields import is_aware

__all__ = ["InvalidRecord", "Ping", "parse_ping"]


@dataclass(frozen=True)
class Ping:
    """One probe record."""

    ping_id: str
    sent_at: datetime
    note: str | None = None


def parse_ping(raw: bytes | None) -> Ping:
    """Decode a ping; raise `InvalidRecord` with a reason code for anything malformed."""
    if raw is None:
        raise InvalidRecord("empty_value", "record has no value")
    doc = json_object(raw)
    ping_id = doc.get("ping_id")
    if not isinstance(ping_id, str) or not ping_id or len(ping_id) > 200:
        raise InvalidRecord("schema_violation", "ping_id: a non-empty string is required")
    sent_raw = doc.get("sent_at")
    if not isinstance(sent_raw, str):
        raise InvalidRecord("missing_timestamp", "sent_at: an ISO-8601 timestamp is required")
    try:
        sent_at = datetime.fromisoformat(sent_raw)
    except ValueError as exc:
        raise InvalidRecord("bad_timestamp", f"sent_at: {exc}") from exc
    if not is_aware(sent_at):
        raise InvalidRecord("bad_timestamp", "sent_at: timestamp must carry a UTC offset")
    note = doc.get("note")
    if note is not None and not isinstance(note, str):
        raise InvalidRecord("schema_violation", "note: must be a string")
    return Ping(ping_id=ping_id, sent_at=sent_at.astimezone(UTC), note=note)
