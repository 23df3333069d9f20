"""Open311 GeoReport v2 over HTTP (`/open311/v2`): services, POST requests (api_key; the
request becomes a `raw.open311` record and goes through the same pipeline as every other
report), GET requests and requests/{id} with their status, the responsible agency and its
notes. JSON and XML, chosen by the path's extension as the specification says; errors in
the specification's error format. Nothing from an invalid request reaches Kafka."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET  # building only
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Form, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from citybrain.api import store
from citybrain.api.open311 import (
    Open311Error,
    RequestView,
    errors_document,
    http_status,
    load_services,
    new_request_id,
    open311_status,
    post_response,
    raw_record,
    request_document,
    services_document,
    to_xml,
    validate_request,
)
from citybrain.api.tokens import parse
from citybrain.schemas.fields import is_aware

router = APIRouter(tags=["open311"])
Format = Literal["json", "xml"]
SERVICES = load_services()
MAX_REQUESTS = 1000  # the specification's suggested maximum per GET requests
DEFAULT_DAYS = 90  # ... and its default window


def _render(
    fmt: str, root: str, item: str, items: list[dict[str, Any]], status: int = 200
) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, items), status, media_type="text/xml; charset=utf-8")
    return Response(orjson.dumps(items), status, media_type="application/json")


def _errors(fmt: str, errors: list[Open311Error], retry_after: float = 0) -> Response:
    response = _render(fmt, "errors", "error", errors_document(errors), http_status(errors))
    if retry_after > 0:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def _client(request: Request) -> str:
    """The caller's address (the rate limit's key for a request without a key)."""
    return request.client.host if request.client else "unknown"


def open311_validation_error(request: Request, exc: RequestValidationError) -> Response:
    fmt = "xml" if request.url.path.endswith(".xml") else "json"
    errors = [
        Open311Error(400, f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}")
        for e in exc.errors()
    ]
    return _errors(fmt, errors)


@router.get("/services.{fmt}", summary="GET Service List")
async def services(fmt: Format) -> Response:
    return _render(fmt, "services", "service", services_document(SERVICES))


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition")
async def service_definition(service_code: str, fmt: Format) -> Response:
    known = {s.service_code for s in SERVICES}
    if service_code not in known:
        return _errors(fmt, [Open311Error(404, f"service_code: unknown {service_code!r}")])
    # no service has metadata: the definition has no attributes
    if fmt == "xml":
        root = ET.Element("service_definition")
        ET.SubElement(root, "service_code").text = service_code
        ET.SubElement(root, "attributes")
        body = b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")
        return Response(body, media_type="text/xml; charset=utf-8")
    return JSONResponse({"service_code": service_code, "attributes": []})


@router.post("/requests.{fmt}", summary="POST Service Request")
async def post_request(
    request: Request,
    fmt: Format,
    api_key: Annotated[str, Form(max_length=200)] = "",
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Create a service request (form-encoded, as the specification says)."""
    parsed = parse(api_key)
    who = None
    wait = request.app.state.buckets.take(f"open311:{parsed[0] if parsed else _client(request)}")
    if wait > 0:  # per client key (or address, for a request without one)
        return _errors(fmt, [Open311Error(429, "too many requests")], retry_after=wait)
    if parsed is not None:
        async with request.app.state.pool.connection() as conn:
            who = await store.authenticate(conn, *parsed)
    if who is None or who.role not in ("open311", "operations"):
        return _errors(fmt, [Open311Error(403, "api_key: missing, unknown or revoked")])
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "api_key"}
    now = datetime.now(UTC)
    checked = validate_request(fields, SERVICES, now)
    if isinstance(checked, list):
        return _errors(fmt, checked)
    request_id = new_request_id(idempotency_key, client_id=who.token_id)
    record = raw_record(checked, request_id, now)
    async with request.app.state.pool.connection() as conn:
        await store.store_open311(conn, request_id, record, who.token_id)
    await request.app.state.producer.send_and_wait(
        "raw.open311", orjson.dumps(record), key=request_id.encode()
    )
    notice = next(
        (s.service_notice for s in SERVICES if s.service_code == checked.service_code), None
    )
    return _render(fmt, "service_requests", "request", post_response(request_id, notice))


def _view(row: dict[str, Any], names: dict[str, str]) -> RequestView:
    service = next((s for s in SERVICES if s.service_code == row["service_code"]), None)
    status = row["incident_status"] or "open"
    closed = open311_status(status) == "closed"
    updated = max(
        t for t in (row["updated_at"], row["incident_updated_at"], row["resolved_at"]) if t
    )
    return RequestView(
        service_request_id=row["service_request_id"],
        service_code=row["service_code"],
        service_name=service.service_name if service else row["service_code"],
        incident_status=status,
        requested_datetime=row["requested_at"],
        updated_datetime=(row["resolved_at"] or updated) if closed else updated,
        status_notes=row["note"] if closed else None,
        description=row["description"],
        agency_responsible=names.get(row["department"], row["department"])
        if row["department"]
        else None,
        service_notice=service.service_notice if service else None,
        expected_datetime=row["resolve_deadline"],
        address=row["address"],
        lat=row["lat"],
        long=row["long"],
        media_url=row["media_url"],
    )


@router.get("/requests.{fmt}", summary="GET Service Requests")
async def get_requests(
    request: Request,
    fmt: Format,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=100)] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    errors = []
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None and not is_aware(value):
            errors.append(Open311Error(400, f"{name}: needs a time zone (Z or +08:00)"))
    wanted = {s.strip() for s in (status or "").split(",") if s.strip()}
    if wanted - {"open", "closed"}:
        errors.append(Open311Error(400, "status: open, closed or both (comma separated)"))
    if errors:
        return _errors(fmt, errors)
    ids = (
        [i.strip() for i in service_request_id.split(",") if i.strip()]
        if service_request_id
        else None
    )
    if ids is None and start_date is None and end_date is None:
        start_date = datetime.now(UTC) - timedelta(days=DEFAULT_DAYS)
    async with request.app.state.pool.connection() as conn:
        rows = await store.open311_requests(
            conn, ids, service_code, start_date, end_date, MAX_REQUESTS
        )
    views = [_view(r, request.app.state.department_names) for r in rows]
    docs = [
        request_document(v)
        for v in views
        if not wanted or open311_status(v.incident_status) in wanted
    ]
    return _render(fmt, "service_requests", "request", docs)


@router.get("/requests/{request_id}.{fmt}", summary="GET Service Request")
async def get_request(request: Request, request_id: str, fmt: Format) -> Response:
    async with request.app.state.pool.connection() as conn:
        rows = await store.open311_requests(conn, [request_id], None, None, None, 1)
    if not rows:
        return _errors(fmt, [Open311Error(404, f"service_request_id: no request {request_id!r}")])
    view = _view(rows[0], request.app.state.department_names)
    return _render(fmt, "service_requests", "request", [request_document(view)])
