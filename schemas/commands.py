"""The contract of `commands.v1`: operators' decisions, applied by the stage that owns the
state they change (idempotent by `command_id`, recorded with who, when and why).

- the correlation owner (`OWNED_BY_CORRELATION`): place an incident, merge two (an accepted
  merge suggestion is a merge), dismiss a suggestion, split reports out into a new incident;
- the dispatch stage: a deadline extension the center approved, assign or reassign a
  department by hand, urge a task, close an incident after checking it, reopen it, record
  the citizen's callback.

Each command is one JSON object whose `command` field names its kind (`Command` reads any
of them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel

SCHEMA_ID = "citybrain.command/1"
#: an ISO-8601 instant must end in its offset (readers without a date-time format check)
WITH_OFFSET = r"(Z|[+-][0-9]{2}:[0-9]{2})$"
ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
CODE = r"^[a-z0-9][a-z0-9-]*$"


class _Command(BaseModel):
    """What every command carries: its id, who decided, why and when."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["citybrain.command/1"] = Field("citybrain.command/1", alias="schema")
    command_id: str = Field(min_length=1, max_length=200, description="Idempotency key.")
    actor: str = Field(min_length=1, max_length=200, description="Who decided.")
    reason: str = Field(min_length=1, max_length=2000, description="Why.")
    at: AwareDatetime = Field(
        description="When it was decided.", json_schema_extra={"pattern": WITH_OFFSET}
    )

    @property
    def decided_at(self) -> datetime:
        return self.at


class ExtendDeadlineCommand(_Command):
    """Move a task's resolve deadline (an extension the operations center approved)."""

    command: Literal["extend_deadline"] = "extend_deadline"
    dispatch_id: str = Field(min_length=1, max_length=100, pattern=ID)
    resolve_deadline: AwareDatetime = Field(json_schema_extra={"pattern": WITH_OFFSET})


class PlaceCommand(_Command):
    """Give an incident placed only by its district (or not at all) its place: a point on
    the map or a register entry's point, WGS-84. It is geo-tagged and routed again."""

    command: Literal["place"] = "place"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    address: str | None = Field(None, max_length=500, description="What the point is.")


class MergeCommand(_Command):
    """`incident_id` is the same problem as `into`: its reports join `into`, its open tasks
    are cancelled (their departments told), and it is closed as merged."""

    command: Literal["merge"] = "merge"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    into: str = Field(min_length=1, max_length=100, pattern=ID)


class DismissSuggestionCommand(_Command):
    """A merge suggestion is wrong: it is no longer offered."""

    command: Literal["dismiss_suggestion"] = "dismiss_suggestion"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    candidate_id: str = Field(min_length=1, max_length=100, pattern=ID)


class SplitCommand(_Command):
    """Some of an incident's reports are another problem: they leave it for a new incident
    of their own, which is routed as any new incident is."""

    command: Literal["split"] = "split"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    event_ids: list[str] = Field(min_length=1, max_length=500)


class AssignCommand(_Command):
    """Give an incident's task to a department by hand (when no route fits, or every
    department rejected it); with `replaces`, that department's open task is cancelled
    (a reassignment, 改派). `resolve_deadline` overrides the SLA's."""

    command: Literal["assign"] = "assign"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    department: str = Field(min_length=1, max_length=64, pattern=CODE)
    role: Literal["lead", "helper"] = "lead"
    replaces: str | None = Field(None, min_length=1, max_length=64, pattern=CODE)
    resolve_deadline: AwareDatetime | None = Field(None, json_schema_extra={"pattern": WITH_OFFSET})


class UrgeCommand(_Command):
    """Urge a department on an open task (督办): a `task.urged` message to it."""

    command: Literal["urge"] = "urge"
    dispatch_id: str = Field(min_length=1, max_length=100, pattern=ID)


class CloseCommand(_Command):
    """Close an incident whose tasks are all resolved (办结), after checking the result."""

    command: Literal["close"] = "close"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    verification: Literal["sensor_normal", "onsite_check", "callback"]


class ReopenCommand(_Command):
    """Open a resolved or closed incident again: its resolved tasks are dispatched again."""

    command: Literal["reopen"] = "reopen"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)


class CallbackCommand(_Command):
    """The citizen's callback (回访): satisfied, unsatisfied (the incident is reopened) or
    unreachable."""

    command: Literal["callback"] = "callback"
    incident_id: str = Field(min_length=1, max_length=100, pattern=ID)
    outcome: Literal["satisfied", "unsatisfied", "unreachable"]


AnyCommand = Annotated[
    ExtendDeadlineCommand
    | PlaceCommand
    | MergeCommand
    | DismissSuggestionCommand
    | SplitCommand
    | AssignCommand
    | UrgeCommand
    | CloseCommand
    | ReopenCommand
    | CallbackCommand,
    Field(discriminator="command"),
]


class Command(RootModel[AnyCommand]):
    """Any command, by its `command` field."""


#: the commands the correlation owner applies; the dispatch stage applies the others
OWNED_BY_CORRELATION = frozenset({"place", "merge", "dismiss_suggestion", "split"})


def target_of(command: AnyCommand) -> str:
    """What a command is about (its key on the topic): the incident, or the task."""
    return str(getattr(command, "incident_id", None) or getattr(command, "dispatch_id", ""))
