"""The contract of `dispatch.status.v1`: a department's report on one of its tasks.

Sent by the department API (and by departments' own systems through Kafka). Validated with
pydantic; an invalid report goes to the topic's dead-letter topic with the field named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from citybrain.schemas.fields import Strict

SCHEMA_ID = "citybrain.dispatch-status/1"


class StatusReportModel(Strict):
    schema_: Literal["citybrain.dispatch-status/1"] = Field(
        "citybrain.dispatch-status/1", alias="schema"
    )
    report_id: str = Field(min_length=1, max_length=200, description="Idempotency key.")
    dispatch_id: str = Field(min_length=1, max_length=100)
    department: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    status: Literal["acknowledged", "in_progress", "resolved", "rejected"]
    at: AwareDatetime
    actor: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=4000)
    photo_url: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)
    suggested_department: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]*$")

    @model_validator(mode="after")
    def _needs(self) -> StatusReportModel:
        if self.status == "rejected" and not self.reason:
            raise ValueError("a rejection needs a reason")
        for name, value in self:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name} contains a NUL character")
        return self

    @property
    def received(self) -> datetime:
        return self.at
