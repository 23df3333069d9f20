"""Where a department's messages go: its Kafka topic and its signed webhooks (pure).

A destination is a string: `kafka:dispatch.<dept>.v1` or `webhook:<endpoint name>`. A
webhook's signing secret comes from the environment variable its channel names; a webhook
whose variable is unset is left out (an unsigned webhook is never called) and reported by
`disabled`, so that the worker can say so at start. The variables come from the process
environment or the `.env` file, as every setting does (`citybrain.settings.environment`);
a variable may hold several secrets (rotation: the new one first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from citybrain.dispatch.routing import Routing


def dispatch_topic_name(department: str) -> str:
    """The Kafka topic a department's tasks are published to."""
    return f"dispatch.{department}.v1"


@dataclass(frozen=True)
class Endpoint:
    name: str
    department: str
    url: str
    #: the signing secrets, the newest first: while a secret is rotated the variable holds
    #: the new and the old one (space or comma separated) and messages carry both signatures
    secret: tuple[str, ...]


@dataclass(frozen=True)
class Channels:
    destinations: Mapping[str, tuple[str, ...]]  # department -> destinations
    endpoints: Mapping[str, Endpoint]  # webhook name -> endpoint
    disabled: tuple[str, ...] = field(default=())  # webhooks without a secret

    @classmethod
    def of(cls, routing: Routing, environ: Mapping[str, str]) -> Channels:
        destinations: dict[str, tuple[str, ...]] = {}
        endpoints: dict[str, Endpoint] = {}
        disabled: list[str] = []
        for code, department in routing.by_code.items():
            out: list[str] = []
            for channel in department.channels:
                if channel.kafka:
                    out.append(f"kafka:{dispatch_topic_name(code)}")
                elif channel.webhook is not None:
                    hook = channel.webhook
                    secret = tuple(re.split(r"[\s,]+", environ.get(hook.secret_env, "").strip()))
                    secret = tuple(s for s in secret if s)
                    if not secret:
                        disabled.append(f"{code}/{hook.name} (set {hook.secret_env})")
                        continue
                    endpoints[hook.name] = Endpoint(hook.name, code, hook.url, secret)
                    out.append(f"webhook:{hook.name}")
            destinations[code] = tuple(out)
        return cls(destinations, endpoints, tuple(disabled))

    def of_department(self, department: str) -> tuple[str, ...]:
        return self.destinations.get(department, ())

    def kafka_topics(self) -> list[str]:
        return sorted(
            d.removeprefix("kafka:")
            for dests in self.destinations.values()
            for d in dests
            if d.startswith("kafka:")
        )
