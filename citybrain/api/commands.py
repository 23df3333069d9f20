"""Operators' commands over HTTP (operations center only): each is checked against the
stored state (404 for what does not exist, 409 with the reason for what the state does not
allow, 400 naming the field), recorded as `accepted` with its actor, reason and time, and
sent to `commands.v1`, where the stage that owns the state applies it. The answer is 202
with the command's id and where to read its result (`GET /api/v1/commands/{id}`: accepted,
then applied or refused with the reason). An `Idempotency-Key` header makes the command id:
the same key sent again is the same command, applied once."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Request
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, Field

from citybrain.api.auth import Caller, operations_only
from citybrain.api.bodies import Text
from citybrain.db.commands import INSERT_ACCEPTED
from citybrain.schemas.commands import (
    CODE,
    AnyCommand,
    AssignCommand,
    CallbackCommand,
    CloseCommand,
    DismissSuggestionCommand,
    MergeCommand,
    PlaceCommand,
    ReopenCommand,
    SplitCommand,
    UrgeCommand,
    target_of,
)
from citybrain.streams.topics import TOPICS

router = APIRouter(tags=["commands"])
OPEN_TASK = ("dispatched", "acknowledged", "in_progress")
ACTIVE = ("open", "dispatched", "acknowledged", "reopened")
KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,100}$")
KEY_RULE = "8 to 100 of A-Z a-z 0-9 _ . : -"
ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the operations center gives commands."},
    404: {"description": "No such incident or task."},
    409: {"description": "The state does not allow it; the detail says why."},
}


class _Body(Text):
    reason: str = Field(min_length=1, max_length=2000, description="Why (recorded).")


class PlaceBody(_Body):
    lon: float = Field(ge=-180, le=180, description="WGS-84.")
    lat: float = Field(ge=-90, le=90, description="WGS-84.")
    address: str | None = Field(None, max_length=500)


class MergeBody(_Body):
    into: str = Field(min_length=1, max_length=100, description="The incident that carries on.")


class SplitBody(_Body):
    event_ids: list[str] = Field(
        min_length=1, max_length=500, description="The reports that are another problem."
    )


class AssignBody(_Body):
    department: str = Field(min_length=1, max_length=64, pattern=CODE)
    role: Literal["lead", "helper"] = "lead"
    replaces: str | None = Field(None, max_length=64, pattern=CODE)
    resolve_deadline: AwareDatetime | None = None


class CloseBody(_Body):
    verification: Literal["sensor_normal", "onsite_check", "callback"]


class CallbackBody(_Body):
    outcome: Literal["satisfied", "unsatisfied", "unreachable"]


class Accepted(BaseModel):
    command_id: str
    command: str
    status: str = "accepted"
    status_url: str


class CommandState(BaseModel):
    command_id: str
    command: str
    incident_id: str | None
    dispatch_id: str | None
    actor: str
    reason: str
    payload: dict[str, Any]
    status: Literal["accepted", "applied", "refused"]
    result: str | None
    requested_at: datetime
    applied_at: datetime | None


COMMAND: dict[str, Any] = {"status_code": 202, "response_model": Accepted, "responses": ANSWERS}
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="8-100 of A-Z a-z 0-9 _ . : -")
]


def _command_id(key: str | None) -> str:
    if key is None:
        return f"cmd-{secrets.token_hex(8)}"
    if not KEY.match(key):
        raise HTTPException(400, [{"field": "header.Idempotency-Key", "reason": KEY_RULE}])
    return f"cmd-{key}"


async def _row(request: Request, query: str, params: tuple[Any, ...], missing: str) -> Any:
    """The one row a check reads; 404 saying `missing` when there is none."""
    async with (
        request.app.state.pool.connection() as conn,
        conn.cursor(row_factory=dict_row) as cur,
    ):
        await cur.execute(query.encode(), params)
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, missing)
    return row


async def _incident(request: Request, incident_id: str) -> dict[str, Any]:
    """An incident as the checks see it: status, place, callback, and its tasks' statuses
    by department."""
    row = await _row(
        request,
        "SELECT incident_id, status, location_status, category, callback, merged_into,"
        " (SELECT coalesce(jsonb_object_agg(department, status), '{}') FROM dispatches d"
        "  WHERE d.incident_id = i.incident_id) AS tasks"
        " FROM incidents i WHERE incident_id = %s",
        (incident_id,),
        "no such incident",
    )
    return dict(row)


async def _send(request: Request, command: AnyCommand) -> Accepted:
    """Record the command as accepted and send it (sent before the record commits: a record
    never exists without its command; a command sent again is applied once)."""
    value = command.model_dump(by_alias=True, mode="json")
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            INSERT_ACCEPTED,
            (
                command.command_id,
                command.command,
                getattr(command, "incident_id", None),
                getattr(command, "dispatch_id", None),
                command.actor,
                command.reason,
                Jsonb(value),
                command.at,
            ),
        )
        if cur.rowcount == 1:  # a new command (a repeated key is answered as the first)
            await request.app.state.producer.send_and_wait(
                TOPICS.commands.name, orjson.dumps(value), key=target_of(command).encode()
            )
    return Accepted(
        command_id=command.command_id,
        command=command.command,
        status_url=f"/api/v1/commands/{command.command_id}",
    )


def _common(who: Any, body: _Body, key: str | None) -> dict[str, Any]:
    operations_only(who, "only the operations center gives commands")
    return {
        "command_id": _command_id(key),
        "actor": who.actor,
        "reason": body.reason,
        "at": datetime.now(UTC),
    }


@router.post("/incidents/{incident_id}/place", **COMMAND)
async def place(
    request: Request, who: Caller, incident_id: str, body: PlaceBody, key: IdempotencyKey = None
) -> Accepted:
    """Place an incident at a point (from the map, or a register entry's): it is geo-tagged
    and routed again; a task the operations center held for want of a place is handed on."""
    common = _common(who, body, key)
    row = await _incident(request, incident_id)
    if row["status"] not in ACTIVE:
        raise HTTPException(409, f"a {row['status']} incident is not placed any more")
    command = PlaceCommand(
        **common, incident_id=incident_id, lon=body.lon, lat=body.lat, address=body.address
    )
    return await _send(request, command)


@router.post("/incidents/{incident_id}/merge", **COMMAND)
async def merge(
    request: Request, who: Caller, incident_id: str, body: MergeBody, key: IdempotencyKey = None
) -> Accepted:
    """This incident is the same problem as `into`: its reports join it, its open tasks are
    cancelled (their departments told), and it is closed as merged."""
    common = _common(who, body, key)
    if body.into == incident_id:
        raise HTTPException(409, "an incident cannot be merged into itself")
    for row in (await _incident(request, incident_id), await _incident(request, body.into)):
        if row["status"] not in ACTIVE:
            raise HTTPException(409, f"{row['incident_id']} is {row['status']}")
    return await _send(request, MergeCommand(**common, incident_id=incident_id, into=body.into))


@router.post("/incidents/{incident_id}/split", **COMMAND)
async def split(
    request: Request, who: Caller, incident_id: str, body: SplitBody, key: IdempotencyKey = None
) -> Accepted:
    """Some reports are another problem: they leave for a new incident of their own (the
    command's result names it), routed as any new incident."""
    common = _common(who, body, key)
    row = await _incident(request, incident_id)
    if row["status"] not in ACTIVE:
        raise HTTPException(409, f"a {row['status']} incident is not split")
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event_id FROM incident_reports WHERE incident_id = %s", (incident_id,)
        )
        reports = {r[0] for r in await cur.fetchall()}
    wanted = set(body.event_ids)
    if not wanted <= reports:
        problem = {"field": "body.event_ids", "reason": "not all are reports of this incident"}
        raise HTTPException(400, [problem])
    if wanted == reports:
        raise HTTPException(409, "every report would leave: nothing to split")
    command = SplitCommand(**common, incident_id=incident_id, event_ids=sorted(wanted))
    return await _send(request, command)


@router.post("/incidents/{incident_id}/suggestions/{candidate_id}/accept", **COMMAND)
async def accept_suggestion(
    request: Request,
    who: Caller,
    incident_id: str,
    candidate_id: str,
    body: _Body,
    key: IdempotencyKey = None,
) -> Accepted:
    """Accept a merge suggestion: the same as merging the incident into the candidate."""
    await _suggestion(request, incident_id, candidate_id)
    return await merge(
        request, who, incident_id, MergeBody(reason=body.reason, into=candidate_id), key
    )


@router.post("/incidents/{incident_id}/suggestions/{candidate_id}/dismiss", **COMMAND)
async def dismiss_suggestion(
    request: Request,
    who: Caller,
    incident_id: str,
    candidate_id: str,
    body: _Body,
    key: IdempotencyKey = None,
) -> Accepted:
    """Dismiss a merge suggestion: it is no longer offered."""
    common = _common(who, body, key)
    await _suggestion(request, incident_id, candidate_id)
    command = DismissSuggestionCommand(**common, incident_id=incident_id, candidate_id=candidate_id)
    return await _send(request, command)


async def _suggestion(request: Request, incident_id: str, candidate_id: str) -> None:
    row = await _row(
        request,
        "SELECT status FROM incident_merge_suggestions WHERE incident_id = %s"
        " AND candidate_id = %s",
        (incident_id, candidate_id),
        "no such suggestion",
    )
    if row["status"] != "open":
        raise HTTPException(409, f"the suggestion was {row['status']} already")


@router.post("/incidents/{incident_id}/assign", **COMMAND)
async def assign(
    request: Request, who: Caller, incident_id: str, body: AssignBody, key: IdempotencyKey = None
) -> Accepted:
    """Give the incident's task to a department by hand (派单); with `replaces`, that
    department's open task is cancelled (改派). `resolve_deadline` overrides the SLA's."""
    common = _common(who, body, key)
    if body.department not in request.app.state.department_names:
        raise HTTPException(400, [{"field": "body.department", "reason": "no such department"}])
    row = await _incident(request, incident_id)
    tasks = row["tasks"]
    if row["status"] == "closed":
        raise HTTPException(409, "the incident is closed: reopen it first")
    if tasks.get(body.department) in OPEN_TASK:
        raise HTTPException(409, f"{body.department} has an open task on it already")
    if body.replaces is not None and tasks.get(body.replaces) not in OPEN_TASK:
        raise HTTPException(409, f"{body.replaces} has no open task to hand over")
    if body.resolve_deadline is not None and body.resolve_deadline <= datetime.now(UTC):
        raise HTTPException(
            400, [{"field": "body.resolve_deadline", "reason": "not in the future"}]
        )
    command = AssignCommand(
        **common,
        incident_id=incident_id,
        department=body.department,
        role=body.role,
        replaces=body.replaces,
        resolve_deadline=body.resolve_deadline,
    )
    return await _send(request, command)


@router.post("/tasks/{dispatch_id}/urge", **COMMAND)
async def urge(
    request: Request, who: Caller, dispatch_id: str, body: _Body, key: IdempotencyKey = None
) -> Accepted:
    """Urge a department on an open task (督办): it gets a `task.urged` message."""
    common = _common(who, body, key)
    row = await _row(
        request,
        "SELECT status FROM dispatches WHERE dispatch_id = %s",
        (dispatch_id,),
        "no such task",
    )
    if row["status"] not in OPEN_TASK:
        raise HTTPException(409, f"a {row['status']} task cannot be urged")
    return await _send(request, UrgeCommand(**common, dispatch_id=dispatch_id))


@router.post("/incidents/{incident_id}/close", **COMMAND)
async def close(
    request: Request, who: Caller, incident_id: str, body: CloseBody, key: IdempotencyKey = None
) -> Accepted:
    """Close the incident (办结) once every task is done, saying how the result was checked:
    the sensor back to normal, an on-site check, or a satisfied callback."""
    common = _common(who, body, key)
    row = await _incident(request, incident_id)
    if row["status"] == "closed":
        raise HTTPException(409, "the incident is closed already")
    still_open = sorted(d for d, s in row["tasks"].items() if s in OPEN_TASK)
    if still_open:
        raise HTTPException(409, "tasks still open: " + ", ".join(still_open))
    if body.verification == "callback" and row["callback"] != "satisfied":
        raise HTTPException(409, "no satisfied callback is on record")
    command = CloseCommand(**common, incident_id=incident_id, verification=body.verification)
    return await _send(request, command)


@router.post("/incidents/{incident_id}/reopen", **COMMAND)
async def reopen(
    request: Request, who: Caller, incident_id: str, body: _Body, key: IdempotencyKey = None
) -> Accepted:
    """Reopen a resolved or closed incident: its resolved tasks are dispatched again."""
    common = _common(who, body, key)
    row = await _incident(request, incident_id)
    if row["status"] not in ("resolved", "closed") or row["merged_into"]:
        raise HTTPException(409, f"a {row['status']} incident cannot be reopened")
    return await _send(request, ReopenCommand(**common, incident_id=incident_id))


@router.post("/incidents/{incident_id}/callback", **COMMAND)
async def callback(
    request: Request, who: Caller, incident_id: str, body: CallbackBody, key: IdempotencyKey = None
) -> Accepted:
    """Record the citizen's callback (回访); unsatisfied reopens a finished incident."""
    common = _common(who, body, key)
    await _incident(request, incident_id)
    command = CallbackCommand(**common, incident_id=incident_id, outcome=body.outcome)
    return await _send(request, command)


@router.get("/commands/{command_id}", response_model=CommandState, responses=ANSWERS)
async def command_state(request: Request, who: Caller, command_id: str) -> CommandState:
    """A command and what came of it: accepted, then applied or refused (with the reason)."""
    operations_only(who, "only the operations center gives commands")
    row = await _row(
        request,
        "SELECT command_id, command, incident_id, dispatch_id, actor, reason, payload,"
        " status, result, requested_at, applied_at FROM operator_commands"
        " WHERE command_id = %s",
        (command_id,),
        "no such command",
    )
    return CommandState(**row)
