"""The one error a stage raises for a record it cannot process, and the JSON-object decoding
every stage starts with (pure)."""

from __future__ import annotations

from typing import Any

import orjson


class InvalidRecord(ValueError):
    """A record that cannot be processed; `reason` is its dead-letter reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def json_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object; `InvalidRecord` (`malformed_json`, `schema_violation`) otherwise."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("malformed_json", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidRecord("schema_violation", "a JSON object is required")
    return doc
