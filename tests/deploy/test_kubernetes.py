"""deploy/kubernetes can't be applied here (no cluster, no kustomize): every YAML document
is validated offline against the Kubernetes OpenAPI schemas `kubernetes-validate` ships
(strict: an unknown field fails), the base and each overlay are rendered by a small
renderer of the kustomize features they use (`tests/deploy/kustomize.py`) and validated
as rendered, and the settings, ports and probes are checked against citybrain's own."""

from __future__ import annotations

import fnmatch
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from citybrain.settings import PROJECT_ROOT, Settings
from tests.deploy import kustomize
from tests.deploy.kustomize import KUSTOMIZATION, Object, containers, load_documents, pod_spec

#: the Kubernetes release whose schemas the manifests are checked against
KUBERNETES = "1.31"
ROOT = PROJECT_ROOT / "deploy" / "kubernetes"
BASE = ROOT / "base"
OVERLAYS = sorted(p for p in (ROOT / "overlays").iterdir() if p.is_dir())
BUILDS = [BASE, *OVERLAYS]
PREFIX = str(Settings.model_config.get("env_prefix", ""))
WORKERS = {"citybrain-worker-reports": "reports", "citybrain-worker-telemetry": "telemetry"}
SECRET = "citybrain-secrets"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach the network (the schemas are the package's own files)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access in an offline test: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def kustomizations() -> list[Path]:
    return sorted(p.parent for p in ROOT.rglob(KUSTOMIZATION))


def referenced_files(folder: Path) -> dict[str, list[Path]]:
    spec = kustomize.kustomization(folder)
    return {
        "resources": [folder / r for r in spec.get("resources", [])],
        "patches": [folder / p["path"] for p in spec.get("patches", [])],
        "envs": [folder / e for g in spec.get("secretGenerator", []) for e in g.get("envs", [])],
    }


def manifest_files() -> list[Path]:
    """Every file listed as a resource (full objects, validated as they are)."""
    return sorted(
        p for f in kustomizations() for p in referenced_files(f)["resources"] if p.is_file()
    )


def documents() -> Iterator[Any]:
    for path in manifest_files():
        for i, doc in enumerate(load_documents(path)):
            yield pytest.param(doc, id=f"{rel(path)}#{i}:{doc['kind']}")


def rendered() -> Iterator[Any]:
    for build in BUILDS:
        for obj in kustomize.render(build):
            yield pytest.param(obj, id=f"{rel(build)}:{obj['kind']}/{obj['metadata']['name']}")


def validate(obj: Object) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise AssertionError(
            f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}"
        ) from None


# --- the files ---------------------------------------------------------------------------------
def test_there_is_a_base_and_an_example_overlay() -> None:
    assert kustomizations() == [BASE, ROOT / "overlays" / "example"]


@pytest.mark.parametrize("folder", kustomizations(), ids=rel)
def test_a_kustomization_references_only_files_that_exist(folder: Path) -> None:
    refs = referenced_files(folder)
    for path in refs["resources"]:
        assert path.is_file() or (path / KUSTOMIZATION).is_file(), f"{rel(path)} is missing"
    for path in refs["patches"]:
        assert path.is_file(), f"{rel(path)} is missing"
    for path in refs["envs"]:  # git-ignored: its committed example stands for it
        assert kustomize.env_file(path).is_file(), f"neither {rel(path)} nor its .example"


def test_every_yaml_file_is_a_kustomization_or_referenced_by_one() -> None:
    """So that every document under deploy/kubernetes is validated (below)."""
    used = {
        p.resolve()
        for f in kustomizations()
        for k in ("resources", "patches")
        for p in referenced_files(f)[k]
    }
    assert not list(ROOT.rglob("*.yml")), "name YAML files *.yaml"
    for path in sorted(ROOT.rglob("*.yaml")):
        assert path.name == KUSTOMIZATION or path.resolve() in used, f"{rel(path)} is not used"


def test_no_secret_is_committed_and_the_generators_env_files_are_git_ignored() -> None:
    for path in ROOT.rglob("*.yaml"):
        if path.name != KUSTOMIZATION:
            assert all(d["kind"] != "Secret" for d in load_documents(path)), rel(path)
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    envs = [p for f in kustomizations() for p in referenced_files(f)["envs"]]
    assert envs, "the example overlay generates the Secret from an env file"
    for path in envs:
        assert any(fnmatch.fnmatch(rel(path), pattern) for pattern in ignored), rel(path)


# --- the schemas -------------------------------------------------------------------------------
@pytest.mark.parametrize("doc", documents())
def test_every_document_is_a_valid_kubernetes_object(doc: Object) -> None:
    validate(doc)


@pytest.mark.parametrize("obj", rendered())
def test_every_rendered_object_is_a_valid_kubernetes_object(obj: Object) -> None:
    validate(obj)


def test_the_schemas_reject_an_unknown_field_and_a_wrong_type() -> None:
    """The validation above is not vacuous: strict schemas, offline."""
    deployment = next(o for o in kustomize.render(BASE) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(AssertionError, match="readinesProbe"):
        validate(deployment)
    deployment = next(o for o in kustomize.render(BASE) if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(AssertionError, match="not of type"):
        validate(deployment)


# --- the settings ------------------------------------------------------------------------------
def setting_names() -> set[str]:
    return {PREFIX + name.upper() for name in Settings.model_fields}


def webhook_secret_names(settings: Settings) -> set[str]:
    """The variables the departments' webhooks read their secrets from (departments.yaml
    `secret_env`, read by name at run time: `citybrain.settings.environment`)."""
    from citybrain.dispatch.routing import dispatch_files, load_routing

    routing = load_routing(*dispatch_files(settings))
    return {
        c.webhook.secret_env
        for d in routing.by_code.values()
        for c in d.channels
        if c.webhook is not None
    }


def env_names_in_manifests() -> dict[str, set[str]]:
    """Every `CITYBRAIN_*` name in the manifests and the secret examples, with where."""
    found: dict[str, set[str]] = {}

    def note(name: str, where: str) -> None:
        if name.startswith(PREFIX):
            found.setdefault(name, set()).add(where)

    for build in BUILDS:
        for obj in kustomize.render(build):
            where = f"{rel(build)}:{obj['kind']}/{obj['metadata']['name']}"
            if obj["kind"] == "ConfigMap":
                for name in obj.get("data", {}):
                    note(name, where)
        for container in containers(kustomize.render(build)):
            for var in container.get("env", []):
                note(var["name"], where)
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    note(ref["key"], where)
    for folder in kustomizations():
        for path in referenced_files(folder)["envs"]:
            example = kustomize.env_file(path)
            for name in re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example.read_text(), re.M):
                note(name, rel(example))
    return found


def test_every_citybrain_variable_in_the_manifests_is_a_setting() -> None:
    """A setting's field, or a webhook secret a shipped departments file names."""
    known = setting_names()
    for pack in ("shanghai", "guiyang"):
        known |= webhook_secret_names(Settings(city_pack=pack))
    names = env_names_in_manifests()
    assert len(names) >= 10
    unknown = {name: sorted(where) for name, where in names.items() if name not in known}
    assert not unknown, f"not settings: {unknown}"


def test_the_secret_keys_the_manifests_need_are_in_the_example() -> None:
    needed = set()
    for obj in kustomize.render(BASE):
        spec = pod_spec(obj)
        for container in spec["containers"] if spec else []:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET
                    if not ref.get("optional"):
                        needed.add(ref["key"])
    assert {"CITYBRAIN_DB_PASSWORD", "CITYBRAIN_GRAFANA_READER_PASSWORD"} <= needed
    for folder in OVERLAYS:
        for path in referenced_files(folder)["envs"]:
            assert needed <= set(kustomize.read_env(kustomize.env_file(path))), rel(path)


def container_settings(
    objects: list[Object], obj: Object, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The settings the object's container reads: its ConfigMaps' data, then its own
    `env` (values only: a secret reference stays unset), as the container would."""
    spec = pod_spec(obj)
    assert spec is not None
    (container,) = spec["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env |= kustomize.find(objects, "ConfigMap", name)["data"]
    env |= {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    for name in list(setting_names()):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def port_number(container: Object, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


@pytest.fixture(params=BUILDS, ids=rel)
def objects(request: pytest.FixtureRequest) -> list[Object]:
    return kustomize.render(request.param)


def test_the_workers_probes_and_ports_are_the_settings(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, role in WORKERS.items():
        obj = kustomize.find(objects, "Deployment", name)
        s = container_settings(objects, obj, monkeypatch)
        container = obj["spec"]["template"]["spec"]["containers"][0]
        assert s.worker_role == role
        assert s.worker_web_host == s.metrics_host == "0.0.0.0"  # noqa: S104
        probes = {
            k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert [p["path"] for p in probes.values()] == ["/healthz", "/healthz", "/readyz"]
        for probe in probes.values():
            assert port_number(container, probe["port"]) == s.worker_web_port, name
        assert port_number(container, "metrics") == s.metrics_port, name
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == s.metrics_port, name
        assert annotations["prometheus.io/path"] == "/metrics"


def test_the_api_probes_ports_and_service_are_the_settings(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = kustomize.find(objects, "Deployment", "citybrain-api")
    s = container_settings(objects, obj, monkeypatch)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert s.api_host == "0.0.0.0"  # noqa: S104
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert port_number(container, container[probe]["httpGet"]["port"]) == s.api_port
    annotations = obj["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == s.api_port
    service = kustomize.find(objects, "Service", "citybrain-api")
    assert (
        service["spec"]["selector"].items() <= obj["spec"]["template"]["metadata"]["labels"].items()
    )
    for port in service["spec"]["ports"]:
        assert port_number(container, port["targetPort"]) == s.api_port


def test_the_probed_paths_are_the_ones_served(tmp_path: Path) -> None:
    from citybrain.api.app import create_app
    from citybrain.worker import build_worker

    worker = build_worker(Settings(data_dir=tmp_path, app_id="k8s-test"), "ping")
    assert {"/healthz", "/readyz"} <= set(worker.app.web.views)
    api = {getattr(route, "path", None) for route in create_app(Settings()).routes}
    assert {"/healthz", "/readyz", "/metrics"} <= api


def test_the_roles_give_the_workers_their_own_consumer_groups(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The telemetry worker's group is derived by its role, never set by hand."""
    apps = {}
    for name in WORKERS:
        obj = kustomize.find(objects, "Deployment", name)
        container = obj["spec"]["template"]["spec"]["containers"][0]
        assert "CITYBRAIN_APP_ID" not in {v["name"] for v in container.get("env", [])}
        apps[name] = container_settings(objects, obj, monkeypatch).app_id
    telemetry, reports = apps["citybrain-worker-telemetry"], apps["citybrain-worker-reports"]
    assert telemetry == reports + "-telemetry"


def test_the_liveness_probe_leaves_a_stall_to_the_watchdog_first(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in WORKERS:
        obj = kustomize.find(objects, "Deployment", name)
        s = container_settings(objects, obj, monkeypatch)
        probe = obj["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] > s.stall_timeout > 0
        grace = obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > s.stall_timeout  # a hanging stop is ended by the watchdog first


def test_the_reports_worker_gets_every_webhook_secret_its_city_names(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = kustomize.find(objects, "Deployment", "citybrain-worker-reports")
    s = container_settings(objects, obj, monkeypatch)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert webhook_secret_names(s) <= {v["name"] for v in container["env"]}


# --- how the pods run --------------------------------------------------------------------------
def image_uid() -> int:
    dockerfile = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
    return int(re.search(r"--uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]


def test_every_pod_runs_unprivileged_on_a_read_only_root(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        # a Service's variables (CITYBRAIN_API_PORT=tcp://...) would collide with settings
        assert spec["enableServiceLinks"] is False, obj["metadata"]["name"]
        # the image's USER is a name, which the kubelet cannot check for non-root
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == image_uid()
        s = container_settings(objects, obj, monkeypatch)
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts  # noqa: S108
            if container["args"] == ["worker"]:  # Faust's folder, the watchdog's records
                assert str(s.data_dir) in mounts, obj["metadata"]["name"]


def test_every_container_runs_a_citybrain_command() -> None:
    from citybrain.cli import app as cli_app

    known = {
        c.name or (c.callback.__name__ if c.callback else "") for c in cli_app.registered_commands
    }
    known |= {g.name for g in cli_app.registered_groups if g.name}
    for container in containers(kustomize.render(BASE)):
        assert container["args"][0] in known, container["args"]


def quantity_mib(value: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    number, unit = re.fullmatch(r"([\d.]+)(Ki|Mi|Gi)", value).groups()  # type: ignore[union-attr]
    return float(number) * units[unit]


def test_the_workers_memory_requests_cover_the_measured_rss() -> None:
    """The README's benchmark table gives the largest worker's RSS of each run."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if "worker RSS (largest)" in line)
    measured = max(float(m) for m in re.findall(r"([\d.]+) MiB", row))
    assert measured > 100
    for name in WORKERS:
        obj = kustomize.find(kustomize.render(BASE), "Deployment", name)
        resources = obj["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert quantity_mib(resources["requests"]["memory"]) >= measured * 1.2, name
        assert quantity_mib(resources["limits"]["memory"]) >= 2 * measured, name


def test_the_reports_worker_is_never_cpu_throttled_and_the_bulk_is_bounded() -> None:
    objects = kustomize.render(BASE)
    reports, telemetry = (
        kustomize.find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        for name in WORKERS
    )
    assert "cpu" not in reports["resources"]["limits"]
    assert "cpu" in telemetry["resources"]["limits"]


def test_one_mqtt_bridge_never_two_and_its_metrics_port_is_the_settings(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its client id names one persistent session: one replica, the old one stopped before
    the new one starts."""
    obj = kustomize.find(objects, "Deployment", "citybrain-bridge-mqtt")
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["strategy"]["type"] == "Recreate"
    s = container_settings(objects, obj, monkeypatch)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["bridge", "mqtt"]
    assert s.bridge_metrics_host == "0.0.0.0"  # noqa: S104
    assert port_number(container, container["livenessProbe"]["httpGet"]["port"]) == (
        s.bridge_metrics_port
    )
    annotations = obj["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == s.bridge_metrics_port


# --- the overlays ------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS, ids=rel)
def test_an_overlay_names_its_namespace_image_and_city(
    overlay: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = kustomize.render(overlay)
    namespaces = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespaces[0], obj["metadata"]["name"]
    for container in containers(objects):
        name, _, tag = container["image"].rpartition(":")
        assert "/" in name and tag and tag != "latest", container["image"]
    telemetry = kustomize.find(objects, "Deployment", "citybrain-worker-telemetry")
    s = container_settings(objects, telemetry, monkeypatch)
    assert s.city_pack != Settings.model_fields["city_pack"].default  # the patch applied
    # more telemetry workers than partitions would idle
    assert 1 <= telemetry["spec"]["replicas"] <= s.topic_partitions
    assert kustomize.find(objects, "Secret", SECRET)["data"]
