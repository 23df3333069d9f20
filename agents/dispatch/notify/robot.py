"""Group robot delivery (WeCom, DingTalk, Feishu): the task message rendered for people
(`citybrain/dispatch/render.py`), addressed and signed as the platform documents, and the
answer classified (`citybrain/dispatch/robots.py`: a 200 carrying an error code is not a
success).

Each robot is paced under its platform's limit (WeCom and DingTalk about 20 messages a
minute, Feishu 100): a message that would go over is not sent now but given the robot's
next free slot, in the order the messages came, and retried at it (a 429 of our own with
its Retry-After). A robot the platform answered "too fast" is paused for the platform's
wait and every slot after it moves on by as much. Nothing is dropped: the outbox keeps
each message until it is sent or its attempts run out.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp

from citybrain.agents.dispatch.notify import ForPeople
from citybrain.dispatch.outbox import Outcome
from citybrain.dispatch.render import robot_message
from citybrain.dispatch.robots import RATE_PER_MINUTE, Platform, classify, robot_request

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing
    from citybrain.dispatch.channels import RobotEndpoint


class Pace:
    """One robot's schedule: the next free slot, and the slots given to messages held."""

    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / per_minute
        self.next_free = 0.0
        self.held: dict[str, float] = {}  # message id -> its slot

    def slot(self, message_id: str, now: float) -> float:
        """When `message_id` may go: now if its slot (or the next free one) has come, else
        its slot, kept for it."""
        at = self.held.get(message_id)
        if at is None:
            at = max(now, self.next_free)
            self.next_free = at + self.interval
        if at <= now + 0.05:
            self.held.pop(message_id, None)
            return now
        self.held[message_id] = at
        return at

    def pause(self, message_id: str, seconds: float, now: float) -> None:
        """The platform refused `message_id` as "too fast": it goes first once `seconds`
        have passed, and every message held goes after it, in the same order."""
        front = now + seconds
        shift = seconds + self.interval
        self.held = {m: at + shift for m, at in self.held.items()}
        self.held[message_id] = front
        self.next_free = max(self.next_free + shift, front + self.interval)


class RobotNotifier:
    """Posts to the robots of one platform that the worker's channels configure."""

    def __init__(self, ctx: StageContext, platform: Platform) -> None:
        s = ctx.settings
        self.platform: Platform = platform
        self.kind: str = platform
        self.robots: dict[str, RobotEndpoint] = {
            r.name: r for r in ctx.channels.robots.values() if r.platform == platform
        }
        self.timeout = s.webhook_timeout
        self.rate_limit_wait = s.robot_rate_limit_wait
        self.people = ForPeople(ctx)
        self.paces: dict[str, Pace] = {}
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        return None

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        robot = self.robots.get(name)
        if robot is None:
            return Outcome.rejected(f"{self.kind} robot {name} is not configured on this worker")
        pace = self.paces.setdefault(name, Pace(RATE_PER_MINUTE[self.platform]))
        now = time.monotonic()
        at = pace.slot(item.message_id, now)
        if at > now:
            return Outcome.http(429, retry_after_s=at - now, detail="paced: not sent yet")
        message = self.people.render(item.payload, robot.language)
        if isinstance(message, Outcome):
            return message
        request = robot_request(
            self.platform,
            robot.token,
            robot_message(self.platform, message),
            int(datetime.now(UTC).timestamp() * 1000),
            robot.secret,
            robot.base_url,
        )
        try:
            async with self._client().post(
                request.url,
                data=request.body,
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as answer:
                outcome = classify(self.platform, answer.status, await answer.read())
        except TimeoutError:
            return Outcome.timeout(f"no answer within {self.timeout:g}s")
        except aiohttp.ClientError as exc:  # its text may hold the URL, and so the token
            return Outcome.connection_error(masked(f"{type(exc).__name__}: {exc}", robot)[:200])
        if outcome.status == 429 and outcome.retry_after_s:
            if self.rate_limit_wait:
                outcome = Outcome.http(429, self.rate_limit_wait, outcome.detail)
            pace.pause(item.message_id, outcome.retry_after_s or 0.0, time.monotonic())
        return outcome

    async def found(self, name: str, item: Outgoing) -> bool | None:
        """A group cannot be asked what it shows: sent again (at least once)."""
        return False

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(headers={"user-agent": "citybrain-dispatch/1"})
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def masked(text: str, robot: RobotEndpoint) -> str:
    """`text` with the robot's token and signing secret blanked (logs, last_error)."""
    for secret in (robot.token, robot.secret):
        if secret:
            text = text.replace(secret, "***")
    return text
