"""The contract of `commands.v1`: operators' decisions, applied by the stage that owns the
state they change (idempotent by `command_id`, recorded with who, when and why).

Today: `extend_deadline`, an approved deadline extension, applied to the task by the
dispatch stage's `status` agents (the only writer of `dispatches`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_ID = "citybrain.command/1"
#: an ISO-8601 instant must end in its offset (readers without a date-time format check)
WITH_OFFSET = r"(Z|[+-][0-9]{2}:[0-9]{2})$"


class ExtendDeadlineCommand(BaseModel):
    """Move a task's resolve deadline (an extension the operations center approved)."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["citybrain.command/1"] = Field("citybrain.command/1", alias="schema")
    command: Literal["extend_deadline"] = "extend_deadline"
    command_id: str = Field(min_length=1, max_length=200, description="Idempotency key.")
    dispatch_id: str = Field(min_length=1, max_length=100)
    resolve_deadline: AwareDatetime = Field(json_schema_extra={"pattern": WITH_OFFSET})
    actor: str = Field(min_length=1, max_length=200, description="Who decided.")
    reason: str = Field(min_length=1, max_length=2000, description="Why.")
    at: AwareDatetime = Field(
        description="When it was decided.", json_schema_extra={"pattern": WITH_OFFSET}
    )

    @property
    def decided_at(self) -> datetime:
        return self.at
