import random

import pytest

from citybrain.backoff import backoff_delay


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.2), (2, 0.4), (3, 0.8), (10, 30.0)])
def test_delay_stays_under_the_exponential_ceiling(attempt: int, ceiling: float) -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=0.2, cap=30.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.8  # full jitter uses the whole range


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0)
