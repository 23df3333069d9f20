"""Sign and verify webhooks the Standard Webhooks way (HMAC-SHA256, `whsec_` secrets).

Standard library only, so that a receiving department can copy this one file into its own
service. Specification: https://www.standardwebhooks.com (spec/standard-webhooks.md).

- Each endpoint has its own secret: `whsec_` followed by base64 of 24 to 64 random bytes.
- Three headers are sent with each request: `webhook-id` (the message id; it stays the same
  across retries, so use it to drop duplicates), `webhook-timestamp` (Unix seconds of this
  attempt) and `webhook-signature`.
- The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`. The signature
  header is `v1,<base64 HMAC-SHA256>`. While a secret is being rotated, the header holds
  several signatures separated by spaces, and one matching signature is enough.
- The receiver rejects a timestamp more than 5 minutes away from its own clock, in either
  direction. This stops replays.

Receiver example (works with any framework; pass the raw body bytes, before any JSON
parsing, and the request headers as a mapping):

    import json
    from webhooks import WebhookVerificationError, verify

    SECRET = "whsec_..."  # this endpoint's secret, from the city operations center

    def handle_webhook(raw_body: bytes, request_headers) -> int:
        # Flask: request.get_data(), request.headers
        # FastAPI / Starlette: await request.body(), request.headers
        try:
            verify(SECRET, request_headers, raw_body)
        except WebhookVerificationError as exc:
            print("rejected webhook:", exc.reason, exc)
            return 401
        message_id = request_headers["webhook-id"]  # idempotency key: skip ids seen before
        task = json.loads(raw_body)  # parse only after verifying
        ...
        return 204  # any 2xx is success; 5xx/429/408 are retried, other 4xx are not
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE_S",
    "WebhookVerificationError",
    "generate_secret",
    "headers",
    "sign",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's marker, not a secret)
TOLERANCE_S = 300
_SIGNATURE_VERSION = "v1"
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class WebhookVerificationError(Exception):
    """The request is not a valid signed webhook; `reason` says why, as a short code.

    Codes: missing_header, bad_timestamp, too_old, too_new, no_matching_signature.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def generate_secret(nbytes: int = 32) -> str:
    """A new endpoint secret: `whsec_` + base64 of `nbytes` random bytes (24 to 64)."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a webhook secret has 24 to 64 random bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def _key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded secret, `whsec_` prefix optional, padding optional."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64 after the whsec_ prefix") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, `v1,<base64>`, over `{msg_id}.{timestamp}.{body}`."""
    if not msg_id or "." in msg_id:
        raise ValueError("msg_id must be non-empty and must not contain '.'")
    if timestamp < 0:
        raise ValueError("timestamp is Unix seconds, not negative")
    mac = _mac(_key(secret), msg_id, timestamp, body)
    return f"{_SIGNATURE_VERSION},{base64.b64encode(mac).decode('ascii')}"


def headers(
    secret: str | Sequence[str],
    msg_id: str,
    body: bytes,
    now: int,
    *,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The request headers for one attempt at Unix second `now`.

    Pass several secrets (new first, then old) while rotating: the signature header then
    holds one signature per secret, separated by spaces.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": " ".join(sign(s, msg_id, now, body) for s in keys),
        "content-type": content_type,
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Return if the webhook is authentic and fresh; raise `WebhookVerificationError` if not.

    Header names are matched case-insensitively. `body` must be the raw bytes received.
    An invalid `secret` (a configuration error, not a bad request) raises `ValueError`.
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    values: dict[str, str] = {}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        value = lowered.get(name)
        if not value:
            raise WebhookVerificationError("missing_header", f"missing header {name}")
        values[name] = value

    raw_ts = values["webhook-timestamp"].strip()
    if not _TIMESTAMP.fullmatch(raw_ts):
        raise WebhookVerificationError(
            "bad_timestamp", "webhook-timestamp is not an integer number of Unix seconds"
        )
    timestamp = int(raw_ts)
    current = int(time.time()) if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError(
            "too_old", f"webhook-timestamp is {current - timestamp}s old (limit {tolerance_s}s)"
        )
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError(
            "too_new",
            f"webhook-timestamp is {timestamp - current}s in the future (limit {tolerance_s}s)",
        )

    expected = _mac(key, values["webhook-id"], timestamp, body)
    for candidate in values["webhook-signature"].split():
        version, _, encoded = candidate.partition(",")
        if version != _SIGNATURE_VERSION:
            continue  # another scheme (e.g. v1a, asymmetric) or a future version
        try:
            received = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, received):
            return
    raise WebhookVerificationError(
        "no_matching_signature", "no v1 signature matches the body, id and timestamp"
    )
