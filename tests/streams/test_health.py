"""The worker's probes served by its Faust web app (aiohttp, in process): `/healthz` and
`/readyz` answer, name the check that failed, and never hang. No broker and no database
are started: the database is a port nothing listens on and the producer is not started,
which is what an unready worker meets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from citybrain.probes import readiness
from citybrain.settings import Settings
from citybrain.streams.health import database_answers, stall_of
from citybrain.streams.watchdog import Stall, Watchdog
from citybrain.worker import build_worker
from tests.conftest import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, app_id="health-test", db_host="127.0.0.1", db_port=free_port()
    )


async def get(worker_settings: Settings, path: str, watchdog: Watchdog | None = None) -> Any:
    worker = build_worker(worker_settings, "ping")
    if watchdog is not None:
        worker.app.watchdog = watchdog
    web_app = await worker.app.web.wsgi()
    async with TestClient(TestServer(web_app)) as client:
        answer = await client.get(path)
        return answer.status, await answer.json()


def test_healthz_answers_from_the_event_loop(tmp_path: Path) -> None:
    status, body = asyncio.run(get(settings(tmp_path), "/healthz"))
    assert (status, body) == (
        200,
        {"status": "alive", "checks": {"event_loop": "ok", "watchdog": "ok"}},
    )


def test_healthz_fails_when_a_phase_waits_past_the_stall_timeout(tmp_path: Path) -> None:
    clock = Clock()
    watchdog = Watchdog(60.0, clock=clock, exit=lambda status: None)
    watchdog.begin("revoke")
    clock.now += 75.0
    status, body = asyncio.run(get(settings(tmp_path), "/healthz", watchdog))
    assert status == 503
    assert body["checks"]["watchdog"].startswith("stalled in revoke: 75s")


def test_readyz_names_the_database_and_the_broker_that_do_not_answer(tmp_path: Path) -> None:
    started = time.monotonic()
    status, body = asyncio.run(get(settings(tmp_path), "/readyz"))
    assert status == 503
    assert body["status"] == "not ready"
    assert set(body["checks"]) == {"database", "kafka"}
    assert "OperationalError" in body["checks"]["database"]
    assert body["checks"]["kafka"] == "RuntimeError: the producer has not started"
    assert time.monotonic() - started < 15


def test_a_database_that_never_answers_fails_the_probe_within_its_timeout() -> None:
    """A server that accepts the connection and says nothing (a hung database): the
    readiness probe ends the wait at its timeout and says so."""

    async def probe_silent_server() -> tuple[dict[str, str], float]:
        held: list[asyncio.StreamWriter] = []

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # read nothing, answer nothing

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        silent = Settings(db_host="127.0.0.1", db_port=server.sockets[0].getsockname()[1])

        async def database() -> None:
            await database_answers(silent)

        started = time.monotonic()
        verdict = await readiness({"database": database}, timeout=0.5)
        took = time.monotonic() - started
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
        return verdict.checks, took

    checks, took = asyncio.run(probe_silent_server())
    assert checks == {"database": "no answer within 0.5s"}
    assert took < 2.0


def test_the_stall_the_watchdog_acted_on_is_reported() -> None:
    watchdog = Watchdog(60.0, exit=lambda status: None)
    assert stall_of(watchdog) is None
    watchdog.stalled = Stall("event_loop", 61.0)
    assert stall_of(watchdog) == ("event_loop", 61.0)
    assert stall_of(Watchdog(0.0)) is None  # off
    assert stall_of(None) is None
