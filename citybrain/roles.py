"""Worker roles: the recommended deployment as data.

A role fills in the settings a worker of that kind needs, unless the environment sets them
itself. `telemetry` reads the feeds that send readings, in a consumer group of its own
(`<app id>-telemetry`), at a low CPU priority, with large bounded batches and the database's
bulk lane; `reports` reads the alarm and call feeds and runs every other stage with the
lowest-latency producer; `all` (the default) changes nothing: one worker does everything.
"""

from __future__ import annotations

from typing import Any, Literal

Role = Literal["all", "telemetry", "reports"]

#: per role, the settings it fills in (a setting given in the environment wins)
ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "all": {},
    "telemetry": {
        "stages": "normalize",
        "normalize_feeds": "telemetry",
        "worker_nice": 10,
        "kafka_linger_ms": 5,
    },
    "reports": {
        "normalize_feeds": "reports",
        "kafka_linger_ms": 0,
    },
}

#: the consumer group suffix of a role (its app id is the deployment's plus this)
GROUP_SUFFIX: dict[str, str] = {"all": "", "telemetry": "-telemetry", "reports": ""}


def role_overrides(role: str, app_id: str, explicit: set[str]) -> dict[str, Any]:
    """The settings `role` sets: its defaults for the fields not in `explicit`, and its
    consumer group's app id (`app_id` plus the role's suffix, once)."""
    out = {k: v for k, v in ROLE_DEFAULTS[role].items() if k not in explicit}
    suffix = GROUP_SUFFIX[role]
    if suffix and not app_id.endswith(suffix):
        out["app_id"] = app_id + suffix
    return out
