"""HTTP ingestion's throughput (`citybrain bench ingest`): one `citybrain api` process on a
free port, an ingest token, and a few client connections POSTing JSON-lines batches of
streetlight-shaped records (each with its own id) for a fixed time; the records/s the API
acknowledged (202) and the requests' latency percentiles.

The feed is a copy of the built-in streetlight feed that reads a scratch topic of its own
(`raw.bench.ingest`, in a folder given to the API as CITYBRAIN_FEEDS_DIR): no worker reads
it, and the suite's workers never replay the bench's records."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from citybrain.feeds.definition import BUILTIN_DIR
from citybrain.settings import Settings
from citybrain_tools.bench.proc import cpu_seconds, free_port, profiler_prefix, rss_mib, stop_signal
from citybrain_tools.bench.report import percentile

FEED = "bench-ingest"
TOPIC = "raw.bench.ingest"
#: a lamp event as the streetlight platform sends it (`feeds/builtin/streetlight.yaml`)
TEMPLATE = (
    b'{"lampId":"SL-BENCH-%s-%d","eventCode":"LAMP_OFF","eventTime":"%s",'
    b'"gps":{"lon":121.5142,"lat":31.3012},"circuit":"BENCH-C1","powerW":0}'
)
#: records/s one API process should acknowledge
TARGET_PER_S = 10_000


@dataclass
class IngestResult:
    records_per_s: float
    requests_per_s: float
    records: int
    requests: int
    seconds: float
    batch: int
    connections: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    api_cpu_per_s: float  # CPU seconds the API process used per second of the run
    api_rss_mib: float
    failed: dict[str, int] = field(default_factory=dict)  # status (or error) -> requests


def as_dict(result: IngestResult) -> dict[str, Any]:
    data = asdict(result)
    for name, value in data.items():
        if isinstance(value, float):
            data[name] = round(value, 1)
    return data


def feed_folder(folder: Path | None = None) -> Path:
    """A folder (new, unless given) holding the streetlight feed's copy that reads the
    scratch topic."""
    folder = folder or Path(tempfile.mkdtemp(prefix="citybrain-bench-ingest-"))
    text = (BUILTIN_DIR / "streetlight.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("feed: streetlight", f"feed: {FEED}")
        .replace("topic: raw.iot.streetlight", f"topic: {TOPIC}")
        .replace("samples: samples/streetlight.jsonl", "")
    )
    (folder / f"{FEED}.yaml").write_text(text, encoding="utf-8")
    return folder


def batch_body(run: bytes, first: int, n: int, at: bytes) -> bytes:
    """JSON lines of `n` lamp events with ids `first`..`first + n`."""
    return b"\n".join(TEMPLATE % (run, i, at) for i in range(first, first + n))


def start_api(settings: Settings, folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`citybrain api` on `port`, its rate limit out of the way; returns once it answers."""
    env = {
        **os.environ,
        "CITYBRAIN_FEEDS_DIR": str(folder),
        "CITYBRAIN_INGEST_RATE": "1000000",
        "CITYBRAIN_INGEST_BURST": "1000000",
        "CITYBRAIN_LOG_LEVEL": "WARNING",
    }
    command = [*profiler_prefix("api"), "-m", "citybrain.cli", "api", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"citybrain api exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"citybrain api did not answer on port {port} within 60 s")


async def _clients(
    url: str, token: str, batch: int, connections: int, seconds: float, warmup: float
) -> tuple[int, int, list[float], dict[str, int], float]:
    """(records acknowledged, requests, latencies in s, failures, measured seconds) of
    `connections` clients POSTing for `warmup` + `seconds` (the warm-up not counted)."""
    import aiohttp

    run = os.urandom(4).hex().encode()
    records = requests = 0
    latencies: list[float] = []
    failed: dict[str, int] = {}
    counter = 0
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal records, requests, counter
        while time.perf_counter() < stop_at:
            first, counter = counter, counter + batch
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()
            body = batch_body(run, first, batch, at)
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    status = str(answer.status)
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            done = time.perf_counter()
            if sent < measure_from or done > stop_at:
                continue
            if status == "202":
                records += batch
                requests += 1
                latencies.append(done - sent)
            else:
                failed[status] = failed.get(status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(connections)))
    return records, requests, latencies, failed, seconds


def run_ingest_bench(
    settings: Settings,
    seconds: float = 20.0,
    batch: int = 1000,
    connections: int = 4,
    warmup: float = 3.0,
) -> IngestResult:
    """Start the API, make a token, load it for `seconds` (after `warmup`), stop it."""
    from citybrain.api.ingest_store import revoke_ingest_token, store_ingest_token
    from citybrain.api.tokens import new_token
    from citybrain.db.connect import connect
    from citybrain_tools.kafka import ensure_topic

    ensure_topic(settings, TOPIC, partitions=settings.topic_partitions)
    folder = feed_folder()
    port = free_port()
    proc = start_api(settings, folder, port, folder / "api.log")
    token = new_token()
    try:
        with connect(settings) as conn:
            store_ingest_token(conn, token, FEED, "citybrain bench ingest", rotate=True)
        cpu_before, clock_before = cpu_seconds(proc.pid), time.perf_counter()
        records, requests, latencies, failed, measured = asyncio.run(
            _clients(
                f"http://127.0.0.1:{port}/ingest/v1/{FEED}",
                token.plain,
                batch,
                connections,
                seconds,
                warmup,
            )
        )
        cpu = (cpu_seconds(proc.pid) - cpu_before) / (time.perf_counter() - clock_before)
        rss = rss_mib(proc.pid)
    finally:
        proc.send_signal(stop_signal())
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        with connect(settings) as conn:
            revoke_ingest_token(conn, token.token_id)
        shutil.rmtree(folder, ignore_errors=True)
    ms = [x * 1000 for x in latencies]
    return IngestResult(
        records_per_s=records / measured,
        requests_per_s=requests / measured,
        records=records,
        requests=requests,
        seconds=measured,
        batch=batch,
        connections=connections,
        latency_p50_ms=percentile(ms, 50),
        latency_p95_ms=percentile(ms, 95),
        latency_p99_ms=percentile(ms, 99),
        latency_max_ms=max(ms, default=0.0),
        api_cpu_per_s=cpu,
        api_rss_mib=rss,
        failed=failed,
    )
