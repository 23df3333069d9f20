"""The API's operational side without the stack: docs served from local files (nothing
from a CDN), metrics per route template, readiness that names what does not answer, and
the Open311 POST rate limit."""

from __future__ import annotations

import asyncio
import re

from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.ops import readiness
from citybrain.settings import Settings


def client(**settings: object) -> TestClient:
    # no `with`: the lifespan (database pool, Kafka producer) is not started
    return TestClient(create_app(Settings(**settings)))  # type: ignore[arg-type]


def test_the_docs_page_loads_nothing_from_another_host() -> None:
    c = client()
    page = c.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        asset = c.get(url)
        assert asset.status_code == 200, url
    assert c.get("/docs/assets/swagger-ui-bundle.js").content.startswith(b"/*")
    assert c.get("/docs/assets/../app.py").status_code == 404
    assert c.get("/redoc").status_code == 404  # redoc would load its bundle from a CDN


def test_metrics_count_requests_by_route_template_not_by_id() -> None:
    c = client()
    for dispatch_id in ("dsp-1", "dsp-2"):
        assert c.get(f"/api/v1/tasks/{dispatch_id}").status_code == 401
    text = c.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("citybrain_api_requests_total{")
        and 'route="/api/v1/tasks/{dispatch_id}"' in line
        and 'status="401"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2
    assert "dsp-1" not in text


def test_readiness_names_what_does_not_answer() -> None:
    async def ok() -> None:
        return None

    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    async def hangs() -> None:
        await asyncio.sleep(10)

    good = asyncio.run(readiness({"database": ok, "kafka": ok}))
    assert good.status_code == 200
    bad = asyncio.run(readiness({"database": refused, "kafka": hangs}, timeout=0.1))
    assert bad.status_code == 503
    body = bad.body.decode()
    assert "ConnectionRefusedError" in body and "no answer within 0.1s" in body


def test_open311_posts_over_the_rate_get_429_with_retry_after() -> None:
    c = client(api_rate=0.01, api_burst=2)
    answers = [
        c.post("/open311/v2/requests.json", data={"api_key": "not-a-key", "service_code": "x"})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert answers[2].json() == [{"code": 429, "description": "too many requests"}]
    assert int(answers[2].headers["retry-after"]) >= 1
