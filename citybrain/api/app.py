"""The HTTP API (FastAPI): departments list and work their tasks; the operations center
sees everything and decides deadline extensions; citizens' apps use Open311 GeoReport v2
under /open311/v2 (see `citybrain/api/open311_routes.py`).

Status changes are not written here: they are checked (the task exists, is the caller's,
and can take that change) and sent to `dispatch.status.v1`, where the dispatch-status
stage applies them; the answer is 202 with the report's id. A department asking for
another department's task gets 404, as for a task that does not exist. Invalid input gets
400 naming the field; bodies over `CITYBRAIN_API_MAX_BODY` bytes get 413; more than the
token's rate gets 429 with Retry-After.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citybrain.api import ops, paging, store
from citybrain.api.auth import Caller, operations_only, scope_of
from citybrain.api.bodies import Text
from citybrain.api.ratelimit import TokenBuckets
from citybrain.api.tokens import Principal
from citybrain.dispatch.plan import TRANSITIONS
from citybrain.dispatch.routing import dispatch_files, load_routing
from citybrain.schemas.commands import ExtendDeadlineCommand
from citybrain.settings import Settings, get_settings
from citybrain.streams.clients import aiokafka_options
from citybrain.streams.db import open_pool
from citybrain.streams.topics import TOPICS

API_PREFIX = "/api/v1"


# --- plumbing --------------------------------------------------------------------------------
class BodyLimit:
    """413 for a body over `limit` bytes, declared or streamed (ASGI middleware); paths
    starting with a prefix of `prefixes` have that prefix's limit instead."""

    def __init__(self, app: ASGIApp, limit: int, prefixes: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.prefixes = prefixes or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for p, n in self.prefixes.items() if path.startswith(p)), self.limit)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, "body", f"larger than {limit} bytes")
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_json(send, 413, "body", f"larger than {limit} bytes")


class NoNul:
    """400 for a NUL character in the path or query: no text column can hold one, and no
    legitimate client sends one (ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("query_string", b"") + scope.get("raw_path", b"")
            if b"%00" in raw or b"\x00" in raw or "\x00" in scope.get("path", ""):
                await _send_json(send, 400, "query", "contains a NUL character")
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, field: str, reason: str) -> None:
    """An error answer in the API's format, from a middleware."""
    body = orjson.dumps({"detail": [{"field": field, "reason": reason}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/open311/"):
        from citybrain.api.open311_routes import open311_validation_error

        return open311_validation_error(request, exc)
    problems = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
    return JSONResponse({"detail": problems}, status_code=400)


# --- the app ---------------------------------------------------------------------------------
def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(s)  # the app's own: a test may run several apps in turn
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=s.kafka_idempotence,
            linger_ms=2,
            **aiokafka_options(s),
        )
        await producer.start()
        app.state.pool = pool
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()
            await pool.close()

    app = FastAPI(
        title="citybrain API",
        version="1",
        description=__doc__,
        lifespan=lifespan,
        docs_url=None,  # served by citybrain.api.ops from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = s
    routing = load_routing(*dispatch_files(s))
    app.state.department_names = {code: d.name for code, d in routing.by_code.items()}
    app.state.buckets = TokenBuckets(rate=s.api_rate, burst=s.api_burst)
    from citybrain.api import ingest

    # the ingest route takes batches of records: its own, larger limit
    app.add_middleware(BodyLimit, limit=s.api_max_body, prefixes={ingest.PATH: s.ingest_max_bytes})
    app.add_middleware(NoNul)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(tasks_router, prefix=API_PREFIX)
    from citybrain.api.incidents import router as incidents_router

    app.include_router(incidents_router, prefix=API_PREFIX)
    from citybrain.api.commands import router as commands_router

    app.include_router(commands_router, prefix=API_PREFIX)
    from citybrain.api import console

    app.include_router(console.router, prefix=API_PREFIX)
    app.include_router(console.pages)
    from citybrain.api.open311_routes import router as open311_router

    app.include_router(open311_router, prefix="/open311/v2")
    ingest.install(app, s)  # POST /ingest/v1/{feed}: vendors' batches, with ingest tokens

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    ops.install(app)  # /metrics, /readyz, /docs

    return app


# --- models ------------------------------------------------------------------------------------
class TaskSummary(BaseModel):
    dispatch_id: str
    incident_id: str
    department: str
    role: str
    status: str
    priority: int
    category: str
    ack_deadline: datetime
    resolve_deadline: datetime
    overdue: bool
    report_count: int
    district: str | None
    lon: float | None
    lat: float | None
    created_at: datetime
    updated_at: datetime


class Report(BaseModel):
    event_id: str
    source_kind: str
    feed: str | None
    category: str | None
    observed_at: datetime | None
    text: str | None = Field(None, description="Callers' numbers masked.")
    address: str | None
    lon: float | None
    lat: float | None
    device_id: str | None


class TaskDetail(TaskSummary):
    sla_clock: str
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    note: str | None
    reason: str | None
    reopened: int
    incident_status: str
    location_status: str
    first_seen: datetime
    last_seen: datetime
    reports: list[Report]


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class Resolve(Text):
    note: str = Field(min_length=1, max_length=4000)
    photo_url: str | None = Field(None, max_length=2000, pattern=r"^https?://\S+$")


class Reject(Text):
    reason: str = Field(min_length=1, max_length=2000)
    suggested_department: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)


class ExtensionRequest(Text):
    resolve_deadline: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


class Accepted(BaseModel):
    report_id: str
    dispatch_id: str
    status: str
    detail: str = "sent to dispatch.status.v1; the task shows it within about a second"


class Extension(BaseModel):
    extension_id: str
    dispatch_id: str
    department: str
    requested_deadline: datetime
    reason: str
    status: str
    requested_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    current_deadline: datetime | None = None


# --- tasks -------------------------------------------------------------------------------------
tasks_router = APIRouter(tags=["tasks"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such task, or not yours."}}


@tasks_router.get("/tasks", response_model=TaskPage)
async def list_tasks(
    request: Request,
    who: Caller,
    status: Annotated[
        Literal["dispatched", "acknowledged", "in_progress", "resolved", "rejected"] | None,
        Query(),
    ] = None,
    overdue: bool | None = None,
    district: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")] = None,
    since: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TaskPage:
    """The caller's tasks (every department's for the operations center), newest first."""
    async with request.app.state.pool.connection() as conn:
        rows = await store.list_tasks(
            conn,
            scope_of(who),
            status=status,
            overdue=overdue,
            district=district,
            since=since,
            after=paging.after(cursor),
            limit=limit + 1,
        )
    rows, next_cursor = paging.page(rows, limit, "created_at", "dispatch_id")
    return TaskPage(tasks=[TaskSummary(**r) for r in rows], next_cursor=next_cursor)


async def _own_task(request: Request, who: Principal, dispatch_id: str) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn:
        row = await store.get_task(conn, scope_of(who), dispatch_id)
    if row is None:
        raise HTTPException(404, "no such task")
    return row


@tasks_router.get("/tasks/{dispatch_id}", response_model=TaskDetail, responses=NOT_FOUND)
async def task_detail(request: Request, who: Caller, dispatch_id: str) -> TaskDetail:
    """A task with its incident and the incident's reports (personal data masked)."""
    row = await _own_task(request, who, dispatch_id)
    async with request.app.state.pool.connection() as conn:
        reports = await store.task_reports(conn, row["incident_id"])
    return TaskDetail(**row, reports=[Report(**r) for r in reports])


# A department's report on its task: 202 once sent to dispatch.status.v1.
_STATUS_CHANGE: dict[str, Any] = {
    "status_code": 202,
    "response_model": Accepted,
    "responses": {**NOT_FOUND, 409: {"description": "The task cannot take this change."}},
}


async def _report(
    request: Request,
    who: Principal,
    dispatch_id: str,
    status: str,
    **fields: Any,
) -> Accepted:
    row = await _own_task(request, who, dispatch_id)
    department = row["department"]  # the caller's own (or, for the operations center, any)
    if row["status"] != status and row["status"] not in TRANSITIONS[status]:
        raise HTTPException(409, f"a {row['status']} task cannot become {status}")
    report_id = f"rpt-{secrets.token_hex(8)}"
    value = {
        "schema": "citybrain.dispatch-status/1",
        "report_id": report_id,
        "dispatch_id": dispatch_id,
        "department": department,
        "status": status,
        "at": datetime.now(UTC).isoformat(),
        "actor": who.actor,
        **{k: v for k, v in fields.items() if v is not None},
    }
    await request.app.state.producer.send_and_wait(
        TOPICS.dispatch_status.name, orjson.dumps(value), key=dispatch_id.encode()
    )
    return Accepted(report_id=report_id, dispatch_id=dispatch_id, status=status)


@tasks_router.post("/tasks/{dispatch_id}/acknowledge", **_STATUS_CHANGE)
async def acknowledge(request: Request, who: Caller, dispatch_id: str) -> Accepted:
    return await _report(request, who, dispatch_id, "acknowledged")


@tasks_router.post("/tasks/{dispatch_id}/start", **_STATUS_CHANGE)
async def start(request: Request, who: Caller, dispatch_id: str) -> Accepted:
    return await _report(request, who, dispatch_id, "in_progress")


@tasks_router.post("/tasks/{dispatch_id}/resolve", **_STATUS_CHANGE)
async def resolve(request: Request, who: Caller, dispatch_id: str, body: Resolve) -> Accepted:
    return await _report(
        request, who, dispatch_id, "resolved", note=body.note, photo_url=body.photo_url
    )


@tasks_router.post("/tasks/{dispatch_id}/reject", **_STATUS_CHANGE)
async def reject(request: Request, who: Caller, dispatch_id: str, body: Reject) -> Accepted:
    return await _report(
        request,
        who,
        dispatch_id,
        "rejected",
        reason=body.reason,
        suggested_department=body.suggested_department,
    )


@tasks_router.post(
    "/tasks/{dispatch_id}/extension",
    status_code=201,
    response_model=Extension,
    responses={**NOT_FOUND, 409: {"description": "The task is closed or the date is not later."}},
)
async def request_extension(
    request: Request, who: Caller, dispatch_id: str, body: ExtensionRequest
) -> Extension:
    """Ask the operations center for a later resolve deadline."""
    row = await _own_task(request, who, dispatch_id)
    if row["status"] not in store.OPEN:
        raise HTTPException(409, f"a {row['status']} task needs no extension")
    if body.resolve_deadline <= row["resolve_deadline"]:
        raise HTTPException(409, "the requested deadline is not later than the current one")
    extension_id = f"ext-{secrets.token_hex(8)}"
    async with request.app.state.pool.connection() as conn:
        await store.request_extension(
            conn, extension_id, dispatch_id, row["department"], body.resolve_deadline, body.reason
        )
        rows = await store.list_extensions(conn, "pending")
    return Extension(**next(r for r in rows if r["extension_id"] == extension_id))


@tasks_router.get("/extensions", response_model=list[Extension])
async def list_extensions(
    request: Request,
    who: Caller,
    status: Literal["pending", "approved", "denied"] | None = "pending",
) -> list[Extension]:
    """Extension requests (operations center only)."""
    operations_only(who, "only the operations center decides extensions")
    async with request.app.state.pool.connection() as conn:
        return [Extension(**r) for r in await store.list_extensions(conn, status)]


async def _decide(request: Request, who: Principal, extension_id: str, approve: bool) -> Extension:
    """Record the decision; an approval goes to the dispatch stage as a command (sent
    before the decision commits: a decision is never recorded without its command, and a
    command sent again is applied once)."""
    operations_only(who, "only the operations center decides extensions")
    actor = who.actor
    async with request.app.state.pool.connection() as conn, conn.transaction():
        row = await store.decide_extension(conn, extension_id, approve, actor)
        if row is None:
            raise HTTPException(404, "no such pending extension")
        if approve:
            command = ExtendDeadlineCommand(
                command_id=extension_id,
                dispatch_id=row["dispatch_id"],
                resolve_deadline=row["requested_deadline"],
                actor=actor,
                reason=row["reason"],
                at=row["decided_at"],
            )
            await request.app.state.producer.send_and_wait(
                TOPICS.commands.name,
                orjson.dumps(command.model_dump(by_alias=True, mode="json")),
                key=command.dispatch_id.encode(),
            )
    return Extension(**row)


@tasks_router.post(
    "/extensions/{extension_id}/approve", response_model=Extension, responses=NOT_FOUND
)
async def approve_extension(request: Request, who: Caller, extension_id: str) -> Extension:
    return await _decide(request, who, extension_id, True)


@tasks_router.post("/extensions/{extension_id}/deny", response_model=Extension, responses=NOT_FOUND)
async def deny_extension(request: Request, who: Caller, extension_id: str) -> Extension:
    return await _decide(request, who, extension_id, False)
