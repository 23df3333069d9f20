"""deploy/compose.yaml can't be run here (no Docker engine): check it statically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from citybrain.cli import app as cli_app
from citybrain.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def _host_path(spec: str) -> Path | None:
    source = spec.split(":", 1)[0]
    if source.startswith((".", "/")):
        return (COMPOSE.parent / source).resolve()
    return None  # a named volume


def test_every_mounted_path_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            path = _host_path(volume)
            if path is None:
                assert volume.split(":", 1)[0] in named, f"{name}: undeclared volume {volume}"
            else:
                assert path.exists(), f"{name}: mounted path {path} does not exist"


def test_every_build_context_and_dockerfile_exists(compose: dict[str, Any]) -> None:
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    assert builds, "the citybrain image is built from this repository"
    for build in builds:
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context.is_dir()
        assert (context / build["dockerfile"]).is_file()
    dockerfile = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (PROJECT_ROOT / copied).exists(), f"Dockerfile copies missing {copied}"


def test_host_ports_do_not_clash(compose: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            host = ":".join(parts[:-1])
            assert host not in seen, f"{name} and {seen.get(host)} both publish {host}"
            seen[host] = name


def test_dependencies_name_existing_services(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    for name, service in compose["services"].items():
        assert set(service.get("depends_on", {})) <= services, name


def test_citybrain_commands_exist(compose: dict[str, Any]) -> None:
    known = {
        c.name or (c.callback.__name__ if c.callback else "") for c in cli_app.registered_commands
    }
    known |= {g.name for g in cli_app.registered_groups if g.name}
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("citybrain") and "command" in service:
            assert service["command"][0] in known, f"{name}: unknown command {service['command']}"


def test_secrets_are_not_written_into_the_file() -> None:
    text = COMPOSE.read_text()
    for line in text.splitlines():
        if re.search(r"PASSWORD:\s", line):
            assert "${" in line, f"secret must come from the environment: {line.strip()}"


def test_grafana_provisioning_reads_through_the_reader_role() -> None:
    ds = yaml.safe_load(
        (PROJECT_ROOT / "grafana/provisioning/datasources/citybrain.yaml").read_text()
    )
    source = ds["datasources"][0]
    assert source["user"] == "grafana_reader"
    assert source["secureJsonData"]["password"].startswith("${")


def _env(compose: dict[str, Any], service: str) -> dict[str, Any]:
    return dict(compose["services"][service].get("environment") or {})


#: what each citybrain service reads that has no working default in a container
NEEDS = {
    "migrate": {
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS",
        "CITYBRAIN_DB_HOST",
        "CITYBRAIN_DB_PASSWORD",
        "CITYBRAIN_GRAFANA_READER_PASSWORD",  # migrate creates the reader role with it
    },
    "worker": {
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS",
        "CITYBRAIN_DB_HOST",
        "CITYBRAIN_DB_PASSWORD",
        "CITYBRAIN_METRICS_HOST",  # 127.0.0.1 inside a container is unreachable
        "CITYBRAIN_WORKER_WEB_HOST",
    },
    "worker-telemetry": {
        "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS",
        "CITYBRAIN_DB_HOST",
        "CITYBRAIN_DB_PASSWORD",
        "CITYBRAIN_METRICS_HOST",
        "CITYBRAIN_WORKER_WEB_HOST",
        "CITYBRAIN_WORKER_ROLE",
    },
    "api": {"CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS", "CITYBRAIN_DB_HOST", "CITYBRAIN_DB_PASSWORD"},
}


def test_the_recommended_deployment_gives_the_bulk_less_cpu(compose: dict[str, Any]) -> None:
    """Two workers, one per role; the telemetry one with the smaller CPU weight (a
    container's cgroup: niceness would not count across containers)."""
    reports, telemetry = compose["services"]["worker"], compose["services"]["worker-telemetry"]
    assert _env(compose, "worker")["CITYBRAIN_WORKER_ROLE"] == "reports"
    assert _env(compose, "worker-telemetry")["CITYBRAIN_WORKER_ROLE"] == "telemetry"
    assert telemetry["cpu_shares"] < reports["cpu_shares"]


@pytest.mark.parametrize("service", sorted(NEEDS))
def test_each_service_gets_the_variables_it_needs(compose: dict[str, Any], service: str) -> None:
    missing = NEEDS[service] - set(_env(compose, service))
    assert not missing, f"{service} lacks {sorted(missing)}"


def test_the_reader_password_is_the_same_variable_for_migrate_and_grafana(
    compose: dict[str, Any],
) -> None:
    assert (
        _env(compose, "migrate")["CITYBRAIN_GRAFANA_READER_PASSWORD"]
        == _env(compose, "grafana")["CITYBRAIN_GRAFANA_READER_PASSWORD"]
    )


def test_the_worker_gets_every_webhook_secret_the_departments_name(
    compose: dict[str, Any],
) -> None:
    from citybrain.dispatch.routing import DEPARTMENTS_FILE, ROUTES_FILE, load_routing

    routing = load_routing(DEPARTMENTS_FILE, ROUTES_FILE)
    named = {
        c.webhook.secret_env
        for d in routing.by_code.values()
        for c in d.channels
        if c.webhook is not None
    }
    assert named
    assert not named - set(_env(compose, "worker")), "webhook secrets not passed to the worker"


def test_the_worker_binds_every_interface_and_publishes_on_loopback(
    compose: dict[str, Any],
) -> None:
    env = _env(compose, "worker")
    assert env["CITYBRAIN_METRICS_HOST"] == env["CITYBRAIN_WORKER_WEB_HOST"] == "0.0.0.0"  # noqa: S104
    ports = compose["services"]["worker"]["ports"]
    assert {"127.0.0.1:9108:9108", "127.0.0.1:6066:6066"} <= set(ports)
