"""`citybrain grafana push` against a local fake Grafana speaking the documented HTTP API.

The fake implements only the endpoints the push uses (paths and payload shapes from
Grafana's HTTP API docs: folders, data sources by uid, dashboards by uid and
POST /api/dashboards/db, /api/health), checks the Bearer token, rejects payloads of the
wrong shape with 400 *and* records the violation (so a test fails on it even if the client
swallowed the error), answers 404 like Grafana for unknown objects, and records every request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from citybrain.grafana.push import (
    DATASOURCE_FILE,
    Change,
    CurrentState,
    PushError,
    Wanted,
    load_datasources,
    plan,
    push,
)
from tests.conftest import free_port

TOKEN = "glsa_test-token"
PASSWORD = "Rdr-pw_8c1f$x!"  # a `$` on purpose: it must not be expanded again
DB_HOST = "timescaledb.internal:5432"
ENV = {"CITYBRAIN_GRAFANA_DB_HOST": DB_HOST, "CITYBRAIN_GRAFANA_READER_PASSWORD": PASSWORD}

_FOLDER_KEYS = {"uid", "title", "parentUid", "description"}
_FOLDER_UPDATE_KEYS = {"uid", "title", "version", "overwrite", "description"}
_DATASOURCE_KEYS = {
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
    "version",
}
_DASHBOARD_DB_KEYS = {"dashboard", "folderId", "folderUid", "message", "overwrite"}


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


class FakeGrafana:
    """State and request log of one fake Grafana; `handle` answers one request."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.secure: dict[str, dict[str, str]] = {}  # datasource uid -> secureJsonData
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid"}
        self._next_id = 1
        self.lock = threading.Lock()

    # helpers for tests
    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _bad(self, message: str) -> tuple[int, dict[str, Any]]:
        self.violations.append(message)
        return 400, {"message": message}

    def handle(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Recorded(method, path, body, auth))
            if path == "/api/health" and method == "GET":  # unauthenticated in Grafana
                return 200, {"commit": "abc123", "database": "ok", "version": "11.3.0"}
            if auth != f"Bearer {self.token}":
                return 401, {"message": "Invalid API key"}
            if body is _INVALID_JSON:
                return self._bad("body is not valid JSON")
            parts = path.strip("/").split("/")
            route = (method, *parts[:2])
            if route == ("GET", "api", "folders") and len(parts) == 3:
                return self._get_folder(parts[2])
            if route == ("POST", "api", "folders") and len(parts) == 2:
                return self._create_folder(body)
            if route == ("PUT", "api", "folders") and len(parts) == 3:
                return self._update_folder(parts[2], body)
            if method == "GET" and parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
                return self._get_datasource(parts[3])
            if route == ("POST", "api", "datasources") and len(parts) == 2:
                return self._create_datasource(body)
            if method == "PUT" and parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
                return self._update_datasource(parts[3], body)
            if method == "GET" and parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
                return self._get_dashboard(parts[3])
            if method == "POST" and parts == ["api", "dashboards", "db"]:
                return self._save_dashboard(body)
            self.violations.append(f"undocumented or unexpected endpoint {method} {path}")
            return 404, {"message": "Not found"}

    # folders: GET /api/folders/:uid, POST /api/folders, PUT /api/folders/:uid
    def _get_folder(self, uid: str) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        return (200, folder) if folder else (404, {"message": "folder not found"})

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - _FOLDER_KEYS:
            return self._bad(f"POST /api/folders: unexpected keys {body!r}")
        if not isinstance(body.get("title"), str) or not body["title"]:
            return self._bad("POST /api/folders: title is required")
        uid = body.get("uid")
        if not isinstance(uid, str) or not 0 < len(uid) <= 40:
            return self._bad("POST /api/folders: uid must be a string of at most 40 characters")
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {
            "id": self._id(),
            "uid": uid,
            "title": body["title"],
            "url": f"/dashboards/f/{uid}/",
            "hasAcl": False,
            "canSave": True,
            "version": 1,
        }
        return 200, self.folders[uid]

    def _update_folder(self, uid: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - _FOLDER_UPDATE_KEYS or "title" not in body:
            return self._bad(f"PUT /api/folders/{uid}: bad body {body!r}")
        folder = self.folders.get(uid)
        if folder is None:
            return 404, {"message": "folder not found"}
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else"}
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    # data sources: GET/PUT /api/datasources/uid/:uid, POST /api/datasources
    def _get_datasource(self, uid: str) -> tuple[int, Any]:
        ds = self.datasources.get(uid)
        if ds is None:
            return 404, {"message": "Data source not found"}
        return 200, {**ds, "secureJsonFields": {k: True for k in self.secure.get(uid, {})}}

    def _check_datasource(self, what: str, body: Any) -> str | None:
        if not isinstance(body, dict) or set(body) - _DATASOURCE_KEYS:
            return f"{what}: unexpected keys in {sorted(body) if isinstance(body, dict) else body}"
        for key in ("name", "type", "access"):
            if not isinstance(body.get(key), str) or not body[key]:
                return f"{what}: {key} is required"
        if "jsonData" in body and not isinstance(body["jsonData"], dict):
            return f"{what}: jsonData must be an object"
        secure = body.get("secureJsonData", {})
        if not isinstance(secure, dict) or not all(isinstance(v, str) for v in secure.values()):
            return f"{what}: secureJsonData must map names to strings"
        return None

    def _store_datasource(self, uid: str, body: dict[str, Any], ds_id: int, version: int) -> None:
        self.datasources[uid] = {
            "id": ds_id,
            "uid": uid,
            "orgId": 1,
            "name": body["name"],
            "type": body["type"],
            "typeLogoUrl": "public/app/plugins/datasource/grafana-postgresql-datasource/img/x.svg",
            "access": body["access"],
            "url": body.get("url", ""),
            "user": body.get("user", ""),
            "database": body.get("database", ""),
            "basicAuth": body.get("basicAuth", False),
            "basicAuthUser": body.get("basicAuthUser", ""),
            "withCredentials": body.get("withCredentials", False),
            "isDefault": body.get("isDefault", False),
            "jsonData": body.get("jsonData", {}),
            "version": version,
            "readOnly": False,
        }
        # Grafana keeps stored secure fields that an update does not send again.
        self.secure[uid] = {**self.secure.get(uid, {}), **body.get("secureJsonData", {})}

    def _create_datasource(self, body: Any) -> tuple[int, Any]:
        problem = self._check_datasource("POST /api/datasources", body)
        if problem:
            return self._bad(problem)
        uid = body.get("uid")
        if not isinstance(uid, str) or not 0 < len(uid) <= 40:
            return self._bad("POST /api/datasources: uid must be a string of at most 40 chars")
        names = {ds["name"] for ds in self.datasources.values()}
        if uid in self.datasources or body["name"] in names:
            return 409, {"message": "data source with the same name already exists"}
        self._store_datasource(uid, body, self._id(), 1)
        ds = self.datasources[uid]
        return 200, {
            "datasource": ds,
            "id": ds["id"],
            "message": "Datasource added",
            "name": ds["name"],
        }

    def _update_datasource(self, uid: str, body: Any) -> tuple[int, Any]:
        problem = self._check_datasource(f"PUT /api/datasources/uid/{uid}", body)
        if problem:
            return self._bad(problem)
        old = self.datasources.get(uid)
        if old is None:
            return 404, {"message": "Data source not found"}
        if body.get("uid", uid) != uid:
            return self._bad("PUT /api/datasources/uid: uid in the body differs from the path")
        self._store_datasource(uid, body, old["id"], old["version"] + 1)
        ds = self.datasources[uid]
        return 200, {
            "datasource": ds,
            "id": ds["id"],
            "message": "Datasource updated",
            "name": ds["name"],
        }

    # dashboards: GET /api/dashboards/uid/:uid, POST /api/dashboards/db
    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        dash = stored["dashboard"]
        folder = self.folders.get(stored["folderUid"], {})
        meta = {
            "type": "db",
            "slug": dash["title"].lower().replace(" ", "-"),
            "url": f"/d/{uid}/",
            "version": dash["version"],
            "folderUid": stored["folderUid"],
            "folderTitle": folder.get("title", "General"),
            "provisioned": False,
            "canSave": True,
        }
        return 200, {"dashboard": dash, "meta": meta}

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - _DASHBOARD_DB_KEYS:
            return self._bad(f"POST /api/dashboards/db: unexpected keys in {body!r}")
        dash = body.get("dashboard")
        if not isinstance(dash, dict):
            return self._bad("POST /api/dashboards/db: `dashboard` object is required")
        uid, title = dash.get("uid"), dash.get("title")
        if not isinstance(uid, str) or not 0 < len(uid) <= 40:
            return self._bad("POST /api/dashboards/db: dashboard.uid is required")
        if not isinstance(title, str) or not title.strip():
            return self._bad("POST /api/dashboards/db: dashboard.title is required")
        if not isinstance(body.get("folderUid"), str) or not isinstance(
            body.get("overwrite"), bool
        ):
            return self._bad("POST /api/dashboards/db: folderUid and overwrite are required")
        if body["folderUid"] and body["folderUid"] not in self.folders:
            return 400, {"message": "folder not found"}
        old = self.dashboards.get(uid)
        if dash.get("id") is not None and (old is None or old["dashboard"]["id"] != dash["id"]):
            return 404, {"message": "Dashboard not found"}
        if old and not body["overwrite"] and dash.get("version") != old["dashboard"]["version"]:
            return 412, {"message": "The dashboard has been changed by someone else"}
        version = old["dashboard"]["version"] + 1 if old else 1
        ds_id = old["dashboard"]["id"] if old else self._id()
        stored = {**dash, "id": ds_id, "uid": uid, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": body["folderUid"]}
        return 200, {
            "id": ds_id,
            "uid": uid,
            "url": f"/d/{uid}/",
            "status": "success",
            "version": version,
            "slug": title.lower().replace(" ", "-"),
            "folderUid": body["folderUid"],
        }


_INVALID_JSON = object()


def _name(ds: dict[str, Any]) -> dict[str, Any]:
    return {"name": ds["name"]}


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = _INVALID_JSON
            status, payload = fake.handle(
                self.command, self.path.split("?")[0], body, self.headers.get("Authorization")
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert fake.violations == []


def _dashboard(uid: str, title: str, panels: int = 1) -> dict[str, Any]:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "schemaVersion": 39,
        "version": 3,
        "tags": ["citybrain"],
        "time": {"from": "now-6h", "to": "now"},
        "panels": [
            {
                "id": i + 1,
                "type": "timeseries",
                "title": f"panel {i + 1}",
                "datasource": {"type": "grafana-postgresql-datasource", "uid": "citybrain-db"},
                "targets": [{"refId": "A", "rawSql": "SELECT now() AS time, 1 AS value"}],
            }
            for i in range(panels)
        ],
    }


@pytest.fixture
def dashboards_dir(tmp_path: Path) -> Path:
    d = tmp_path / "dashboards"
    d.mkdir()
    (d / "a-incidents.json").write_text(json.dumps(_dashboard("cb-incidents", "Incidents")))
    (d / "b-pipeline.json").write_text(json.dumps(_dashboard("cb-pipeline", "Pipeline", 2)))
    (d / "notes.txt").write_text("not a dashboard")
    return d


class Output:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _push(
    url: str,
    dashboards_dir: Path,
    *,
    dry_run: bool = False,
    token: str = TOKEN,
    environ: dict[str, str] | None = None,
    out: Output | None = None,
) -> list[Change]:
    return push(
        url,
        token,
        dashboards_dir,
        DATASOURCE_FILE,
        ENV if environ is None else environ,
        dry_run=dry_run,
        echo=out if out is not None else Output(),
    )


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def _summary(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.kind, c.uid, c.action) for c in changes]


def _expected_datasource_payload() -> dict[str, Any]:
    return {
        "uid": "citybrain-db",
        "name": "citybrain",
        "type": "grafana-postgresql-datasource",
        "access": "proxy",
        "url": DB_HOST,
        "user": "grafana_reader",
        "isDefault": True,
        "jsonData": {
            "database": "citybrain",
            "sslmode": "disable",
            "postgresVersion": 1500,
            "timescaledb": True,
            "maxOpenConns": 5,
        },
        "secureJsonData": {"password": PASSWORD},
    }


# --- the datasource file -----------------------------------------------------------------
def test_datasource_file_is_expanded_from_the_environment() -> None:
    (ds,) = load_datasources(DATASOURCE_FILE, ENV)
    assert ds == _expected_datasource_payload()


def test_a_missing_environment_variable_is_named_before_any_request(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    with pytest.raises(PushError, match="CITYBRAIN_GRAFANA_READER_PASSWORD is not set"):
        _push(url, dashboards_dir, environ={"CITYBRAIN_GRAFANA_DB_HOST": DB_HOST})
    assert fake.requests == []


# --- pushing -----------------------------------------------------------------------------
def test_first_push_creates_folder_datasource_and_dashboards(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    out = Output()
    changes = _push(url, dashboards_dir, out=out)

    assert _summary(changes) == [
        ("folder", "citybrain", "create"),
        ("datasource", "citybrain-db", "create"),
        ("dashboard", "cb-incidents", "create"),
        ("dashboard", "cb-pipeline", "create"),
    ]
    assert fake.calls() == [
        "GET /api/health",
        "GET /api/folders/citybrain",
        "GET /api/datasources/uid/citybrain-db",
        "GET /api/dashboards/uid/cb-incidents",
        "GET /api/dashboards/uid/cb-pipeline",
        "POST /api/folders",
        "POST /api/datasources",
        "POST /api/dashboards/db",
        "POST /api/dashboards/db",
    ]
    assert {r.authorization for r in fake.requests[1:]} == {f"Bearer {TOKEN}"}
    folder, datasource, dash_a, dash_b = (r.body for r in fake.writes)
    assert folder == {"title": "citybrain", "uid": "citybrain"}
    assert datasource == _expected_datasource_payload()
    expected_a = _without(_dashboard("cb-incidents", "Incidents"), "id", "version")
    assert dash_a == {
        "dashboard": expected_a,
        "folderUid": "citybrain",
        "overwrite": True,
        "message": "citybrain grafana push",
    }
    assert dash_b["dashboard"]["uid"] == "cb-pipeline"
    assert fake.dashboards["cb-pipeline"]["folderUid"] == "citybrain"
    assert len(out.lines) == 5
    assert out.lines[0].startswith("created") and "folder" in out.lines[0]
    assert "4 create, 0 update, 0 unchanged" in out.lines[-1]


def test_second_push_changes_nothing(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    _push(url, dashboards_dir)
    before = len(fake.requests)

    changes = _push(url, dashboards_dir)

    assert [c.action for c in changes] == ["unchanged"] * 4
    assert [r.method for r in fake.requests[before:]] == ["GET"] * 5
    ds_change = changes[1]
    assert "password not compared" in ds_change.summary


def test_a_changed_dashboard_gives_exactly_one_update(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    _push(url, dashboards_dir)
    changed = _dashboard("cb-pipeline", "Pipeline", 2)
    changed["panels"][1]["title"] = "lag per stage"
    (dashboards_dir / "b-pipeline.json").write_text(json.dumps(changed))
    before = len(fake.requests)

    changes = _push(url, dashboards_dir)

    assert [c.action for c in changes] == ["unchanged", "unchanged", "unchanged", "update"]
    assert changes[3].summary == "changed panels[1].title"
    writes = [r for r in fake.requests[before:] if r.method != "GET"]
    assert [(r.method, r.path) for r in writes] == [("POST", "/api/dashboards/db")]
    assert writes[0].body["dashboard"]["panels"][1]["title"] == "lag per stage"
    assert fake.dashboards["cb-pipeline"]["dashboard"]["version"] == 2


def test_dry_run_reports_and_writes_nothing(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    out = Output()
    changes = _push(url, dashboards_dir, dry_run=True, out=out)

    assert [c.action for c in changes] == ["create"] * 4
    assert fake.writes == []
    assert fake.folders == fake.datasources == fake.dashboards == {}
    assert out.lines[0].startswith("would create") and "folder" in out.lines[0]
    assert "password sent from the environment (hidden)" in out.lines[1]
    assert "nothing was changed" in out.lines[-1]

    # against a populated Grafana: only the differences, still without a write
    _push(url, dashboards_dir)
    (dashboards_dir / "a-incidents.json").write_text(
        json.dumps(_dashboard("cb-incidents", "Incidents (live)"))
    )
    before = len(fake.requests)
    out = Output()
    changes = _push(url, dashboards_dir, dry_run=True, out=out)
    assert _summary(changes)[2] == ("dashboard", "cb-incidents", "update")
    assert [c.action for c in changes].count("unchanged") == 3
    assert [r.method for r in fake.requests[before:]] == ["GET"] * 5
    assert "would update" in out.lines[2] and "changed title" in out.lines[2]


def test_datasource_update_resends_the_password(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    _push(url, dashboards_dir)
    moved = {**ENV, "CITYBRAIN_GRAFANA_DB_HOST": "db2.internal:5432"}
    before = len(fake.requests)

    changes = _push(url, dashboards_dir, environ=moved)

    assert changes[1].action == "update"
    assert changes[1].summary == "changed url; password sent from the environment (hidden)"
    (write,) = (r for r in fake.requests[before:] if r.method != "GET")
    assert (write.method, write.path) == ("PUT", "/api/datasources/uid/citybrain-db")
    assert write.body["secureJsonData"] == {"password": PASSWORD}
    assert fake.datasources["citybrain-db"]["url"] == "db2.internal:5432"


def test_the_password_is_sent_but_never_shown(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    shown: list[str] = []
    for dry_run in (True, False, False):
        out = Output()
        changes = _push(url, dashboards_dir, dry_run=dry_run, out=out)
        shown += [out.text, repr(changes), *map(str, changes)]
        shown += [c.describe(dry_run=dry_run) for c in changes]

    (post,) = (r for r in fake.requests if r.path == "/api/datasources")
    assert post.body["secureJsonData"] == {"password": PASSWORD}
    assert fake.secure["citybrain-db"] == {"password": PASSWORD}
    for text in shown:
        assert PASSWORD not in text
        assert DB_HOST not in text
        assert TOKEN not in text


def test_a_dashboard_in_another_folder_is_moved(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    _push(url, dashboards_dir)
    fake.dashboards["cb-incidents"]["folderUid"] = ""  # moved to General in the UI

    changes = _push(url, dashboards_dir)

    assert changes[2].action == "update"
    assert changes[2].summary == "changed folder (General -> citybrain)"
    assert fake.dashboards["cb-incidents"]["folderUid"] == "citybrain"


# --- errors ------------------------------------------------------------------------------
def test_a_wrong_token_is_a_push_error_with_the_status(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path
) -> None:
    fake, url = grafana
    with pytest.raises(PushError) as caught:
        _push(url, dashboards_dir, token="glsa_wrong")
    err = caught.value
    assert err.status == 401
    assert err.url == url
    assert "HTTP 401" in str(err) and url in str(err) and "Invalid API key" in str(err)
    assert "glsa_wrong" not in str(err)
    assert fake.writes == []


def test_an_unreachable_grafana_is_a_push_error(dashboards_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PushError, match=r"cannot reach Grafana at .*Connection refused") as caught:
        _push(url, dashboards_dir)
    assert caught.value.url == url and caught.value.status is None
    assert url in str(caught.value)


def test_credentials_in_the_url_are_not_shown(dashboards_dir: Path) -> None:
    url = f"http://admin:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(PushError) as caught:
        _push(url, dashboards_dir)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read dashboard"),
        ('{"title": "no uid"}', "needs a stable `uid`"),
        ('{"uid": "x", "title": ""}', "needs a `title`"),
        ('{"uid": "' + "u" * 41 + '", "title": "t"}', "longer than 40"),
    ],
)
def test_bad_dashboard_files_are_push_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(PushError, match=message):
        _push("http://127.0.0.1:9", tmp_path)


def test_duplicate_dashboard_uids_are_refused(tmp_path: Path) -> None:
    for name in ("one.json", "two.json"):
        (tmp_path / name).write_text(json.dumps(_dashboard("same", name)))
    with pytest.raises(PushError, match="already used by"):
        _push("http://127.0.0.1:9", tmp_path)


# --- planning (pure) ---------------------------------------------------------------------
def test_plan_ignores_grafana_managed_fields() -> None:
    wanted = Wanted(
        folder={"uid": "citybrain", "title": "citybrain"},
        datasources=[_expected_datasource_payload()],
        dashboards=[{"uid": "d", "title": "D", "panels": []}],
    )
    current = CurrentState(
        folder={"id": 7, "uid": "citybrain", "title": "citybrain", "version": 4, "url": "/x"},
        datasources={
            "citybrain-db": {
                **_without(_expected_datasource_payload(), "secureJsonData"),
                "id": 3,
                "orgId": 1,
                "version": 9,
                "readOnly": False,
                "typeLogoUrl": "x.svg",
                "basicAuth": False,
                "database": "",
                "secureJsonFields": {"password": True},
            }
        },
        dashboards={
            "d": {
                "dashboard": {"id": 12, "uid": "d", "title": "D", "panels": [], "version": 5},
                "meta": {"folderUid": "citybrain", "version": 5, "provisioned": False},
            }
        },
    )
    assert [c.action for c in plan(current, wanted)] == ["unchanged"] * 3


def test_plan_reports_a_missing_secure_password_as_an_update() -> None:
    wanted = Wanted(folder={"uid": "f", "title": "f"}, datasources=[_expected_datasource_payload()])
    current_ds = _without(_expected_datasource_payload(), "secureJsonData")
    changes = plan(CurrentState(folder=None, datasources={"citybrain-db": current_ds}), wanted)
    assert changes[1].action == "update"
    assert "secureJsonData.password (not set in Grafana)" in changes[1].summary


@pytest.mark.parametrize("timescaledb", [True, False])
def test_the_storage_mode_sets_the_datasource_s_timescaledb_flag(
    grafana: tuple[FakeGrafana, str], dashboards_dir: Path, timescaledb: bool
) -> None:
    fake, url = grafana
    push(
        url,
        TOKEN,
        dashboards_dir,
        DATASOURCE_FILE,
        ENV,
        echo=Output(),
        timescaledb=timescaledb,
    )
    (ds,) = fake.datasources.values()
    assert ds["jsonData"]["timescaledb"] is timescaledb
