"""Who is calling the API: a bearer token (`Authorization: Bearer cbt_...`) checked against
the stored hash, the token's rate enforced; what each role may see (a department its own
tasks and incidents, the operations center everything)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from citybrain.api import sessions, store
from citybrain.api.tokens import Principal, parse


async def principal(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer cbt_...`, or from the console's session
    cookie (then a state-changing request must carry the session's CSRF token: 403
    otherwise); 401 without either; 429 over the token's rate."""
    header = request.headers.get("authorization", "")
    cookie = request.cookies.get(sessions.COOKIE)
    if not header and cookie:
        return await _from_session(request, cookie)
    scheme, _, token = header.partition(" ")
    parsed = parse(token) if scheme.lower() == "bearer" else None
    if parsed is None:
        raise HTTPException(
            401, "a valid bearer token is needed", headers={"WWW-Authenticate": "Bearer"}
        )
    wait = request.app.state.buckets.take(parsed[0])
    if wait > 0:
        raise HTTPException(
            429, "too many requests", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )
    async with request.app.state.pool.connection() as conn:
        who = await store.authenticate(conn, *parsed)
    if who is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    refuse_foreign(who)
    return who


async def _from_session(request: Request, cookie: str) -> Principal:
    async with request.app.state.pool.connection() as conn:
        found = await sessions.session_principal(conn, cookie)
    if found is None:
        raise HTTPException(401, "the session ended: sign in again")
    who, csrf = found
    if request.method not in sessions.SAFE_METHODS and not sessions.csrf_matches(
        request.headers.get(sessions.CSRF_HEADER), csrf
    ):
        raise HTTPException(403, "missing or wrong X-CSRF-Token")
    wait = request.app.state.buckets.take(who.token_id)
    if wait > 0:
        raise HTTPException(
            429, "too many requests", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )
    refuse_foreign(who)
    return who


def refuse_foreign(who: Principal) -> None:
    """403 for the tokens made for another door: Open311 client keys and ingest tokens
    (those write one feed by `POST /ingest/v1/{feed}`, and nothing else)."""
    if who.role == "open311":
        raise HTTPException(403, "an Open311 client key cannot use the department API")
    if who.role == "ingest":
        raise HTTPException(403, "an ingest token only writes its feed (POST /ingest/v1/{feed})")


Caller = Annotated[Principal, Depends(principal)]


def scope_of(who: Principal) -> str | None:
    """The department whose tasks the caller may see (None: all, the operations center)."""
    return None if who.role == "operations" else who.department


def operations_only(who: Principal, reason: str) -> None:
    """403 with `reason` unless the caller is the operations center."""
    if who.role != "operations":
        raise HTTPException(403, reason)
