"""The API's operational endpoints: Prometheus metrics (`/metrics`, per route template and
status, no path parameter and so no id or personal data in a label), readiness
(`/readyz`: the database and the broker answer; `/healthz` only says the process is up),
and the interactive docs (`/docs`) served with Swagger UI's own files from the installed
`fastapi-swagger` package: no CDN, so the page works on a network without internet."""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citybrain import probes
from citybrain.probes import READY_TIMEOUT_S, Check

REQUESTS = Counter(
    "citybrain_api_requests_total",
    "HTTP requests the API answered, by method, route template and status.",
    ["method", "route", "status"],
)
SECONDS = Histogram(
    "citybrain_api_request_seconds",
    "Seconds the API took to answer, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
#: Swagger UI's files, served under /docs/assets/
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


class Metrics:
    """Counts and times every HTTP request by its route template (ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_of(scope)
            REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
            SECONDS.labels(route).observe(time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    """The route template a request matched (`/api/v1/tasks/{dispatch_id}`: each path
    segment that is a path parameter's value is named instead), or `other` when none did
    (so that an id or a scanner's path never becomes a label)."""
    if scope.get("route") is None:
        return "other"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    segments = str(scope.get("path", "")).split("/")
    return "/".join(f"{{{params[s]}}}" if s in params else s for s in segments)


async def readiness(checks: Mapping[str, Check], timeout: float = READY_TIMEOUT_S) -> Response:
    """200 when every dependency answers within `timeout`, else 503 naming those that did
    not (and why): `citybrain.probes`' verdict as JSON."""
    verdict = await probes.readiness(checks, timeout)
    return JSONResponse(verdict.body(), status_code=verdict.status_code)


def install(app: FastAPI) -> None:
    """Add the middleware and the operational routes to the API app."""
    app.add_middleware(Metrics)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        state = request.app.state

        async def database() -> None:
            async with state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
                await conn.execute("SELECT 1")

        async def kafka() -> None:
            await state.producer.client.fetch_all_metadata()

        return await readiness({"database": database, "kafka": kafka})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in ASSETS:
            return JSONResponse({"detail": "no such asset"}, status_code=404)
        body = files("fastapi_swagger.resources").joinpath(name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"cache-control": "max-age=86400"})
