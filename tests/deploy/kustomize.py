"""A small renderer of the kustomize features deploy/kubernetes uses, for the tests (there
is no kustomize binary here): resources (files and folders), namespace, images,
replicas, strategic-merge patches of maps, and secretGenerator from env files.

It refuses what it does not know (a key of kustomization.yaml, a list in a patch) rather
than render something kustomize would not. Two differences, on purpose: a generated
Secret keeps its name (kustomize adds a content hash to the name and to every reference
alike), and a git-ignored env file is read from its committed `.example`.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
KNOWN_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "replicas",
    "patches",
    "secretGenerator",
}
#: kinds that have no namespace
CLUSTER_SCOPED = {"Namespace"}

Object = dict[str, Any]


def load_documents(path: Path) -> list[Object]:
    """The YAML documents of a file (empty documents left out)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization(folder: Path) -> Object:
    spec = yaml.safe_load((folder / KUSTOMIZATION).read_text())
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"{folder}: the test renderer does not know {sorted(unknown)}")
    return dict(spec)


def env_file(path: Path) -> Path:
    """The env file, or its committed example when the file itself is git-ignored."""
    return path if path.is_file() else path.with_name(path.name + ".example")


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def render(folder: Path) -> list[Object]:
    """The objects `kustomize build folder` gives (see the module doc for the two
    differences)."""
    spec = kustomization(folder)
    objects: list[Object] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        objects += render(path) if path.is_dir() else copy.deepcopy(load_documents(path))
    for generator in spec.get("secretGenerator", []):
        data: dict[str, str] = {}
        for name in generator.get("envs", []):
            data |= read_env(env_file(folder / name))
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": encoded}
        objects.append(secret | {"metadata": {"name": generator["name"]}})
    for patch in spec.get("patches", []):
        for change in load_documents(folder / patch["path"]):
            merge(find(objects, change["kind"], change["metadata"]["name"]), change)
    for replicas in spec.get("replicas", []):
        find(objects, "Deployment", replicas["name"])["spec"]["replicas"] = replicas["count"]
    for image in spec.get("images", []):
        for container in containers(objects):
            if container["image"].split(":")[0] == image["name"]:
                name = image.get("newName", image["name"])
                container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def find(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(found) != 1:
        raise ValueError(f"{len(found)} objects {kind}/{name} to patch")
    return found[0]


def merge(target: Object, change: Object) -> None:
    """A strategic merge of maps: keys of `change` replace or merge into `target`'s."""
    for key, value in change.items():
        if isinstance(value, list):
            raise ValueError(f"a list in a patch ({key}): merge keys are not rendered here")
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def pod_spec(obj: Object) -> Object | None:
    """The pod template's spec of a Deployment or Job."""
    if obj["kind"] in ("Deployment", "Job"):
        spec: Object = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(objects: list[Object]) -> list[Object]:
    out = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            out += spec.get("initContainers", []) + spec["containers"]
    return out
