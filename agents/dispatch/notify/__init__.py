"""Delivery adapters of the dispatch stage, one module per channel (as Alertmanager's
`notify/<receiver>/`): each is a `Notifier` that sends one task message to one named
destination and returns the attempt's `Outcome` without raising, so that the outbox
records every attempt. A destination is `<kind>:<name>` (`citybrain.dispatch.channels`);
a new channel is a module here and a line in `notifiers`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from citybrain.dispatch.outbox import Outcome
from citybrain.dispatch.render import Language, Rendered, render
from citybrain.logs import get_logger

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing

log = get_logger(__name__)


class Notifier(Protocol):
    """Sends task messages over one kind of channel."""

    kind: str

    async def start(self) -> None:
        """Prepare before the first send (declare topics, open sessions)."""

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        """Send `body` (the task message) to the destination called `name`."""

    async def found(self, name: str, item: Outgoing) -> bool | None:
        """Whether the message is at its destination already (asked before sending again
        after a worker died mid-delivery, or after an attempt whose answer never came):
        True, False, or None when it cannot tell yet (an earlier send of this worker still
        unanswered, a lookup that could not read to the end). A channel that can never tell
        (a webhook) answers False: it is sent again, at least once."""

    async def close(self) -> None:
        """Release what `start` took."""


async def send_once(notifier: Notifier, item: Outgoing, body: bytes) -> Outcome:
    """Send a delivery, unless it may be at its destination already (its worker died after
    sending and before recording, or the last attempt's answer never came) and it is. When
    the channel cannot tell yet, the attempt is an unanswered one (retried later, looked
    for again), except the last: that one sends (at least once, never lost)."""
    name = item.delivery.destination.split(":", 1)[1]
    if item.may_be_there:
        there = await notifier.found(name, item)
        why = "a lost lease" if item.lease_lost else "an unanswered attempt"
        if there:
            log.info(f"delivery found after {why}", message_id=item.message_id)
            return Outcome.http(200, detail=f"at the destination already ({why})")
        if there is None and item.delivery.attempts + 1 < item.delivery.max_attempts:
            log.info(f"delivery unknown after {why}; asked again later", message_id=item.message_id)
            return Outcome.timeout("cannot tell yet whether an earlier send arrived")
    return await notifier.send(name, item, body)


def notifiers(ctx: StageContext) -> dict[str, Notifier]:
    """The worker's notifiers by destination kind."""
    from citybrain.agents.dispatch.notify.email import EmailNotifier
    from citybrain.agents.dispatch.notify.kafka import KafkaNotifier
    from citybrain.agents.dispatch.notify.robot import RobotNotifier
    from citybrain.agents.dispatch.notify.webhook import WebhookNotifier

    found: list[Notifier] = [KafkaNotifier(ctx), WebhookNotifier(ctx)]
    platforms = {robot.platform for robot in ctx.channels.robots.values()}
    found += [RobotNotifier(ctx, platform) for platform in sorted(platforms)]
    if ctx.channels.mailboxes:
        found.append(EmailNotifier(ctx))
    return {n.kind: n for n in found}


class Unconfigured:
    """The notifier of a kind this worker does not have: every send is rejected."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def start(self) -> None:
        return None

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        return Outcome.rejected(f"no {self.kind} notifier on this worker")

    async def found(self, name: str, item: Outgoing) -> bool | None:
        return False

    async def close(self) -> None:
        return None


class ForPeople:
    """How this worker renders task messages for people (robots, e-mail): its console's
    address for the links, the city's time zone and its districts' names."""

    def __init__(self, ctx: StageContext) -> None:
        s = ctx.settings
        self.public_url = s.public_url or f"http://{s.api_host}:{s.api_port}"
        self.timezone = ctx.dispatch.policy.working_hours.timezone
        self.district_names = {r.code: r.name for r in ctx.pack.regions.get("district", [])}

    def render(self, payload: Mapping[str, Any], language: Language) -> Rendered | Outcome:
        """The message, or (a payload the templates cannot read) a rejection naming why: it
        goes to the delivery dead letters instead of failing the outbox pass."""
        try:
            return render(
                payload,
                language=language,
                console_url=self.public_url,
                district_names=self.district_names,
                timezone=self.timezone,
            )
        except (KeyError, ValueError, TypeError) as exc:
            return Outcome.rejected(f"cannot render the message: {type(exc).__name__}: {exc}")
