"""Where a department's messages go, and the webhook secrets: read from the process
environment or the .env file like every setting; several secrets while one is rotated."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.dispatch.channels import Channels
from citybrain.dispatch.routing import DEPARTMENTS_FILE, ROUTES_FILE, load_routing
from citybrain.dispatch.webhooks import generate_secret, headers, verify
from citybrain.settings import environment

ROUTING = load_routing(DEPARTMENTS_FILE, ROUTES_FILE)


def test_a_webhook_without_a_secret_is_disabled_and_named() -> None:
    channels = Channels.of(ROUTING, {})
    assert channels.endpoints == {}
    assert any("CITYBRAIN_WEBHOOK_FIRE" in d for d in channels.disabled)
    assert "kafka:dispatch.fire.v1" in channels.of_department("fire")


def test_a_rotating_webhook_signs_with_the_new_and_the_old_secret() -> None:
    new, old = generate_secret(), generate_secret()
    channels = Channels.of(ROUTING, {"CITYBRAIN_WEBHOOK_FIRE": f"{new}, {old}"})
    endpoint = channels.endpoints["fire-119-dispatch"]
    assert endpoint.secret == (new, old)
    signed = headers(endpoint.secret, "msg-1", b"{}", 1_800_000_000)
    for secret in (new, old):  # a receiver on either secret accepts it
        verify(secret, signed, b"{}", now=1_800_000_000)


def test_webhook_secrets_come_from_the_env_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = generate_secret()
    env = tmp_path / ".env"
    env.write_text(f"CITYBRAIN_WEBHOOK_FIRE={secret}\nCITYBRAIN_WEBHOOK_GAS_PUDONG=from-file\n")
    monkeypatch.delenv("CITYBRAIN_WEBHOOK_FIRE", raising=False)
    monkeypatch.setenv("CITYBRAIN_WEBHOOK_GAS_PUDONG", "from-process")
    values = environment(env)
    assert values["CITYBRAIN_WEBHOOK_FIRE"] == secret
    assert values["CITYBRAIN_WEBHOOK_GAS_PUDONG"] == "from-process"  # the process wins
    endpoint = Channels.of(ROUTING, values).endpoints["fire-119-dispatch"]
    assert endpoint.secret == (secret,)
