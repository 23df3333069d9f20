"""Group robots of WeCom (企业微信, also behind 粤政易), DingTalk (钉钉, also behind 浙政钉)
and Feishu (飞书): how each platform's robot is addressed and signed, and what its answers
mean (pure: no I/O).

- **WeCom**: `POST {base}/cgi-bin/webhook/send?key=KEY`; no signature (the key is the
  secret).
- **DingTalk**: `POST {base}/robot/send?access_token=TOKEN&timestamp=MS&sign=SIGN`, where
  SIGN is base64(HMAC-SHA256(key=secret, message=f"{MS}\\n{secret}")), URL-encoded; MS is
  the time in milliseconds, accepted within an hour.
- **Feishu**: `POST {base}/open-apis/bot/v2/hook/TOKEN`, the body carrying `timestamp` (in
  seconds, a string) and `sign` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
  message=b"")).

Each answers HTTP 200 even when it refused the message: the JSON body's `errcode` (WeCom,
DingTalk) or `code` (Feishu) says what happened. `classify` turns an answer into the
outbox's `Outcome`: 0 is delivered; a rate limit is a 429 retried after a minute (queued,
never dropped); a refusal no retry can change (a wrong key or signature, a robot removed,
a keyword missing) is rejected at once and goes to the delivery dead letters; any other
code is retried like a 503. The base URL is part of the channel's configuration: the
government editions (浙政钉, 粤政易) run their own hosts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import orjson

from citybrain.dispatch.outbox import Outcome

Platform = Literal["wecom", "dingtalk", "feishu"]
PLATFORMS: tuple[Platform, ...] = ("wecom", "dingtalk", "feishu")

#: the public hosts; a channel may name its own (a government edition, a test receiver)
DEFAULT_BASE: dict[Platform, str] = {
    "wecom": "https://qyapi.weixin.qq.com",
    "dingtalk": "https://oapi.dingtalk.com",
    "feishu": "https://open.feishu.cn",
}

#: messages a minute one robot takes (the platforms' documented limits: WeCom and DingTalk
#: 20, Feishu 100); the notifier paces each robot under it
RATE_PER_MINUTE: dict[Platform, int] = {"wecom": 20, "dingtalk": 20, "feishu": 100}

#: how long a rate-limited robot waits before its next try (DingTalk throttles a robot
#: for 10 minutes once it went over; the others count per minute)
RATE_LIMIT_WAIT_S: dict[Platform, float] = {"wecom": 60.0, "dingtalk": 600.0, "feishu": 60.0}

#: answers that mean "too many messages": retried after RATE_LIMIT_WAIT_S
RATE_LIMITED: dict[Platform, frozenset[int]] = {
    "wecom": frozenset({45009}),  # api freq out of limit
    "dingtalk": frozenset({130101}),  # send too fast, exceed 20 times per minute
    "feishu": frozenset({9499, 11232}),  # too many request; frequency limited
}

#: answers no retry can change: the message goes to the delivery dead letters at once
REFUSED: dict[Platform, frozenset[int]] = {
    # invalid webhook key; invalid message type; empty content; invalid parameter
    "wecom": frozenset({93000, 40008, 44004, 40058}),
    # token does not exist; sign not match / keyword missing / IP not allowed; robot
    # stopped; group dissolved
    "dingtalk": frozenset({300001, 310000, 300005, 400013}),
    # bad request; sign match fail or stale timestamp; IP not allowed; keyword missing
    "feishu": frozenset({19001, 19021, 19022, 19024}),
}


@dataclass(frozen=True)
class RobotRequest:
    """What to POST (JSON body) and where."""

    url: str
    body: bytes


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` parameter, before URL encoding."""
    text = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), text, hashlib.sha256).digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign` body field: the HMAC keyed by timestamp and secret, of nothing."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def robot_request(
    platform: Platform,
    token: str,
    message: Mapping[str, Any],
    now_ms: int,
    secret: str | None = None,
    base: str | None = None,
) -> RobotRequest:
    """The request that posts `message` (the platform's own message JSON) to the robot
    `token` (WeCom's key, DingTalk's access token, Feishu's hook id), signed with `secret`
    when the robot has signing on."""
    root = (base or DEFAULT_BASE[platform]).rstrip("/")
    body = dict(message)
    if platform == "wecom":
        url = f"{root}/cgi-bin/webhook/send?key={quote(token, safe='')}"
    elif platform == "dingtalk":
        url = f"{root}/robot/send?access_token={quote(token, safe='')}"
        if secret:
            url += f"&timestamp={now_ms}&sign={quote_plus(dingtalk_sign(secret, now_ms))}"
    elif platform == "feishu":
        url = f"{root}/open-apis/bot/v2/hook/{quote(token, safe='')}"
        if secret:
            seconds = now_ms // 1000
            body = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **body}
    else:
        raise ValueError(f"unknown robot platform {platform!r}")
    return RobotRequest(url, orjson.dumps(body))


def answer_code(platform: Platform, body: bytes) -> tuple[int | None, str]:
    """The platform's result code and message in an answer's JSON body; (None, why) when
    the body is not the platform's answer."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, f"not JSON: {body[:80]!r}"
    if not isinstance(answer, dict):
        return None, f"not a JSON object: {body[:80]!r}"
    if platform == "feishu":
        code = answer.get("code", answer.get("StatusCode"))
        text = answer.get("msg", answer.get("StatusMessage", ""))
    else:
        code, text = answer.get("errcode"), answer.get("errmsg", "")
    if not isinstance(code, int) or isinstance(code, bool):
        return None, f"no result code in {body[:80]!r}"
    return code, str(text)[:200]


def classify(platform: Platform, status: int, body: bytes) -> Outcome:
    """An answer as the outbox's Outcome: an HTTP error as it is (retried or not by its
    status), and a 200 by the result code in its body (a 200 is not always a success)."""
    if not 200 <= status < 300:
        return Outcome.http(status, detail=body[:120].decode(errors="replace"))
    code, text = answer_code(platform, body)
    if code is None:
        return Outcome.http(502, detail=text)
    if code == 0:
        return Outcome.http(200)
    detail = f"{platform} {code}: {text}"
    if code in RATE_LIMITED[platform]:
        return Outcome.http(429, retry_after_s=RATE_LIMIT_WAIT_S[platform], detail=detail)
    if code in REFUSED[platform]:
        return Outcome.rejected(detail)
    return Outcome.http(503, detail=detail)
