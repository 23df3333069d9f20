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


ROBOTS = """\
departments:
  - code: ops
    name: 城运中心
    operations_center: true
    supervisor: {name: 值班长}
    channels:
      - kafka: true
      - wecom: {name: ops-wecom, token_env: T_WECOM}
      - dingtalk: {name: ops-ding, token_env: T_DING, secret_env: S_DING, base_url: "http://127.0.0.1:9"}
      - feishu: {name: ops-feishu, token_env: T_FEISHU, language: en}
      - email: {name: ops-mail, to: [duty@city.example, chief@city.example]}
"""


def test_robots_and_mailboxes_are_destinations_with_their_secrets_from_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "departments.yaml").write_text(ROBOTS, encoding="utf-8")
    (tmp_path / "routes.yaml").write_text("route: {lead: ops}\n", encoding="utf-8")
    routing = load_routing(tmp_path / "departments.yaml", tmp_path / "routes.yaml")
    env = {"T_WECOM": "wk", "T_DING": "dt", "S_DING": "SECd", "T_FEISHU": "fh"}
    channels = Channels.of(routing, env)
    assert channels.of_department("ops") == (
        "kafka:dispatch.ops.v1",
        "wecom:ops-wecom",
        "dingtalk:ops-ding",
        "feishu:ops-feishu",
        "email:ops-mail",
    )
    ding = channels.robots["dingtalk:ops-ding"]
    assert (ding.token, ding.secret, ding.base_url) == ("dt", "SECd", "http://127.0.0.1:9")
    assert channels.robots["feishu:ops-feishu"].language == "en"
    assert channels.mailboxes["ops-mail"].to == ("duty@city.example", "chief@city.example")
    assert channels.disabled == ()
    # a token or a signing secret unset: the robot is left out and the variable named
    partial = Channels.of(routing, {"T_WECOM": "wk", "T_DING": "dt"})
    assert partial.of_department("ops") == (
        "kafka:dispatch.ops.v1",
        "wecom:ops-wecom",
        "email:ops-mail",
    )
    assert partial.disabled == (
        "ops/dingtalk:ops-ding (set S_DING)",
        "ops/feishu:ops-feishu (set T_FEISHU)",
    )
