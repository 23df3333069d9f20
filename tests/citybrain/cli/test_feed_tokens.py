"""`citybrain feeds token create | rotate | revoke | list` on the real database: a token is
printed once and only its hash stored; only feeds declared `transport: http` get one;
rotating revokes the vendor's other tokens for the feed."""

from __future__ import annotations

import hashlib
import uuid

import psycopg
import pytest
from typer.testing import CliRunner

from citybrain.api.tokens import parse
from citybrain.cli import app
from citybrain.settings import Settings

pytestmark = pytest.mark.integration
runner = CliRunner()


def rows(settings: Settings, vendor: str) -> list[tuple[str, str, str, str, bool]]:
    with psycopg.connect(settings.conninfo()) as conn:
        found = conn.execute(
            "SELECT token_id, role, feed, token_hash, revoked_at IS NOT NULL FROM api_tokens"
            " WHERE label = %s ORDER BY created_at",
            (vendor,),
        ).fetchall()
    return [tuple(r) for r in found]  # type: ignore[misc]


def test_create_rotate_list_and_revoke(stack: Settings) -> None:
    vendor = f"路灯平台 {uuid.uuid4().hex[:6]}"
    created = runner.invoke(app, ["feeds", "token", "create", "streetlight", "--vendor", vendor])
    assert created.exit_code == 0, created.output
    plain = created.stdout.strip().splitlines()[0]
    parsed = parse(plain)
    assert parsed is not None
    token_id, secret = parsed
    ((stored_id, role, feed, token_hash, revoked),) = rows(stack, vendor)
    assert (stored_id, role, feed, revoked) == (token_id, "ingest", "streetlight", False)
    assert token_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in token_hash

    rotated = runner.invoke(app, ["feeds", "token", "rotate", "streetlight", "--vendor", vendor])
    assert rotated.exit_code == 0, rotated.output
    assert f"revoked {token_id}" in rotated.output
    first, second = rows(stack, vendor)
    assert first[4] is True and second[4] is False

    listed = runner.invoke(app, ["feeds", "token", "list"])
    assert listed.exit_code == 0, listed.output
    mine = [line for line in listed.stdout.splitlines() if line.endswith(vendor)]
    assert len(mine) == 2 and all("streetlight" in line for line in mine)
    assert sum("active" in line for line in mine) == 1

    revoked = runner.invoke(app, ["feeds", "token", "revoke", second[0]])
    assert revoked.exit_code == 0 and f"revoked {second[0]}" in revoked.output
    again = runner.invoke(app, ["feeds", "token", "revoke", second[0]])
    assert again.exit_code == 1 and "no active ingest token" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "smoke-alarm", "--vendor", "x"], "comes by kafka, not HTTP"),
        (["create", "manhole-cover", "--vendor", "x"], "comes by mqtt, not HTTP"),
        (["create", "no-such-feed", "--vendor", "x"], "unknown feed 'no-such-feed'"),
        (["create", "streetlight", "--vendor", " "], "--vendor names who sends the feed"),
    ],
)
def test_only_http_feeds_get_a_token(stack: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["feeds", "token", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_a_vendor_is_required() -> None:
    result = runner.invoke(app, ["feeds", "token", "create", "streetlight"])
    assert result.exit_code == 2 and "--vendor" in result.output
