"""Worker roles fill in the recommended deployment's settings; the environment wins, and the
telemetry role always reads in a consumer group of its own."""

from __future__ import annotations

from typing import Any

import pytest

from citybrain.roles import ROLE_DEFAULTS, role_overrides
from citybrain.settings import Settings


@pytest.mark.parametrize(
    ("role", "env", "expected"),
    [
        ("all", {}, {"app_id": "citybrain", "stages": "all", "normalize_feeds": "all"}),
        (
            "telemetry",
            {},
            {
                "app_id": "citybrain-telemetry",
                "stages": "normalize",
                "normalize_feeds": "telemetry",
                "worker_nice": 10,
                "kafka_linger_ms": 5,
            },
        ),
        (
            "reports",
            {},
            {
                "app_id": "citybrain",
                "stages": "all",
                "normalize_feeds": "reports",
                "kafka_linger_ms": 0,
            },
        ),
        # a setting given in the environment wins over the role's
        ("telemetry", {"CITYBRAIN_WORKER_NICE": "19"}, {"worker_nice": 19}),
        ("reports", {"CITYBRAIN_KAFKA_LINGER_MS": "2"}, {"kafka_linger_ms": 2}),
        # the deployment's app id, the telemetry group derived from it (once)
        ("telemetry", {"CITYBRAIN_APP_ID": "qd"}, {"app_id": "qd-telemetry"}),
        ("telemetry", {"CITYBRAIN_APP_ID": "qd-telemetry"}, {"app_id": "qd-telemetry"}),
        ("reports", {"CITYBRAIN_APP_ID": "qd"}, {"app_id": "qd"}),
    ],
)
def test_a_role_fills_in_what_the_environment_leaves_open(
    monkeypatch: pytest.MonkeyPatch, role: str, env: dict[str, str], expected: dict[str, Any]
) -> None:
    monkeypatch.setenv("CITYBRAIN_WORKER_ROLE", role)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert {k: getattr(s, k) for k in expected} == expected


def test_every_role_default_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    for role, defaults in ROLE_DEFAULTS.items():
        assert set(defaults) <= fields, role


def test_an_unknown_role_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYBRAIN_WORKER_ROLE", "everything")
    with pytest.raises(ValueError, match="worker_role"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_overrides_leave_explicit_settings_alone() -> None:
    assert role_overrides("telemetry", "x", {"stages", "worker_nice"}) == {
        "normalize_feeds": "telemetry",
        "kafka_linger_ms": 5,
        "app_id": "x-telemetry",
    }
