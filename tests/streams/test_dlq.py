from citybrain.streams.dlq import dead_letter_headers, dlq_topic_name, mask_payload


def test_dead_letter_headers_name_stage_error_and_origin() -> None:
    headers = dict(
        dead_letter_headers(
            stage="normalize",
            error=ValueError("caller 13812345678 unknown"),
            topic="raw.hotline",
            partition=3,
            offset=42,
            feed="hotline-12345",
        )
    )
    assert headers["dlq.stage"] == b"normalize"
    assert headers["dlq.error.class"] == b"ValueError"
    assert headers["dlq.error.message"] == b"caller *******5678 unknown"
    assert headers["dlq.original.topic"] == b"raw.hotline"
    assert headers["dlq.original.partition"] == b"3"
    assert headers["dlq.original.offset"] == b"42"
    assert headers["dlq.feed"] == b"hotline-12345"


def test_payloads_are_masked_and_undecodable_bytes_kept() -> None:
    assert mask_payload(b'{"phone": "13812345678"}') == b'{"phone": "*******5678"}'
    assert mask_payload(b"\xff\xfe") == b"\xff\xfe"
    assert mask_payload(None) is None
    assert dlq_topic_name("raw.iot.smoke") == "raw.iot.smoke.dlq"
