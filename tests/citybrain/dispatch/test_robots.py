"""Group robots (pure): each platform's address and signature, checked as its receiver
checks them, and each platform's answers classified (a 200 is not always a success)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from citybrain.dispatch.robots import classify, robot_request

NOW_MS = 1_764_900_000_123
MESSAGE = {"msgtype": "markdown", "markdown": {"content": "**燃气泄漏** 浦东新区"}}


def _dingtalk_accepts(url: str, secret: str, now_ms: int) -> bool:
    """DingTalk's check, as its documentation gives it: the timestamp within an hour, and
    the sign recomputed from it and the secret."""
    query = parse_qs(urlsplit(url).query)
    timestamp = int(query["timestamp"][0])
    if abs(now_ms - timestamp) > 3_600_000:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return query["sign"][0] == base64.b64encode(mac.digest()).decode()


def _feishu_accepts(body: bytes, secret: str) -> bool:
    sent = orjson.loads(body)
    key = f"{sent['timestamp']}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return bool(sent["sign"] == expected)


def test_wecom_is_addressed_by_its_key_and_sends_the_message_as_it_is() -> None:
    request = robot_request("wecom", "k/ey+1", MESSAGE, NOW_MS, base="http://127.0.0.1:9/")
    assert request.url == "http://127.0.0.1:9/cgi-bin/webhook/send?key=k%2Fey%2B1"
    assert orjson.loads(request.body) == MESSAGE


def test_dingtalk_signs_in_the_url_and_a_wrong_secret_fails_its_check() -> None:
    request = robot_request("dingtalk", "tok", MESSAGE, NOW_MS, secret="SECabc+/=")
    assert request.url.startswith("https://oapi.dingtalk.com/robot/send?access_token=tok&")
    assert parse_qs(urlsplit(request.url).query)["timestamp"] == [str(NOW_MS)]
    assert _dingtalk_accepts(request.url, "SECabc+/=", NOW_MS)
    assert not _dingtalk_accepts(request.url, "SECother", NOW_MS)
    assert not _dingtalk_accepts(request.url, "SECabc+/=", NOW_MS + 3_600_001)
    unsigned = robot_request("dingtalk", "tok", MESSAGE, NOW_MS)
    assert "sign=" not in unsigned.url and "timestamp=" not in unsigned.url


def test_feishu_signs_in_the_body_in_seconds() -> None:
    request = robot_request("feishu", "hook-1", MESSAGE, NOW_MS, secret="s3cret")
    assert request.url == "https://open.feishu.cn/open-apis/bot/v2/hook/hook-1"
    sent = orjson.loads(request.body)
    assert sent["timestamp"] == str(NOW_MS // 1000)
    assert {k: v for k, v in sent.items() if k not in ("timestamp", "sign")} == MESSAGE
    assert _feishu_accepts(request.body, "s3cret")
    assert not _feishu_accepts(request.body, "other")
    assert orjson.loads(robot_request("feishu", "hook-1", MESSAGE, NOW_MS).body) == MESSAGE


@pytest.mark.parametrize(
    ("platform", "status", "body", "verdict", "retry_after"),
    [
        ("wecom", 200, b'{"errcode":0,"errmsg":"ok"}', 200, None),
        ("wecom", 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', 429, 60.0),
        ("wecom", 200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', "rejected", None),
        ("wecom", 200, b'{"errcode":-1,"errmsg":"system busy"}', 503, None),
        ("dingtalk", 200, b'{"errcode":0,"errmsg":"ok"}', 200, None),
        ("dingtalk", 200, b'{"errcode":130101,"errmsg":"send too fast"}', 429, 600.0),
        ("dingtalk", 200, b'{"errcode":310000,"errmsg":"sign not match"}', "rejected", None),
        ("dingtalk", 200, b'{"errcode":300001,"errmsg":"token is not exist"}', "rejected", None),
        ("feishu", 200, b'{"code":0,"msg":"success","data":{}}', 200, None),
        ("feishu", 200, b'{"StatusCode":0,"StatusMessage":"success"}', 200, None),
        ("feishu", 200, b'{"code":9499,"msg":"too many request"}', 429, 60.0),
        ("feishu", 200, b'{"code":19021,"msg":"sign match fail"}', "rejected", None),
        ("feishu", 200, b'{"code":19024,"msg":"Key Words Not Found"}', "rejected", None),
        # a 200 that is not the platform's answer (a proxy's page) is not a success
        ("wecom", 200, b"<html>gateway</html>", 502, None),
        ("dingtalk", 200, b'{"ok":true}', 502, None),
        ("feishu", 200, b"[]", 502, None),
        # HTTP errors keep their status
        ("dingtalk", 503, b"busy", 503, None),
        ("feishu", 400, b'{"code":9499}', 400, None),
    ],
)
def test_answers_are_classified_by_their_code(
    platform: str, status: int, body: bytes, verdict: int | str, retry_after: float | None
) -> None:
    outcome = classify(platform, status, body)  # type: ignore[arg-type]
    if verdict == "rejected":
        assert outcome.error_kind == "rejected" and str(platform) in outcome.detail
    else:
        assert outcome.status == verdict
        assert outcome.retry_after_s == retry_after
