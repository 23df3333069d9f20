from datetime import UTC, datetime

import pytest

from citybrain.core.ping import InvalidRecord, parse_ping


def test_a_valid_ping_is_parsed_to_utc() -> None:
    ping = parse_ping(b'{"ping_id": "a", "sent_at": "2026-11-24T17:00:00+08:00", "note": "x"}')
    assert ping.ping_id == "a"
    assert ping.sent_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert ping.note == "x"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty_value"),
        (b"{nope", "malformed_json"),
        (b"[1, 2]", "schema_violation"),
        (b'{"sent_at": "2026-11-24T00:00:00Z"}', "schema_violation"),
        (b'{"ping_id": "", "sent_at": "2026-11-24T00:00:00Z"}', "schema_violation"),
        (b'{"ping_id": "a"}', "missing_timestamp"),
        (b'{"ping_id": "a", "sent_at": "yesterday"}', "bad_timestamp"),
        (b'{"ping_id": "a", "sent_at": "2026-11-24T00:00:00"}', "bad_timestamp"),
        (b'{"ping_id": "a", "sent_at": "2026-11-24T00:00:00Z", "note": 5}', "schema_violation"),
    ],
)
def test_bad_pings_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_ping(raw)
    assert info.value.reason == reason
