"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis): no
generated request, valid or not, gets a 5xx. Runs against a real server on the real
database and broker, as the operations center (every task route is reachable)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration
EXAMPLES = 30  # per operation; raise locally for a longer run


@pytest.fixture(scope="module")
def server(stack: Settings) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(stack.model_copy(update={"api_rate": 1000.0, "api_burst": 1000.0})),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert instance.started
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def token(stack: Settings) -> str:
    import psycopg

    t = new_token()
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        store_token(conn, t, "operations", None, "fuzz", rotate=False)
    return t.plain


def test_no_generated_request_gets_a_server_error(server: str, token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    client = httpx.Client(timeout=10)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            # sent with httpx: grafana-client's urllib3-future breaks the requests transport
            kwargs = case.as_transport_kwargs(
                base_url=server, headers={"Authorization": f"Bearer {token}"}
            )
            kwargs.pop("allow_redirects", None)
            kwargs.pop("verify", None)
            response = client.request(**kwargs)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        run()
    assert not failures, "\n".join(failures[:20])
    assert len(calls) >= 5 * len(operations)  # the fuzzer really ran
    print(f"{len(calls)} generated requests over {len(operations)} operations, no 5xx")
