"""Local stand-ins for the WeCom, DingTalk and Feishu robot endpoints, built from each
platform's documented request format, signature check and error answers (always HTTP
200, the result in the body's code): an unknown token, a bad signature or a stale
timestamp, and "too fast" once a robot got more than `limit` messages in `window`
seconds. Every message accepted is kept, raw and in arrival order (no de-duplication: the
test counts what a group would show). And an SMTP server with STARTTLS and a login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port


@dataclass
class Robot:
    platform: str
    token: str
    secret: str | None = None
    limit: int = 1000  # messages a window before "too fast"
    window: float = 60.0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    #: every well-formed message that reached the robot, accepted or not, in arrival order
    offered: list[dict[str, Any]] = field(default_factory=list)
    recent: list[float] = field(default_factory=list)

    def too_fast(self) -> bool:
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < self.window]
        if len(self.recent) >= self.limit:
            return True
        self.recent.append(now)
        return False


def _hmac64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


RATE_ANSWERS = {
    "wecom": (45009, "api freq out of limit"),
    "dingtalk": (130101, "send too fast"),
    "feishu": (9499, "too many request"),
}


class RobotReceivers:
    """One HTTP server answering as the three platforms, on their documented paths."""

    def __init__(self, robots: list[Robot]) -> None:
        self.robots = {(r.platform, r.token): r for r in robots}
        self.lock = threading.Lock()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                code, text = receivers.answer(self.path, body)
                key = "code" if self.path.startswith("/open-apis/") else "errcode"
                msg = "msg" if key == "code" else "errmsg"
                answer = json.dumps({key: code, msg: text}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: bytes) -> tuple[int, str]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        message = json.loads(body)
        with self.lock:
            if parts.path == "/cgi-bin/webhook/send":
                return self._wecom(query, message)
            if parts.path == "/robot/send":
                return self._dingtalk(query, message)
            if parts.path.startswith("/open-apis/bot/v2/hook/"):
                return self._feishu(parts.path.rsplit("/", 1)[1], message)
        return 404, "no such path"

    def _take(self, robot: Robot, message: dict[str, Any]) -> tuple[int, str]:
        robot.offered.append(message)
        if robot.too_fast():
            code, text = RATE_ANSWERS[robot.platform]
            robot.refused.append((code, text))
            return code, text
        robot.accepted.append(message)
        return 0, "ok"

    def _wecom(self, query: dict[str, str], message: dict[str, Any]) -> tuple[int, str]:
        robot = self.robots.get(("wecom", query.get("key", "")))
        if robot is None:
            return 93000, "invalid webhook url"
        if message.get("msgtype") != "markdown" or not message["markdown"].get("content"):
            return 40008, "invalid message type"
        if len(message["markdown"]["content"].encode()) > 4096:
            return 40058, "content exceed max length 4096"
        return self._take(robot, message)

    def _dingtalk(self, query: dict[str, str], message: dict[str, Any]) -> tuple[int, str]:
        robot = self.robots.get(("dingtalk", query.get("access_token", "")))
        if robot is None:
            return 300001, "token is not exist"
        if robot.secret is not None:
            timestamp = query.get("timestamp", "0")
            fresh = abs(time.time() * 1000 - int(timestamp)) <= 3_600_000
            expected = _hmac64(robot.secret.encode(), f"{timestamp}\n{robot.secret}".encode())
            if not fresh or query.get("sign") != expected:
                robot.refused.append((310000, "sign not match"))
                return 310000, "sign not match"
        if not message.get("markdown", {}).get("title"):
            return 40035, "缺少参数 title"
        return self._take(robot, message)

    def _feishu(self, token: str, message: dict[str, Any]) -> tuple[int, str]:
        robot = self.robots.get(("feishu", token))
        if robot is None:
            return 19001, "param invalid: incoming webhook access token invalid"
        if robot.secret is not None:
            timestamp = str(message.get("timestamp", "0"))
            fresh = abs(time.time() - int(timestamp)) <= 3600
            expected = _hmac64(f"{timestamp}\n{robot.secret}".encode(), b"")
            if not fresh or message.get("sign") != expected:
                robot.refused.append((19021, "sign match fail or timestamp is not within one hour"))
                return 19021, "sign match fail or timestamp is not within one hour"
        if message.get("msg_type") != "post":
            return 19001, "param invalid"
        return self._take(robot, message)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailServer:
    """A local SMTP server that requires STARTTLS (a certificate from a test CA) and a
    login, and keeps every message it accepted, raw and in order."""

    def __init__(self, folder: Path, user: str, password: str) -> None:
        import ssl

        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.cafile = folder / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.cafile))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.messages: list[bytes] = []
        self.failed_logins = 0
        server = self

        class Handler:
            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
                server.messages.append(envelope.content)
                return "250 OK"

        def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
            ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
                user.encode(),
                password.encode(),
            )
            if not ok:
                server.failed_logins += 1
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
        )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
