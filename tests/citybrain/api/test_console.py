"""The console's parts on a real `citybrain api` and database: the session cookie is
HttpOnly and SameSite=Strict, a change without the CSRF token is refused, sign-out revokes
the session; the map's GCJ-02 shift, run in Debian's chromium (driven by Playwright),
agrees with the platform's. The fixtures here (the API, the browser, a signed-in screen)
serve the end-to-end console test too (`tests/agents/test_console.py`)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.geo.crs import wgs84_to_gcj02
from citybrain.settings import PROJECT_ROOT, Settings
from tests.conftest import VENV_BIN, free_port, wait_for

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
#: flags for a closed network: no background connections, no sandbox as root
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = PROJECT_ROOT / "test-output" / "console"


@pytest.fixture(scope="module")
def api_url(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`citybrain api` as users run it, on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {**os.environ, "CITYBRAIN_API_PORT": str(port), "CITYBRAIN_API_RATE": "200"}
    proc = subprocess.Popen(
        [str(VENV_BIN / "citybrain"), "api"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(up, 60), log.read_text(errors="replace")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def tokens(stack: Settings) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    out = {}
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        for who, role, department, label in (
            ("operations", "operations", None, f"值班长 张敏 {run}"),
            ("municipal", "department", "municipal", f"市政 李工 {run}"),
            ("open311", "open311", None, f"市民 App {run}"),
        ):
            token = new_token()
            store_token(conn, token, role, department, label, rotate=False)  # type: ignore[arg-type]
            out[who] = token.plain
    return out


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Screen:
    """A signed-in person's browser tab; every page it shows is photographed."""

    def __init__(self, browser: Any, url: str, token: str, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        self.page = self.context.new_page()
        self.errors: list[str] = []  # the page's own: exceptions in its script
        self.refused: list[str] = []  # answers the browser logs as errors (403, 404...)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console", lambda m: self.refused.append(m.text) if m.type == "error" else None
        )
        self.page.on("dialog", lambda d: d.accept("值班长核实 / checked"))
        self.url, self.name, self.shots = url, name, 0
        self.page.goto(f"{url}/console/")
        self.page.fill("#token", token)
        self.page.click("#signin")
        self.page.wait_for_selector("#nav a")

    def go(self, hash_: str, ready: str) -> None:
        """Open a page afresh (a hash change alone would leave the old page's content up
        while the new one loads)."""
        self.page.goto(f"{self.url}/console/{hash_}")
        self.page.reload()
        self.page.wait_for_selector(ready)

    def shot(self, what: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.wait_for_timeout(400)  # tiles of the districts, countdowns
        self.page.screenshot(path=str(SHOTS / f"{self.name}-{self.shots:02d}-{what}.png"))

    def until(self, check: Any, hash_: str, ready: str, timeout: float = 90) -> None:
        """Reload the page until `check(page)` holds (the pipeline works in the background)."""

        def again() -> bool:
            self.go(hash_, ready)
            return bool(check(self.page))

        assert wait_for(again, timeout, interval=2), self.page.content()[:3000]


def test_the_session_cookie_and_csrf(api_url: str, tokens: dict[str, str]) -> None:
    with httpx.Client(base_url=api_url) as client:
        assert client.post("/console/session", json={"token": "cbt_nope"}).status_code == 401
        signed = client.post("/console/session", json={"token": tokens["operations"]})
        assert signed.status_code == 200
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        csrf = signed.json()["csrf_token"]
        assert client.get("/api/v1/queues").status_code == 200  # the cookie alone reads
        body = {"reason": "x"}
        no_csrf = client.post("/api/v1/incidents/inc-none/reopen", json=body)
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
        with_csrf = client.post(
            "/api/v1/incidents/inc-none/reopen", json=body, headers={"X-CSRF-Token": csrf}
        )
        assert with_csrf.status_code == 404  # past the CSRF check: no such incident
        assert client.post("/console/session/end").status_code == 403  # CSRF needed here too
        ended = client.post("/console/session/end", headers={"X-CSRF-Token": csrf})
        assert ended.status_code == 204
        client.cookies.set("citybrain_session", cookie.split(";")[0].split("=", 1)[1])
        assert client.get("/api/v1/queues").status_code == 401  # a revoked session


def test_the_map_shifts_data_onto_gcj02_tiles_as_the_platform_does(
    api_url: str, browser: Any
) -> None:
    """The console's WGS-84 -> GCJ-02 shift (for Chinese tile servers) and its inverse agree
    with `citybrain.geo.crs` to a centimetre, run in the browser."""
    points = [(121.4737, 31.2304), (106.6302, 26.6477), (120.3826, 36.0671), (116.39, 39.9)]
    page = browser.new_page()
    page.goto(f"{api_url}/console/")
    shifted = page.evaluate(
        """async (points) => {
            const geo = await import('/console/geo.js');
            const there = ([x, y]) => geo.wgsToGcj(x, y);
            return points.map((p) => [there(p), geo.gcjToWgs(...there(p))]);
        }""",
        points,
    )
    lon, lat = wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points])
    for (gcj, back), x, y, (wx, wy) in zip(shifted, lon, lat, points, strict=True):
        assert abs(gcj[0] - x) < 1e-7 and abs(gcj[1] - y) < 1e-7  # ~1 cm
        assert abs(back[0] - wx) < 1e-7 and abs(back[1] - wy) < 1e-7
        assert abs(gcj[0] - wx) > 1e-3  # a real shift (hundreds of metres), not identity


def test_the_city_layers_the_map_reads(api_url: str, tokens: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {tokens['operations']}"}
    with httpx.Client(base_url=api_url, headers=auth, timeout=30) as client:
        districts = client.get("/api/v1/city/districts").json()
        assert len(districts["features"]) == 16  # Shanghai's districts
        cells = client.get("/api/v1/city/grid", params={"bbox": "121.50,31.22,121.52,31.24"})
        assert cells.status_code == 200
        codes = [f["properties"]["code"] for f in cells.json()["features"]]
        assert 10 <= len(codes) <= 40 and len(set(codes)) == len(codes)  # 500 m cells
        # a bbox that is not four numbers (the fuzz test found "36.6.2" got a 500)
        for bad in ("1,2,3,36.6.2", "121.52,31.22,121.50,31.24", "a,b,c,d"):
            answer = client.get("/api/v1/city/grid", params={"bbox": bad})
            assert answer.status_code == 400, (bad, answer.text)
        places = client.get("/api/v1/city/places", params={"q": "世纪大道"}).json()
        assert places and all("世纪大道" in p["name"] and p["district"] for p in places)
