import base64

import pytest

from citybrain.dispatch.webhooks import (
    WebhookVerificationError,
    generate_secret,
    headers,
    sign,
    verify,
)

# Test vector from the reference library's test suite, standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py (test_sign_function).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_700_000_000
BODY = b'{"dispatch_id":"d-1","department":"water"}'
MSG_ID = "msg_d-1"


def _signed(secret: str = VECTOR_SECRET, at: int = NOW) -> dict[str, str]:
    return headers(secret, MSG_ID, BODY, now=at)


def test_known_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_MSG_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_known_vector_verifies() -> None:
    request = {
        "webhook-id": VECTOR_MSG_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_SECRET, request, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10)


def test_secret_prefix_is_optional() -> None:
    bare = VECTOR_SECRET.removeprefix("whsec_")
    assert sign(bare, VECTOR_MSG_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_round_trip() -> None:
    secret = generate_secret()
    verify(secret, headers(secret, MSG_ID, BODY, now=NOW), BODY, now=NOW)


def test_headers() -> None:
    h = _signed()
    assert h["webhook-id"] == MSG_ID
    assert h["webhook-timestamp"] == str(NOW)
    assert h["webhook-signature"] == sign(VECTOR_SECRET, MSG_ID, NOW, BODY)
    assert h["content-type"] == "application/json"


def test_generated_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret


def test_header_names_are_case_insensitive() -> None:
    h = {name.title(): value for name, value in _signed().items()}
    assert "Webhook-Signature" in h
    verify(VECTOR_SECRET, h, BODY, now=NOW)


def _reason(secret: str, request: dict[str, str], body: bytes, now: int) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(secret, request, body, now=now)
    return caught.value.reason


def test_tampered_body_rejected() -> None:
    tampered = BODY.replace(b"water", b"power")
    assert _reason(VECTOR_SECRET, _signed(), tampered, NOW) == "no_matching_signature"


@pytest.mark.parametrize("field", ["webhook-id", "webhook-timestamp"])
def test_tampered_metadata_rejected(field: str) -> None:
    h = _signed()
    h[field] = "msg_other" if field == "webhook-id" else str(NOW + 1)
    assert _reason(VECTOR_SECRET, h, BODY, NOW) == "no_matching_signature"


def test_wrong_secret_rejected() -> None:
    assert _reason(generate_secret(), _signed(), BODY, NOW) == "no_matching_signature"


@pytest.mark.parametrize(
    ("received_at", "reason"),
    [
        (NOW + 301, "too_old"),  # sent more than 5 minutes ago: a replay
        (NOW + 3600, "too_old"),
        (NOW - 301, "too_new"),  # stamped more than 5 minutes ahead of our clock
    ],
)
def test_timestamp_outside_tolerance_rejected(received_at: int, reason: str) -> None:
    assert _reason(VECTOR_SECRET, _signed(), BODY, received_at) == reason


@pytest.mark.parametrize("received_at", [NOW - 300, NOW, NOW + 300])
def test_timestamp_within_tolerance_accepted(received_at: int) -> None:
    verify(VECTOR_SECRET, _signed(), BODY, now=received_at)


def test_default_now_is_the_clock() -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(VECTOR_SECRET, _signed(at=NOW), BODY)  # NOW is in 2023
    assert caught.value.reason == "too_old"


@pytest.mark.parametrize("value", ["hello", "1.7e9", "-5", "1700000000.5", " "])
def test_malformed_timestamp_rejected(value: str) -> None:
    h = _signed()
    h["webhook-timestamp"] = value
    assert _reason(VECTOR_SECRET, h, BODY, NOW) == "bad_timestamp"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_rejected(missing: str) -> None:
    h = _signed()
    del h[missing]
    with pytest.raises(WebhookVerificationError, match=missing) as caught:
        verify(VECTOR_SECRET, h, BODY, now=NOW)
    assert caught.value.reason == "missing_header"


def test_rotation_signs_with_every_secret() -> None:
    old, new = generate_secret(), generate_secret()
    h = headers([new, old], MSG_ID, BODY, now=NOW)
    assert len(h["webhook-signature"].split(" ")) == 2
    verify(old, h, BODY, now=NOW)
    verify(new, h, BODY, now=NOW)


def test_one_matching_signature_among_others_is_enough() -> None:
    valid = sign(VECTOR_SECRET, MSG_ID, NOW, BODY)
    h = _signed()
    h["webhook-signature"] = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2," + valid.removeprefix("v1,"),  # unknown version: skipped
            "garbage",
            "v1,not base64!",
            valid,
        ]
    )
    verify(VECTOR_SECRET, h, BODY, now=NOW)


def test_signature_of_another_version_only_is_rejected() -> None:
    h = _signed()
    h["webhook-signature"] = "v1a," + h["webhook-signature"].removeprefix("v1,")
    assert _reason(VECTOR_SECRET, h, BODY, NOW) == "no_matching_signature"


@pytest.mark.parametrize("msg_id", ["", "msg.1"])
def test_sign_refuses_ids_that_would_break_the_format(msg_id: str) -> None:
    with pytest.raises(ValueError):
        sign(VECTOR_SECRET, msg_id, NOW, BODY)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not*base64"])
def test_invalid_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError):
        verify(secret, _signed(), BODY, now=NOW)


def test_generate_secret_size_bounds() -> None:
    with pytest.raises(ValueError):
        generate_secret(16)
