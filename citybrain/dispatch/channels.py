"""Where a department's messages go: its Kafka topic, its signed webhooks, its group
robots (WeCom, DingTalk, Feishu) and its mailboxes (pure).

A destination is a string: `kafka:dispatch.<dept>.v1`, `webhook:<endpoint name>`,
`wecom:<robot>`, `dingtalk:<robot>`, `feishu:<robot>` or `email:<mailbox>`. A webhook's
signing secret, a robot's token and signing secret come from the environment variables
its channel names; a channel whose variable is unset is left out (an unsigned webhook is
never called, a robot without its token cannot be) and reported by `disabled`, so that
the worker can say so at start. The variables come from the process
environment or the `.env` file, as every setting does (`citybrain.settings.environment`);
a variable may hold several secrets (rotation: the new one first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from citybrain.dispatch.render import Language
from citybrain.dispatch.robots import Platform
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
class RobotEndpoint:
    """A group robot with its token and signing secret read from the environment."""

    name: str
    department: str
    platform: Platform
    token: str
    secret: str | None
    base_url: str | None
    language: Language


@dataclass(frozen=True)
class MailboxEndpoint:
    name: str
    department: str
    to: tuple[str, ...]
    language: Language


@dataclass(frozen=True)
class Channels:
    destinations: Mapping[str, tuple[str, ...]]  # department -> destinations
    endpoints: Mapping[str, Endpoint]  # webhook name -> endpoint
    disabled: tuple[str, ...] = field(default=())  # channels whose variables are unset
    robots: Mapping[str, RobotEndpoint] = field(default_factory=dict)  # "<platform>:<name>"
    mailboxes: Mapping[str, MailboxEndpoint] = field(default_factory=dict)  # mailbox name

    @classmethod
    def of(cls, routing: Routing, environ: Mapping[str, str]) -> Channels:
        destinations: dict[str, tuple[str, ...]] = {}
        endpoints: dict[str, Endpoint] = {}
        robots: dict[str, RobotEndpoint] = {}
        mailboxes: dict[str, MailboxEndpoint] = {}
        disabled: list[str] = []
        for code, department in routing.by_code.items():
            out: list[str] = []
            for channel in department.channels:
                robot = channel.robot
                if channel.kafka:
                    out.append(f"kafka:{dispatch_topic_name(code)}")
                elif robot is not None:
                    platform: Platform = channel.kind  # type: ignore[assignment]
                    token = environ.get(robot.token_env, "").strip()
                    signing = (
                        environ.get(robot.secret_env, "").strip() if robot.secret_env else None
                    )
                    if not token or (robot.secret_env and not signing):
                        unset = robot.token_env if not token else robot.secret_env
                        disabled.append(f"{code}/{platform}:{robot.name} (set {unset})")
                        continue
                    robots[f"{platform}:{robot.name}"] = RobotEndpoint(
                        robot.name, code, platform, token, signing, robot.base_url, robot.language
                    )
                    out.append(f"{platform}:{robot.name}")
                elif channel.email is not None:
                    box = channel.email
                    mailboxes[box.name] = MailboxEndpoint(
                        box.name, code, tuple(box.to), box.language
                    )
                    out.append(f"email:{box.name}")
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
        return cls(destinations, endpoints, tuple(disabled), robots, mailboxes)

    def of_department(self, department: str) -> tuple[str, ...]:
        return self.destinations.get(department, ())

    def kafka_topics(self) -> list[str]:
        return sorted(
            d.removeprefix("kafka:")
            for dests in self.destinations.values()
            for d in dests
            if d.startswith("kafka:")
        )
