"""The worker's producer: one request waits CITYBRAIN_KAFKA_REQUEST_TIMEOUT for its answer,
while records stay buffered for Faust's producer timeout (a broker outage is waited out)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from citybrain.settings import Settings
from citybrain.streams.app import create_app


@pytest.mark.parametrize(("setting", "expected_ms"), [(None, 30_000), (7.5, 7_500)])
def test_the_producer_client_waits_the_request_timeout_and_records_stay_buffered(
    tmp_path: Path, setting: float | None, expected_ms: int
) -> None:
    given = {} if setting is None else {"kafka_request_timeout": setting}
    app = create_app(Settings(data_dir=tmp_path, app_id="transport-test", **given))

    async def timeouts() -> tuple[int, float]:
        producer = app.producer._new_producer()  # built, never started: no broker needed
        return producer.client._request_timeout_ms, producer._message_accumulator._batch_ttl

    request_ms, buffered_s = asyncio.run(timeouts())
    assert request_ms == expected_ms
    # how long a record may wait for a leader is Faust's producer timeout, not the request's
    assert buffered_s == app.conf.producer_request_timeout == 1200.0
