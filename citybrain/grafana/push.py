"""`citybrain grafana push`: folder, datasource and dashboards into a Grafana, idempotently.

Two halves:

- `plan(current, wanted)` is pure: it compares what Grafana returned with what the files
  describe and says, per object, create / update / unchanged with a short diff summary
  (key paths only, never values).
- `push(...)` does the I/O with the Grafana HTTP API client (`grafana-client`): reads the
  files, GETs the current state, plans, and (unless `dry_run`) applies the changes in order
  folder, datasources, dashboards.

Grafana-managed fields (ids, versions, read-only flags, secure-field markers...) are left out
of the comparison, so a second push changes nothing. The datasource's `secureJsonData`
(the reader password) is never returned by Grafana, so it cannot be compared: it is sent on
every create or update and only ever named, never printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml

from citybrain.settings import PROJECT_ROOT

FOLDER_UID = "citybrain"
FOLDER_TITLE = "citybrain"
DASHBOARDS_DIR = PROJECT_ROOT / "grafana" / "dashboards"
DATASOURCE_FILE = PROJECT_ROOT / "grafana" / "provisioning" / "datasources" / "citybrain.yaml"
COMMIT_MESSAGE = "citybrain grafana push"
TIMEOUT_SECONDS = 10.0
UID_MAX_LENGTH = 40  # Grafana's limit for folder, datasource and dashboard uids

Kind = Literal["folder", "datasource", "dashboard"]
Action = Literal["create", "update", "unchanged"]

# Keys of a provisioning-file datasource that the HTTP API accepts (POST/PUT /api/datasources).
_DATASOURCE_API_KEYS = (
    "uid",
    "name",
    "type",
    "access",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
)
# Fields Grafana adds or manages itself: never part of the comparison.
_DASHBOARD_MANAGED = frozenset({"id", "version"})
_SUMMARY_PATHS = 6
_DIFF_DEPTH = 3
_ENV_PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

T = TypeVar("T")


class PushError(Exception):
    """A push that cannot proceed: bad files, missing environment, or Grafana said no.

    `url` is the Grafana URL (without credentials), `status` the HTTP status if Grafana
    answered (None when it could not be reached or the files are at fault).
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class Change:
    """What a push does (or would do) to one Grafana object."""

    kind: Kind
    uid: str
    title: str
    action: Action
    summary: str = ""

    def describe(self, *, dry_run: bool = False) -> str:
        """One line; `dry_run` says "would create" where a push says "created"."""
        if self.action == "unchanged":
            verb = "unchanged"
        else:
            verb = f"would {self.action}" if dry_run else f"{self.action}d"
        line = f"{verb:<16} {self.kind:<10} {self.uid} ({self.title})"
        return f"{line}: {self.summary}" if self.summary else line

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class Wanted:
    """What the files describe. `datasources` hold API payloads, secrets included."""

    folder: dict[str, str]
    datasources: list[dict[str, Any]] = field(default_factory=list, repr=False)
    dashboards: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CurrentState:
    """What Grafana returned, by uid; None where Grafana answered 404.

    `datasources` holds GET /api/datasources/uid/{uid} bodies, `dashboards` the
    GET /api/dashboards/uid/{uid} bodies (`{"dashboard": ..., "meta": ...}`).
    """

    folder: dict[str, Any] | None
    datasources: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any] | None] = field(default_factory=dict)


# --- planning (pure) -----------------------------------------------------------------
def plan(current: CurrentState, wanted: Wanted) -> list[Change]:
    """Compare `current` with `wanted`: one Change per wanted object, folder first."""
    changes = [_plan_folder(current.folder, wanted.folder)]
    for ds in wanted.datasources:
        changes.append(_plan_datasource(current.datasources.get(ds["uid"]), ds))
    for dash in wanted.dashboards:
        changes.append(
            _plan_dashboard(current.dashboards.get(dash["uid"]), dash, wanted.folder["uid"])
        )
    return changes


def _plan_folder(current: dict[str, Any] | None, wanted: dict[str, str]) -> Change:
    uid, title = wanted["uid"], wanted["title"]
    if current is None:
        return Change("folder", uid, title, "create", "new folder")
    if current.get("title") != title:
        return Change("folder", uid, title, "update", "changed title")
    return Change("folder", uid, title, "unchanged")


def _plan_datasource(current: dict[str, Any] | None, wanted: dict[str, Any]) -> Change:
    uid, title = wanted["uid"], wanted["name"]
    secure = sorted(wanted.get("secureJsonData") or {})
    sent = f"{', '.join(secure)} sent from the environment (hidden)" if secure else ""
    if current is None:
        return Change("datasource", uid, title, "create", _join(f"new {wanted['type']}", sent))
    compared = {k: v for k, v in wanted.items() if k != "secureJsonData"}
    paths = _diff(compared, {k: current.get(k) for k in compared})
    set_fields = current.get("secureJsonFields") or {}
    paths += [f"secureJsonData.{k} (not set in Grafana)" for k in secure if not set_fields.get(k)]
    if paths:
        note = (
            "read-only in Grafana (provisioned): it will refuse" if current.get("readOnly") else ""
        )
        return Change("datasource", uid, title, "update", _join(_changed(paths), sent, note))
    unchecked = f"{', '.join(secure)} not compared (Grafana never returns it)" if secure else ""
    return Change("datasource", uid, title, "unchanged", unchecked)


def _plan_dashboard(current: dict[str, Any] | None, wanted: dict[str, Any], folder: str) -> Change:
    uid, title = wanted["uid"], str(wanted.get("title", ""))
    if current is None:
        return Change("dashboard", uid, title, "create", f"new dashboard in folder {folder}")
    model = current.get("dashboard") or {}
    meta = current.get("meta") or {}
    paths = _diff(_strip(wanted, _DASHBOARD_MANAGED), _strip(model, _DASHBOARD_MANAGED))
    have_folder = meta.get("folderUid") or ""
    if have_folder != folder:
        paths.append(f"folder ({have_folder or 'General'} -> {folder})")
    if not paths:
        return Change("dashboard", uid, title, "unchanged")
    note = "provisioned from files in Grafana: it will refuse" if meta.get("provisioned") else ""
    return Change("dashboard", uid, title, "update", _join(_changed(paths), note))


def _strip(obj: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _diff(want: Any, have: Any, path: str = "", depth: int = 0) -> list[str]:
    """Key paths where `want` and `have` differ (values are never part of the result)."""
    if want == have:
        return []
    label = path or "(root)"
    if depth >= _DIFF_DEPTH:
        return [label]
    if isinstance(want, dict) and isinstance(have, dict):
        out: list[str] = []
        for key in sorted(set(want) | set(have), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in have:
                out.append(f"+{sub}")
            elif key not in want:
                out.append(f"-{sub}")
            else:
                out += _diff(want[key], have[key], sub, depth + 1)
        return out
    if isinstance(want, list) and isinstance(have, list):
        if len(want) != len(have):
            return [f"{label} ({len(have)} -> {len(want)} items)"]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += _diff(w, h, f"{path}[{i}]", depth + 1)
        return out
    return [label]


def _changed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SUMMARY_PATHS])
    more = len(paths) - _SUMMARY_PATHS
    return f"changed {shown}" + (f" (+{more} more)" if more > 0 else "")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# --- files -----------------------------------------------------------------------------
def load_wanted(dashboards_dir: Path, datasource_file: Path, environ: Mapping[str, str]) -> Wanted:
    """Read the datasource file (expanding ${VAR} from `environ`) and the dashboards."""
    return Wanted(
        folder={"uid": FOLDER_UID, "title": FOLDER_TITLE},
        datasources=load_datasources(datasource_file, environ),
        dashboards=load_dashboards(dashboards_dir),
    )


def load_datasources(path: Path, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """API payloads for every datasource of a Grafana provisioning file."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PushError(f"cannot read datasource file {path}: {exc}") from exc
    entries = doc.get("datasources") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PushError(f"{path}: expected a non-empty `datasources` list")
    payloads: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PushError(f"{path}: datasources[{i}] is not a mapping")
        where = f"{path}: datasource {entry.get('name') or i}"
        for key in ("uid", "name", "type"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise PushError(f"{where}: `{key}` is required")
        _check_uid(entry["uid"], where)
        payload = {k: entry[k] for k in _DATASOURCE_API_KEYS if k in entry}
        payloads.append(_expand(payload, environ, where))
    return payloads


def _expand(value: T, environ: Mapping[str, str], where: str) -> T:
    """Expand ${VAR} (and $$ to $) in every string, like Grafana's provisioning does."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name is None:
                return "$"
            got = environ.get(name)
            if not got:
                raise PushError(f"{where}: environment variable {name} is not set or empty")
            return got

        return _ENV_PLACEHOLDER.sub(sub, value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: _expand(v, environ, where) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_expand(v, environ, where) for v in value]  # type: ignore[return-value]
    return value


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every `*.json` dashboard model in `directory`, sorted by file name, without id/version."""
    if not directory.is_dir():
        raise PushError(f"dashboards directory {directory} does not exist")
    dashboards: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            model = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PushError(f"cannot read dashboard {path}: {exc}") from exc
        if not isinstance(model, dict):
            raise PushError(f"{path}: a dashboard must be a JSON object")
        uid, title = model.get("uid"), model.get("title")
        if not isinstance(uid, str) or not uid:
            raise PushError(f"{path}: the dashboard needs a stable `uid`")
        _check_uid(uid, str(path))
        if not isinstance(title, str) or not title.strip():
            raise PushError(f"{path}: the dashboard needs a `title`")
        if uid in seen:
            raise PushError(f"{path}: uid {uid!r} is already used by {seen[uid]}")
        seen[uid] = path
        dashboards.append(_strip(model, _DASHBOARD_MANAGED))
    return dashboards


def _check_uid(uid: str, where: str) -> None:
    if len(uid) > UID_MAX_LENGTH:
        raise PushError(f"{where}: uid {uid!r} is longer than {UID_MAX_LENGTH} characters")


# --- I/O -------------------------------------------------------------------------------
def push(
    url: str,
    token: str,
    dashboards_dir: Path,
    datasource_file: Path,
    environ: Mapping[str, str],
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    timescaledb: bool | None = None,
) -> list[Change]:
    """Create or update the folder, datasources and dashboards in the Grafana at `url`.

    With `dry_run` only GET requests are made. Each change is echoed as one line; the
    returned list holds one Change per object. Raises PushError (no traceback needed).
    `timescaledb`: the database's storage mode, which sets the PostgreSQL datasources'
    `timescaledb` flag (Grafana then groups time with time_bucket, which plain PostgreSQL
    lacks); None keeps the file's value.
    """
    wanted = load_wanted(dashboards_dir, datasource_file, environ)
    if timescaledb is not None:
        for ds in wanted.datasources:
            if "postgres" in str(ds.get("type")):
                ds["jsonData"] = {**ds.get("jsonData", {}), "timescaledb": timescaledb}
    grafana = _Grafana(url, token)
    health = grafana.call("GET /api/health", grafana.api.client.GET, "/health")
    if not isinstance(health, dict) or "database" not in health:
        raise PushError(
            f"{grafana.url} does not look like Grafana: GET /api/health", url=grafana.url
        )
    api = grafana.api
    current = CurrentState(
        folder=grafana.get_or_none(
            f"GET /api/folders/{FOLDER_UID}", api.folder.get_folder, FOLDER_UID
        ),
        datasources={
            ds["uid"]: grafana.get_or_none(
                f"GET /api/datasources/uid/{ds['uid']}",
                api.datasource.get_datasource_by_uid,
                ds["uid"],
            )
            for ds in wanted.datasources
        },
        dashboards={
            d["uid"]: grafana.get_or_none(
                f"GET /api/dashboards/uid/{d['uid']}", api.dashboard.get_dashboard, d["uid"]
            )
            for d in wanted.dashboards
        },
    )
    changes = plan(current, wanted)
    datasources = {ds["uid"]: ds for ds in wanted.datasources}
    dashboards = {d["uid"]: d for d in wanted.dashboards}
    for change in changes:
        if not dry_run and change.action != "unchanged":
            if change.kind == "folder":
                _apply_folder(grafana, change, wanted.folder)
            elif change.kind == "datasource":
                _apply_datasource(grafana, change, datasources[change.uid])
            else:
                _apply_dashboard(grafana, change, dashboards[change.uid], wanted.folder["uid"])
        echo(change.describe(dry_run=dry_run))
    counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "unchanged")}
    tally = f"{counts['create']} create, {counts['update']} update, {counts['unchanged']} unchanged"
    if dry_run:
        echo(f"dry run against {grafana.url}: {tally}; nothing was changed")
    else:
        echo(f"pushed to {grafana.url}: {tally}")
    return changes


def _apply_folder(grafana: _Grafana, change: Change, folder: dict[str, str]) -> None:
    uid, title = folder["uid"], folder["title"]
    if change.action == "create":
        grafana.call("POST /api/folders", grafana.api.folder.create_folder, title, uid=uid)
    else:
        grafana.call(
            f"PUT /api/folders/{uid}",
            grafana.api.folder.update_folder,
            uid,
            title=title,
            overwrite=True,
        )


def _apply_datasource(grafana: _Grafana, change: Change, payload: dict[str, Any]) -> None:
    uid = payload["uid"]
    if change.action == "create":
        grafana.call("POST /api/datasources", grafana.api.datasource.create_datasource, payload)
    else:
        grafana.call(
            f"PUT /api/datasources/uid/{uid}",
            grafana.api.datasource.update_datasource_by_uid,
            uid,
            payload,
        )


def _apply_dashboard(
    grafana: _Grafana, change: Change, model: dict[str, Any], folder_uid: str
) -> None:
    body = {
        "dashboard": model,  # no `id`: Grafana matches on uid, `overwrite` replaces it
        "folderUid": folder_uid,
        "overwrite": True,
        "message": COMMIT_MESSAGE,
    }
    grafana.call(
        f"POST /api/dashboards/db ({change.uid})", grafana.api.dashboard.update_dashboard, body
    )


class _Grafana:
    """The grafana-client API with every failure turned into a PushError."""

    def __init__(self, url: str, token: str) -> None:
        from grafana_client import GrafanaApi
        from grafana_client.client import TokenAuth

        self.url = _safe_url(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PushError(
                f"--url must be an http(s) URL like http://127.0.0.1:3000, got {self.url!r}"
            )
        if not token:
            raise PushError("a Grafana service-account token is required (--token)")
        # grafana-client appends "api" to the URL path as is: a sub-path needs its trailing /.
        path = parts.path.rstrip("/")
        base = urlunsplit(parts._replace(path=f"{path}/" if path else "", fragment=""))
        self.api = GrafanaApi.from_url(base, credential=TokenAuth(token), timeout=TIMEOUT_SECONDS)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, a grafana-client method; `what` names the request."""
        import niquests.exceptions
        from grafana_client.client import GrafanaException

        try:
            return fn(*args, **kwargs)
        except GrafanaException as exc:
            raise self._error(what, exc.status_code, exc.response, exc.message) from None
        except niquests.exceptions.RequestException as exc:
            raise PushError(
                f"cannot reach Grafana at {self.url} ({what}): {_reason(exc)}", url=self.url
            ) from None
        except ValueError as exc:  # a 200 answer that is not JSON: not Grafana's API
            raise PushError(
                f"Grafana at {self.url} ({what}): unexpected answer, is this Grafana? ({exc})",
                url=self.url,
            ) from None

    def get_or_none(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Like `call`, but None where Grafana answers 404 (no such object)."""
        try:
            return self.call(what, fn, *args)
        except PushError as exc:
            if exc.status == 404:
                return None
            raise

    def _error(self, what: str, status: int, response: Any, message: str) -> PushError:
        if not status:  # grafana-client wraps connection errors and timeouts with status 0
            return PushError(
                f"cannot reach Grafana at {self.url} ({what}): {message}", url=self.url
            )
        said = response.get("message") if isinstance(response, dict) else None
        detail = str(said or message or "").strip()
        if len(detail) > 200:
            detail = detail[:200] + "..."
        hint = {
            401: "check --token: it must be a valid Grafana service-account token",
            403: "the token's service account needs the Editor or Admin role",
        }.get(status, "")
        text = f"Grafana at {self.url} answered HTTP {status} to {what}: {detail or 'no detail'}"
        return PushError(_join(text, hint), url=self.url, status=status)


def _reason(exc: Exception) -> str:
    """The OS-level reason of a connection failure ("Connection refused"), else a short text."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if found:
        return str(found[-1]).strip()
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:200] + "..."


def _safe_url(url: str) -> str:
    """`url` without user:password, for messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts).rstrip("/")
