"""API tokens and rate limiting (pure)."""

from __future__ import annotations

import pytest

from citybrain.api.ratelimit import TokenBuckets
from citybrain.api.tokens import Principal, hash_secret, matches, new_token, parse


def test_a_token_parses_and_only_its_hash_is_kept() -> None:
    token = new_token()
    parsed = parse(token.plain)
    assert parsed is not None and parsed[0] == token.token_id
    assert token.token_hash == hash_secret(parsed[1]) and parsed[1] not in token.token_hash
    assert matches(parsed[1], token.token_hash)
    assert not matches(parsed[1] + "x", token.token_hash)


@pytest.mark.parametrize(
    "plain",
    [
        "",
        "cbt_",
        "Bearer cbt_0123456789ab_x",
        "cbt_0123456789ab_" + "a" * 42,
        "cbx_0123456789ab_" + "a" * 43,
    ],
)
def test_malformed_tokens_do_not_parse(plain: str) -> None:
    assert parse(plain) is None


@pytest.mark.parametrize(
    ("principal", "department", "allowed"),
    [
        (Principal("t", "department", "fire"), "fire", True),
        (Principal("t", "department", "fire"), "police", False),
        (Principal("t", "operations", None), "police", True),
        (Principal("t", "open311", None), "police", False),
    ],
)
def test_who_may_see_which_department(principal: Principal, department: str, allowed: bool) -> None:
    assert principal.may_see(department) is allowed


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back in half a second
    assert buckets.take("b") == 0.0  # per key
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
