"""The contract of the control message on `correlate.v1`: an incident's new status, told
by the dispatch stage to the correlation owner (so that reports after a resolution reopen
the incident). A typed message of its own, recognised by its `schema` field and the
`citybrain.message` header, never by the bytes it starts with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "citybrain.incident-status/1"
#: the header that names a control message on correlate.v1 (canonical events have none)
MESSAGE_HEADER = "citybrain.message"
MESSAGE_KIND = b"incident_status"


class IncidentStatusModel(BaseModel):
    """An incident's status changed (set by the dispatch stage)."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["citybrain.incident-status/1"] = Field(
        "citybrain.incident-status/1", alias="schema"
    )
    incident_id: str = Field(min_length=1, max_length=100)
    status: str = Field(min_length=1, max_length=40)
