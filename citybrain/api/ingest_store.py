"""HTTP ingestion's rows in the database: ingest tokens (role `ingest`, one vendor and one
feed each; the CLI's, on a synchronous connection) and the Idempotency-Key records of
ingestion requests (the route's, on the API's pool)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from citybrain.api.tokens import NewToken


# --- tokens (the CLI) --------------------------------------------------------------------------
def store_ingest_token(
    conn: Any, token: NewToken, feed: str, vendor: str, rotate: bool
) -> list[str]:
    """Store a vendor's new ingest token for a feed; with `rotate`, revoke that vendor's
    other tokens for the feed. Returns the ids revoked."""
    revoked: list[str] = []
    if rotate:
        rows = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL"
            " AND role = 'ingest' AND feed = %s AND label = %s RETURNING token_id",
            (feed, vendor),
        ).fetchall()
        revoked = [r[0] for r in rows]
    conn.execute(
        "INSERT INTO api_tokens (token_id, role, department, label, token_hash, feed)"
        " VALUES (%s, 'ingest', NULL, %s, %s, %s)",
        (token.token_id, vendor, token.token_hash, feed),
    )
    return revoked


def revoke_ingest_token(conn: Any, token_id: str) -> bool:
    """Revoke an active ingest token; False when there is none of that id."""
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND role = 'ingest'"
        " AND revoked_at IS NULL RETURNING token_id",
        (token_id,),
    ).fetchone()
    return row is not None


def ingest_tokens(conn: Any) -> list[tuple[Any, ...]]:
    """(token id, feed, vendor, created, last used, revoked) of every ingest token."""
    return list(
        conn.execute(
            "SELECT token_id, feed, label, created_at, last_used_at, revoked_at FROM api_tokens"
            " WHERE role = 'ingest' ORDER BY feed, label, created_at"
        ).fetchall()
    )


# --- Idempotency-Key records (the route) ---------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """What a request's Idempotency-Key found: `new` (the request goes ahead; it was free,
    or its first request was abandoned in flight), `replay` (answered before: `status`
    and `answer`), `in_flight` (its first request is still running) or `other_body`."""

    outcome: Literal["new", "replay", "in_flight", "other_body"]
    status: int = 0
    answer: str = ""


async def claim(
    conn: AsyncConnection[Any],
    token_id: str,
    key: str,
    body_sha256: str,
    request_id: str,
    abandon_after_s: float,
    tries: int = 2,
) -> Claim:
    """Take the key for this request, or say why not. A claim of the same body older than
    `abandon_after_s` and still in flight (its API process died) is taken over."""
    cur = await conn.execute(
        "INSERT INTO ingest_requests (token_id, idempotency_key, body_sha256, request_id)"
        " VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (token_id, idempotency_key) DO UPDATE"
        " SET body_sha256 = EXCLUDED.body_sha256, request_id = EXCLUDED.request_id,"
        " started_at = now()"
        " WHERE ingest_requests.state = 'in_flight'"
        " AND ingest_requests.body_sha256 = EXCLUDED.body_sha256"
        " AND ingest_requests.started_at < now() - make_interval(secs => %s)"
        " RETURNING 1",
        (token_id, key, body_sha256, request_id, abandon_after_s),
    )
    if await cur.fetchone() is not None:
        return Claim("new")
    cur = await conn.execute(
        "SELECT body_sha256, state, status, answer FROM ingest_requests"
        " WHERE token_id = %s AND idempotency_key = %s",
        (token_id, key),
    )
    row = await cur.fetchone()
    if row is None and tries > 1:  # released meanwhile: try again
        return await claim(conn, token_id, key, body_sha256, request_id, abandon_after_s, 1)
    if row is None:
        return Claim("in_flight")
    if row[0] != body_sha256:
        return Claim("other_body")
    if row[1] == "in_flight":
        return Claim("in_flight")
    return Claim("replay", int(row[2]), str(row[3]))


async def finish(
    conn: AsyncConnection[Any], token_id: str, key: str, request_id: str, status: int, answer: str
) -> None:
    """Record the answer of the request that holds the key."""
    await conn.execute(
        "UPDATE ingest_requests SET state = 'done', status = %s, answer = %s,"
        " finished_at = now()"
        " WHERE token_id = %s AND idempotency_key = %s AND request_id = %s",
        (status, answer, token_id, key, request_id),
    )


async def release(conn: AsyncConnection[Any], token_id: str, key: str, request_id: str) -> None:
    """Free the key of a request that failed (its records may be sent again)."""
    await conn.execute(
        "DELETE FROM ingest_requests"
        " WHERE token_id = %s AND idempotency_key = %s AND request_id = %s AND state = 'in_flight'",
        (token_id, key, request_id),
    )
