import pytest

from citybrain.settings import Settings


def test_environment_variables_with_the_prefix_configure_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    monkeypatch.setenv("CITYBRAIN_DB_PORT", "6543")
    monkeypatch.setenv("CITYBRAIN_DB_PASSWORD", "s3cr&t")
    s = Settings()
    assert s.kafka_bootstrap_list == ["k1:9092", "k2:9093"]
    assert s.kafka_broker_url == "kafka://k1:9092;kafka://k2:9093"
    assert "6543" in s.conninfo()
    assert "s3cr%26t" in s.conninfo()  # password is URL-quoted


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYBRAIN_DB_PASSWORD", "hunter2")
    s = Settings()
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump())
    assert "hunter2" not in s.safe_conninfo()


def test_database_url_overrides_the_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", "postgresql://u:pw@db.example:5439/x")
    s = Settings()
    assert s.conninfo() == "postgresql://u:pw@db.example:5439/x"
    assert s.safe_conninfo() == "postgresql://u@db.example:5439/x"


def test_invalid_values_are_rejected_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYBRAIN_DB_PORT", "not-a-port")
    with pytest.raises(ValueError, match="db_port"):
        Settings()


@pytest.mark.parametrize(
    ("lease", "webhook_timeout", "accepted"),
    [
        ("60", "5", True),  # the defaults
        ("20", "5", True),  # exactly 3 x 5 + 5
        ("19.9", "5", False),
        ("15", "3", True),
        ("30", "10", False),
        ("4", "0.1", False),  # under the floor of 5 s
    ],
)
def test_a_delivery_lease_must_outlast_the_slowest_send(
    monkeypatch: pytest.MonkeyPatch, lease: str, webhook_timeout: str, accepted: bool
) -> None:
    monkeypatch.setenv("CITYBRAIN_DELIVERY_LEASE", lease)
    monkeypatch.setenv("CITYBRAIN_WEBHOOK_TIMEOUT", webhook_timeout)
    if accepted:
        assert Settings().delivery_lease == float(lease)
    else:
        with pytest.raises(ValueError, match=r"delivery_lease|CITYBRAIN_DELIVERY_LEASE"):
            Settings()


@pytest.mark.parametrize(
    ("session", "heartbeat", "expected"),
    [
        ("30", None, 3.0),  # the default: a third of the session, at most 3 s
        ("8", None, 8 / 3),
        ("8", "1", 1.0),
        ("8", "8", None),  # not shorter than the session: refused
        ("8", "9", None),
    ],
)
def test_the_heartbeat_is_a_third_of_the_session_unless_set_shorter(
    monkeypatch: pytest.MonkeyPatch, session: str, heartbeat: str | None, expected: float | None
) -> None:
    monkeypatch.setenv("CITYBRAIN_KAFKA_SESSION_TIMEOUT", session)
    if heartbeat is not None:
        monkeypatch.setenv("CITYBRAIN_KAFKA_HEARTBEAT_INTERVAL", heartbeat)
    if expected is None:
        with pytest.raises(ValueError, match="CITYBRAIN_KAFKA_HEARTBEAT_INTERVAL"):
            Settings()
    else:
        assert Settings().kafka_heartbeat_s == pytest.approx(expected)
