"""The API's reads and writes in the database: tokens, tasks as departments see them,
deadline extensions, Open311 requests. Every task query takes the caller's department
(None for the operations center) and filters by it in SQL, so another department's task
is simply not found."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from citybrain.api.tokens import NewToken, Principal, Role, matches
from citybrain.privacy import mask_phones_in_text

OPEN = ("dispatched", "acknowledged", "in_progress")

_TASK = """
SELECT d.dispatch_id, d.incident_id, d.department, d.role, d.status, d.priority, d.category,
       d.ack_deadline, d.resolve_deadline, d.sla_clock, d.created_at, d.updated_at,
       d.acknowledged_at, d.resolved_at, d.report_count, d.note, d.reason, d.reopened,
       (d.status IN ('dispatched', 'acknowledged', 'in_progress')
        AND d.resolve_deadline < now()) AS overdue,
       i.district, i.lon, i.lat, i.location_status, i.status AS incident_status,
       i.first_seen, i.last_seen
FROM dispatches d JOIN incidents i USING (incident_id)
"""


# --- tokens ----------------------------------------------------------------------------------
async def authenticate(conn: AsyncConnection[Any], token_id: str, secret: str) -> Principal | None:
    cur = await conn.execute(
        "SELECT role, department, token_hash, label, feed FROM api_tokens"
        " WHERE token_id = %s AND revoked_at IS NULL",
        (token_id,),
    )
    row = await cur.fetchone()
    if row is None or not matches(secret, row[2]):
        return None
    await conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_id = %s", (token_id,)
    )
    return Principal(token_id, row[0], row[1], row[3] or "", row[4])


def store_token(
    conn: Any, token: NewToken, role: Role, department: str | None, label: str, rotate: bool
) -> list[str]:
    """Store a new token (synchronous connection: the CLI); with `rotate`, revoke the
    department's (or role's) other tokens. Returns the ids revoked."""
    revoked: list[str] = []
    if rotate:
        rows = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND role = %s"
            " AND department IS NOT DISTINCT FROM %s RETURNING token_id",
            (role, department),
        ).fetchall()
        revoked = [r[0] for r in rows]
    conn.execute(
        "INSERT INTO api_tokens (token_id, role, department, label, token_hash)"
        " VALUES (%s, %s, %s, %s, %s)",
        (token.token_id, role, department, label, token.token_hash),
    )
    return revoked


# --- tasks -----------------------------------------------------------------------------------
def encode_cursor(created_at: datetime, dispatch_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), dispatch_id])).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for anything that is not a cursor this API gave out."""
    try:
        at, dispatch_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(dispatch_id)
    except Exception as exc:
        raise ValueError("not a cursor from this API") from exc


def where_clause(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """The conditions whose value is given (not None) joined with AND (`TRUE` when none is),
    and their query parameters in order; a condition with several placeholders takes a tuple."""
    where = ["TRUE"]
    params: list[Any] = []
    for sql, value in conditions:
        if value is None:
            continue
        where.append(sql)
        if isinstance(value, tuple):
            params.extend(value)
        else:
            params.append(value)
    return " AND ".join(where), params


async def list_tasks(
    conn: AsyncConnection[Any],
    department: str | None,
    *,
    status: str | None,
    overdue: bool | None,
    district: str | None,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    where, params = where_clause(
        ("d.department = %s", department),
        ("d.status = %s", status),
        (
            "(d.status IN ('dispatched', 'acknowledged', 'in_progress')"
            " AND d.resolve_deadline < now()) = %s",
            overdue,
        ),
        ("i.district = %s", district),
        ("d.updated_at >= %s", since),
        ("(d.created_at, d.dispatch_id) < (%s, %s)", after),
    )
    query = _TASK + " WHERE " + where + " ORDER BY d.created_at DESC, d.dispatch_id DESC LIMIT %s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), [*params, limit])
        return await cur.fetchall()


async def get_task(
    conn: AsyncConnection[Any], department: str | None, dispatch_id: str
) -> dict[str, Any] | None:
    query = _TASK + " WHERE d.dispatch_id = %s AND (%s::text IS NULL OR d.department = %s)"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), (dispatch_id, department, department))
        return await cur.fetchone()


async def task_reports(conn: AsyncConnection[Any], incident_id: str) -> list[dict[str, Any]]:
    """The incident's reports as a department may see them: the text already has callers'
    numbers masked, and the contacts table is not read."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.event_id, r.source_kind, e.feed, e.category, e.severity, e.observed_at,"
            " e.body AS text, e.address, e.lon, e.lat, e.device_id"
            " FROM incident_reports r LEFT JOIN events e USING (event_id)"
            " WHERE r.incident_id = %s ORDER BY r.observed_at LIMIT 200",
            (incident_id,),
        )
        return await cur.fetchall()


# --- deadline extensions -------------------------------------------------------------------
async def request_extension(
    conn: AsyncConnection[Any],
    extension_id: str,
    dispatch_id: str,
    department: str,
    deadline: datetime,
    reason: str,
) -> None:
    await conn.execute(
        "INSERT INTO deadline_extensions (extension_id, dispatch_id, department,"
        " requested_deadline, reason) VALUES (%s, %s, %s, %s, %s)",
        (extension_id, dispatch_id, department, deadline, reason),
    )


async def list_extensions(conn: AsyncConnection[Any], status: str | None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT x.*, d.resolve_deadline AS current_deadline FROM deadline_extensions x"
            " JOIN dispatches d USING (dispatch_id)"
            " WHERE (%s::text IS NULL OR x.status = %s) ORDER BY x.requested_at DESC LIMIT 500",
            (status, status),
        )
        return await cur.fetchall()


async def decide_extension(
    conn: AsyncConnection[Any], extension_id: str, approve: bool, decided_by: str
) -> dict[str, Any] | None:
    """Approve or deny a pending extension (the row of `deadline_extensions`); None if there
    is no such pending extension. The task's deadline is the dispatch stage's to move: an
    approval is sent to it as a command (`commands.v1`)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE deadline_extensions SET status = %s, decided_at = now(), decided_by = %s"
            " WHERE extension_id = %s AND status = 'pending' RETURNING *",
            ("approved" if approve else "denied", decided_by, extension_id),
        )
        return await cur.fetchone()


# --- Open311 -------------------------------------------------------------------------------
def mask_optional(text: str | None) -> str | None:
    """Free text with phone numbers masked (None stays None)."""
    return None if text is None else mask_phones_in_text(text)


async def store_open311(
    conn: AsyncConnection[Any], request_id: str, record: dict[str, Any], token_id: str
) -> bool:
    """False if the id exists already (a retried POST)."""
    cur = await conn.execute(
        "INSERT INTO open311_requests (service_request_id, service_code, description, address,"
        " lat, long, media_url, requested_at, api_token_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            request_id,
            record["service_code"],
            mask_optional(record.get("description")),  # PIPL: no caller's number stored
            mask_optional(record.get("address_string")),
            record.get("lat"),
            record.get("long"),
            record.get("media_url"),
            datetime.fromisoformat(record["requested_datetime"]),
            token_id,
        ),
    )
    return cur.rowcount == 1


_OPEN311 = """
SELECT q.service_request_id, q.service_code, q.description, q.address, q.lat, q.long,
       q.media_url, q.requested_at, q.updated_at,
       i.status AS incident_status, i.updated_at AS incident_updated_at,
       d.department, d.note, d.resolve_deadline, d.resolved_at
FROM open311_requests q
LEFT JOIN incident_reports r ON r.event_id = 'open311:' || q.service_request_id
LEFT JOIN incidents i ON i.incident_id = r.incident_id
LEFT JOIN LATERAL (
    SELECT department, note, resolve_deadline, resolved_at FROM dispatches
    WHERE incident_id = i.incident_id AND status <> 'rejected'
    ORDER BY (role = 'lead') DESC, created_at LIMIT 1
) d ON TRUE
"""


async def open311_requests(
    conn: AsyncConnection[Any],
    ids: list[str] | None,
    service_code: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    where, params = where_clause(
        ("q.service_request_id = ANY(%s)", ids or None),
        ("q.service_code = %s", service_code or None),
        ("q.requested_at >= %s", start),
        ("q.requested_at <= %s", end),
    )
    query = _OPEN311 + " WHERE " + where + " ORDER BY q.requested_at DESC LIMIT %s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), [*params, limit])
        return await cur.fetchall()
