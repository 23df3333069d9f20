"""The incident API's reads: incidents filtered and paged by key, the operations center's
queue counts, and one incident with its reports, tasks, merge suggestions and timeline.

Every query takes the caller's department (None for the operations center): a department
sees only the incidents it has a task on, so another's is simply not found. Callers'
numbers are masked in every text read here (the events' bodies are stored masked; the
addresses are masked on the way out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from citybrain.api.store import where_clause
from citybrain.privacy import mask_phones_in_text

#: task statuses still waiting on a department
OPEN_TASK = "('dispatched', 'acknowledged', 'in_progress')"
#: incident statuses the center still works on
ACTIVE = "('open', 'dispatched', 'acknowledged', 'reopened')"

_TASKS_OF = "SELECT 1 FROM dispatches d WHERE d.incident_id = i.incident_id"
#: the queue conditions, by name (each an SQL predicate on `incidents i`)
QUEUES = {
    "needs_location": f"i.location_status = 'needs_location' AND i.status IN {ACTIVE}",
    "unrouted": f"i.status IN {ACTIVE} AND i.location_status <> 'needs_location'"
    f" AND NOT EXISTS ({_TASKS_OF})",
    "rejected_by_all": f"i.status IN {ACTIVE} AND EXISTS ({_TASKS_OF})"
    f" AND NOT EXISTS ({_TASKS_OF} AND d.status <> 'rejected')",
    "overdue": f"EXISTS ({_TASKS_OF} AND d.status IN {OPEN_TASK} AND d.resolve_deadline < now())",
    "merge_suggestions": f"i.status IN {ACTIVE} AND EXISTS (SELECT 1 FROM"
    " incident_merge_suggestions s WHERE s.incident_id = i.incident_id AND s.status = 'open')",
}

_INCIDENT = f"""
SELECT i.incident_id, i.category, i.priority, i.status, i.first_seen, i.last_seen,
       i.report_counts, i.reports_total, i.lon, i.lat, i.location_status, i.district,
       i.street, i.community, i.grid_cell, i.title, i.updated_at,
       ({QUEUES["overdue"]}) AS overdue,
       (SELECT count(*) FROM dispatches d WHERE d.incident_id = i.incident_id) AS tasks,
       (SELECT count(*) FROM incident_merge_suggestions s
         WHERE s.incident_id = i.incident_id AND s.status = 'open') AS open_suggestions
FROM incidents i
"""


def _department_sees(department: str | None) -> tuple[str, Any]:
    return (f"EXISTS ({_TASKS_OF} AND d.department = %s)", department)


async def list_incidents(
    conn: AsyncConnection[Any],
    department: str | None,
    *,
    status: str | None = None,
    queue: str | None = None,
    district: str | None = None,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest activity first (last_seen, then id: the key the cursor continues from)."""
    pattern = None if text is None else "%" + _escape_like(text) + "%"
    where, params = where_clause(
        _department_sees(department),
        ("i.status = %s", status),
        (QUEUES[queue], ()) if queue else ("TRUE", None),
        ("i.district = %s", district),
        ("i.category = %s", category),
        ("i.last_seen >= %s", since),
        ("i.last_seen < %s", until),
        (
            "(i.incident_id = %s OR i.title ILIKE %s OR EXISTS (SELECT 1 FROM incident_reports r"
            " JOIN events e USING (event_id) WHERE r.incident_id = i.incident_id"
            " AND (e.address ILIKE %s OR e.body ILIKE %s)))",
            None if text is None else (text, pattern, pattern, pattern),
        ),
        ("(i.last_seen, i.incident_id) < (%s, %s)", after),
    )
    query = (
        _INCIDENT + " WHERE " + where + " ORDER BY i.last_seen DESC, i.incident_id DESC LIMIT %s"
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), [*params, limit])
        return await cur.fetchall()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def queue_counts(conn: AsyncConnection[Any], department: str | None) -> dict[str, int]:
    """How many incidents wait in each queue (those the caller may see)."""
    sees, dept = _department_sees(department)
    scope = sees if department is not None else "TRUE"
    parts = [f"count(*) FILTER (WHERE {sql}) AS {name}" for name, sql in QUEUES.items()]
    query = (
        f"SELECT {', '.join(parts)} FROM incidents i WHERE {scope} AND ("
        + " OR ".join(f"({sql})" for sql in QUEUES.values())
        + ")"
    )
    params = [dept] if department is not None else []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), params)
        counts = dict(await cur.fetchone() or {})
    return {name: int(n or 0) for name, n in counts.items()}


async def get_incident(
    conn: AsyncConnection[Any], department: str | None, incident_id: str
) -> dict[str, Any] | None:
    where, params = where_clause(_department_sees(department), ("i.incident_id = %s", incident_id))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute((_INCIDENT + " WHERE " + where).encode(), params)
        return await cur.fetchone()


async def incident_reports(conn: AsyncConnection[Any], incident_id: str) -> list[dict[str, Any]]:
    """The reports, oldest first, as anyone who may see the incident may see them."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.event_id, r.source_kind, e.feed, e.category, e.severity, r.observed_at,"
            " e.body AS text, e.address, e.lon, e.lat, e.device_id, e.location_status"
            " FROM incident_reports r LEFT JOIN events e"
            " ON e.event_id = r.event_id AND e.observed_at = r.observed_at"
            " WHERE r.incident_id = %s ORDER BY r.observed_at, r.event_id LIMIT 500",
            (incident_id,),
        )
        rows = await cur.fetchall()
    for row in rows:
        row["text"] = _masked(row["text"])
        row["address"] = _masked(row["address"])
    return rows


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_phones_in_text(text)


async def incident_tasks(conn: AsyncConnection[Any], incident_id: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT dispatch_id, department, role, status, priority, ack_deadline,"
            " resolve_deadline, created_at, updated_at, acknowledged_at, resolved_at, note,"
            f" reason, (status IN {OPEN_TASK} AND resolve_deadline < now()) AS overdue"
            " FROM dispatches WHERE incident_id = %s ORDER BY created_at, dispatch_id",
            (incident_id,),
        )
        return await cur.fetchall()


async def incident_suggestions(
    conn: AsyncConnection[Any], incident_id: str
) -> list[dict[str, Any]]:
    """Open merge suggestions for the incident (most likely first), with what the candidate
    looks like now."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT s.candidate_id, s.score, s.reasons, s.suggested_at, c.category, c.status,"
            " c.district, c.reports_total, c.location_status, c.lon, c.lat"
            " FROM incident_merge_suggestions s JOIN incidents c ON c.incident_id = s.candidate_id"
            " WHERE s.incident_id = %s AND s.status = 'open'"
            " ORDER BY s.score DESC, s.candidate_id LIMIT 20",
            (incident_id,),
        )
        return await cur.fetchall()


async def incident_timeline(conn: AsyncConnection[Any], incident_id: str) -> list[dict[str, Any]]:
    """Everything that happened to the incident, oldest first: its own history, its tasks'
    history and every delivery attempt of its tasks' messages (one list, one shape)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT at, 'incident' AS source, change AS what, NULL::text AS department,
                   NULL::text AS actor,
                   concat_ws(' ', 'status=' || status, 'priority=' || priority,
                             'reports=' || reports_total, 'district=' || district) AS detail
              FROM incident_history WHERE incident_id = %(id)s
            UNION ALL
            SELECT at, 'task', status, department, actor, note
              FROM dispatch_history WHERE incident_id = %(id)s
            UNION ALL
            SELECT requested_at, 'command', command || ' ' || status, NULL, actor,
                   concat_ws(' => ', reason, result)
              FROM operator_commands WHERE incident_id = %(id)s
            UNION ALL
            SELECT a.at, 'delivery', a.outcome || ' ' || o.kind, o.department, NULL,
                   concat_ws(' ', a.destination, 'attempt ' || a.attempt,
                             'HTTP ' || a.status_code, a.error)
              FROM dispatch_outbox o
              JOIN dispatches d ON d.dispatch_id = o.dispatch_id AND d.incident_id = %(id)s
              JOIN delivery_attempts a
                ON a.message_id = o.message_id AND a.destination = o.destination
            ORDER BY 1, 2 LIMIT 2000
            """,
            {"id": incident_id},
        )
        rows = await cur.fetchall()
    for row in rows:
        row["detail"] = _masked(row["detail"])
    return rows
