"""Exponential backoff with full jitter, as a pure schedule (no sleeping here)."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Seconds before retry `attempt` (1-based): uniform in [0, min(cap, base * 2^(n-1))]."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return (rng or random).uniform(0, ceiling)
