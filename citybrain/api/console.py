"""The web console, served by `citybrain api` under `/console/` (no other server to run):
its pages and files (Leaflet served from the package, no CDN, no tile server needed), the
sign-in that exchanges a token for a session cookie, and what its pages read besides the
API: the city's districts as GeoJSON, a place search in the city's gazetteer and address
register, the departments, and the queues' counts as server-sent events."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Any

import orjson
import shapely
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from citybrain.api import incident_store, sessions, store
from citybrain.api.auth import Caller, scope_of
from citybrain.api.tokens import parse
from citybrain.geo.address import Gazetteer, load_gazetteer
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import CityPack, load_pack

CONSOLE = files("citybrain.api") / "console"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
#: no script, style, image or connection from anywhere but the console itself (a tile
#: server, when one is set, is added for images)
CSP = (
    "default-src 'self'; img-src 'self' data: {tiles}; style-src 'self'; script-src 'self';"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
QUEUE_EVERY_S = 3.0
MAX_GRID_CELLS = 2500

pages = APIRouter(include_in_schema=False)
router = APIRouter(tags=["console"])


# --- pages and files ---------------------------------------------------------------------------
def _file(relative: str, request: Request) -> Response:
    path = CONSOLE.joinpath(*relative.split("/"))
    suffix = "." + relative.rsplit(".", 1)[-1] if "." in relative else ""
    if ".." in relative.split("/") or suffix not in TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    tiles = request.app.state.settings.console_tiles
    origin = tiles.split("/{z}")[0].rsplit("/", 1)[0] if tiles else ""
    headers = {
        "Content-Security-Policy": CSP.format(tiles=origin).replace(" ;", ";"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return FileResponse(str(path), media_type=TYPES[suffix], headers=headers)


@pages.get("/console")
async def console_root() -> Response:
    return Response(status_code=307, headers={"Location": "/console/"})


@pages.get("/console/")
async def console_index(request: Request) -> Response:
    return _file("index.html", request)


# --- sign-in -----------------------------------------------------------------------------------
class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class Session(BaseModel):
    role: str
    department: str | None
    label: str
    csrf_token: str = Field(description="Send it back as X-CSRF-Token on every change.")
    tiles: str = ""
    tiles_crs: str = "GCJ-02"


@pages.post("/console/session", response_model=Session)
async def sign_in(request: Request, body: SignIn) -> Response:
    """Exchange an API token for a session cookie (HttpOnly, SameSite=Strict)."""
    parsed = parse(body.token)
    if parsed is None:
        raise HTTPException(401, "not a citybrain token")
    if request.app.state.buckets.take(parsed[0]) > 0:
        raise HTTPException(429, "too many requests")
    s = request.app.state.settings
    async with request.app.state.pool.connection() as conn:
        who = await store.authenticate(conn, *parsed)
        if who is None:
            raise HTTPException(401, "unknown or revoked token")
        if who.role == "open311":
            raise HTTPException(403, "an Open311 client key cannot use the console")
        if who.role == "ingest":
            raise HTTPException(403, "an ingest token cannot use the console")
        cookie, csrf, expires = await sessions.open_session(
            conn, who.token_id, s.console_session_hours
        )
    answer = JSONResponse(_session(who, csrf, s).model_dump())
    answer.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=int(s.console_session_hours * 3600),
        expires=expires,
        path="/",
        httponly=True,
        samesite="strict",
        secure=s.console_secure_cookie,
    )
    return answer


def _session(who: Any, csrf: str, s: Any) -> Session:
    return Session(
        role=who.role,
        department=who.department,
        label=who.label,
        csrf_token=csrf,
        tiles=s.console_tiles,
        tiles_crs=s.console_tiles_crs,
    )


@pages.get("/console/session", response_model=Session, responses={204: {"description": "Nobody"}})
async def current_session(request: Request) -> Session | Response:
    """Who is signed in (after a reload the page reads its CSRF token here); 204 when
    nobody is."""
    cookie = request.cookies.get(sessions.COOKIE)
    found = None
    if cookie:
        async with request.app.state.pool.connection() as conn:
            found = await sessions.session_principal(conn, cookie)
    if found is None:
        return Response(status_code=204)
    return _session(found[0], found[1], request.app.state.settings)


@pages.post("/console/session/end", status_code=204)
async def sign_out(request: Request) -> Response:
    """End the session (the CSRF token is needed: no other site can sign a user out)."""
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        async with request.app.state.pool.connection() as conn:
            found = await sessions.session_principal(conn, cookie)
            if found is not None:
                if not sessions.csrf_matches(request.headers.get(sessions.CSRF_HEADER), found[1]):
                    raise HTTPException(403, "missing or wrong X-CSRF-Token")
                await sessions.end_session(conn, cookie)
    answer = Response(status_code=204)
    answer.delete_cookie(sessions.COOKIE, path="/")
    return answer


@pages.get("/console/{relative:path}")
async def console_file(relative: str, request: Request) -> Response:
    return _file(relative, request)


# --- what the pages read -----------------------------------------------------------------------
@lru_cache(maxsize=4)
def _pack(name: str) -> CityPack:
    return load_pack(name)


@lru_cache(maxsize=4)
def _districts(name: str) -> bytes:
    pack = _pack(name)
    features = [
        {
            "type": "Feature",
            "properties": {"code": r.code, "name": r.name},
            "geometry": shapely.geometry.mapping(r.geometry.simplify(0.0005)),
        }
        for r in pack.regions["district"]
    ]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


@lru_cache(maxsize=4)
def _index(name: str) -> GeoIndex:
    return GeoIndex(_pack(name))


def _grid(name: str, west: float, south: float, east: float, north: float) -> bytes:
    index = _index(name)
    grid = index.grid
    r0 = max(0, math.floor((south - grid.lat0) / grid.dlat))
    r1 = min(grid.rows - 1, math.floor((north - grid.lat0) / grid.dlat))
    c0 = max(0, math.floor((west - grid.lon0) / grid.dlon))
    c1 = min(grid.cols - 1, math.floor((east - grid.lon0) / grid.dlon))
    features: list[dict[str, Any]] = []
    for row in range(r0, r1 + 1):
        for col in range(c0, c1 + 1):
            cell = row * grid.cols + col
            if not index.area_state[cell] or len(features) >= MAX_GRID_CELLS:
                continue
            x, y = grid.lon0 + col * grid.dlon, grid.lat0 + row * grid.dlat
            ring = [[x, y], [x + grid.dlon, y], [x + grid.dlon, y + grid.dlat], [x, y + grid.dlat]]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": grid.code(cell)},
                    "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                }
            )
    return orjson.dumps({"type": "FeatureCollection", "features": features})


@lru_cache(maxsize=4)
def _gazetteer(name: str) -> Gazetteer:
    return load_gazetteer(_pack(name))


@router.get("/city/districts")
async def districts(request: Request, who: Caller) -> Response:
    """The city pack's districts as GeoJSON (WGS-84, simplified to ~50 m)."""
    body = await asyncio.to_thread(_districts, request.app.state.settings.city_pack)
    return Response(body, media_type="application/geo+json")


@router.get("/city/grid")
async def grid_cells(
    request: Request,
    who: Caller,
    bbox: Annotated[
        str, Query(pattern=r"^-?\d{1,3}(\.\d+)?(,-?\d{1,3}(\.\d+)?){3}$", description="W,S,E,N")
    ],
) -> Response:
    """The pack's grid cells (the city's management grid, 网格) in a box, as GeoJSON; at
    most 2,500 (the console asks for them only when zoomed in)."""
    west, south, east, north = (float(v) for v in bbox.split(","))
    if east <= west or north <= south:
        raise HTTPException(400, [{"field": "query.bbox", "reason": "west < east, south < north"}])
    name = request.app.state.settings.city_pack
    body = await asyncio.to_thread(_grid, name, west, south, east, north)
    return Response(body, media_type="application/geo+json")


class Place(BaseModel):
    name: str
    kind: str
    district: str
    lon: float
    lat: float


@router.get("/city/places", response_model=list[Place])
async def places(
    request: Request, who: Caller, q: Annotated[str, Query(min_length=1, max_length=50)]
) -> list[Place]:
    """Places of the city's gazetteer and address register whose name holds `q` (to place
    an incident at a register entry), the shortest names first."""
    gazetteer = await asyncio.to_thread(_gazetteer, request.app.state.settings.city_pack)
    found = [e for e in gazetteer.entries if q in e.name and e.lon is not None]
    found.sort(key=lambda e: (len(e.name), e.name))
    return [
        Place(name=e.name, kind=e.kind, district=e.district, lon=e.lon, lat=e.lat)
        for e in found[:20]
        if e.lon is not None and e.lat is not None
    ]


class Department(BaseModel):
    code: str
    name: str


@router.get("/departments", response_model=list[Department])
async def departments(request: Request, who: Caller) -> list[Department]:
    """The departments tasks can go to (for assigning by hand)."""
    names: dict[str, str] = request.app.state.department_names
    return [Department(code=c, name=n) for c, n in sorted(names.items())]


@router.get("/queues/stream", include_in_schema=False)  # endless: no fuzzing, in README
async def queue_stream(request: Request, who: Caller) -> StreamingResponse:
    """The queues' counts as server-sent events (`event: queues`), when they change and at
    least every 30 s."""
    scope = scope_of(who)

    async def events() -> AsyncIterator[bytes]:
        last, quiet = None, 0.0
        while not await request.is_disconnected():
            async with request.app.state.pool.connection() as conn:
                counts = await incident_store.queue_counts(conn, scope)
            if counts != last or quiet >= 30:
                yield b"event: queues\ndata: " + orjson.dumps(counts) + b"\n\n"
                last, quiet = counts, 0.0
            await asyncio.sleep(QUEUE_EVERY_S)
            quiet += QUEUE_EVERY_S

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
