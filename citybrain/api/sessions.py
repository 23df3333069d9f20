"""The console's sign-in: an API token exchanged for a session cookie (HttpOnly,
SameSite=Strict) and a CSRF token that every state-changing request sends back in the
`X-CSRF-Token` header. Only the cookie's SHA-256 is stored; signing out, revoking the
token, or the end of the shift (`CITYBRAIN_CONSOLE_SESSION_HOURS`) ends the session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from citybrain.api.tokens import Principal

COOKIE = "citybrain_session"
CSRF_HEADER = "x-csrf-token"
#: methods that change nothing (no CSRF token needed)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def open_session(
    conn: AsyncConnection[Any], token_id: str, hours: float
) -> tuple[str, str, datetime]:
    """A new session for a token: (cookie value, CSRF token, expiry)."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + timedelta(hours=hours)
    await conn.execute(
        "INSERT INTO console_sessions (session_hash, token_id, csrf_token, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (_hash(cookie), token_id, csrf, expires),
    )
    return cookie, csrf, expires


async def session_principal(
    conn: AsyncConnection[Any], cookie: str
) -> tuple[Principal, str] | None:
    """The caller behind a live session cookie, and the session's CSRF token (None when
    the session, or its token, was ended)."""
    cur = await conn.execute(
        "SELECT t.token_id, t.role, t.department, t.label, s.csrf_token"
        " FROM console_sessions s JOIN api_tokens t USING (token_id)"
        " WHERE s.session_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND t.revoked_at IS NULL",
        (_hash(cookie),),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], row[3] or ""), str(row[4])


async def end_session(conn: AsyncConnection[Any], cookie: str) -> None:
    await conn.execute(
        "UPDATE console_sessions SET revoked_at = now()"
        " WHERE session_hash = %s AND revoked_at IS NULL",
        (_hash(cookie),),
    )


def csrf_matches(sent: str | None, expected: str) -> bool:
    return sent is not None and secrets.compare_digest(sent, expected)
