"""What every request body of the API shares (pure)."""

from __future__ import annotations

from pydantic import BaseModel, model_validator


class Text(BaseModel):
    """Request bodies: no NUL characters in any text (no text column can store one)."""

    @model_validator(mode="after")
    def _no_nul(self) -> Text:
        for name, value in self:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name} contains a NUL character")
        return self
