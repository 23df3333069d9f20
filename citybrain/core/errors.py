"""The one error a stage raises for a record it cannot process (pure)."""

from __future__ import annotations


class InvalidRecord(ValueError):
    """A record that cannot be processed; `reason` is its dead-letter reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
