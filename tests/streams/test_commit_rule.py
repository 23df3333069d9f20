"""The commit rule of `streams.transport.Consumer`: the committed offset never passes an
offset that was read and not yet acked (faust-streaming issue 606), and Faust's own rule,
which does, for the record."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from intervaltree import IntervalTree

from citybrain.streams.transport import Consumer, next_commit

TP0 = TP("events.v1", 0)


def bare(cls: Any, committed: int | None, acked: list[int], first: int | None) -> Any:
    """A consumer with only the bookkeeping the commit rule reads (no broker, no app)."""
    c = cls.__new__(cls)
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    c._gap = defaultdict(IntervalTree)
    c._committed_offset = defaultdict(lambda: None)
    c._committed_offset[TP0] = committed
    c._acked[TP0] = list(acked)
    c._acked_index[TP0] = set(acked)
    c._first_read = {} if first is None else {TP0: first}
    c.app = SimpleNamespace(consumer_generation_id=1)
    return c


# committed, first offset read, acked, what to commit (None: nothing)
CASES = [
    # nothing committed yet: the head is the first offset read
    (None, 0, [0, 1, 2], 3),
    (None, 0, [1, 2, 3], None),  # hole at the head: 0 is still being processed
    (None, 0, [0, 1, 3, 4], 2),  # hole in the middle
    (None, 10, [10, 11], 12),  # the group started at offset 10
    (None, 10, [11, 12], None),
    (None, None, [3, 4], None),  # acks but no read known: commit nothing
    # committed 0
    (0, 0, [0, 1, 2], 3),
    (0, 0, [1, 2], None),
    (0, 0, [0, 2], 1),
    (0, None, [1, 2], None),
    # committed 5
    (5, 5, [5, 6, 7], 8),
    (5, 5, [6, 7], None),  # Faust commits 8 here
    (5, 5, [7, 8], None),
    (5, 5, [5, 6, 8, 9], 7),
    (5, None, [5, 6], 7),
    (5, 7, [7, 8], 9),  # 5 and 6 were never delivered (compacted, markers)
    (5, 3, [5, 6], 7),  # read from before the commit: the commit is the head
]


@pytest.mark.parametrize(("committed", "first", "acked", "expected"), CASES)
def test_commit_never_passes_a_read_unacked_offset(
    committed: int | None, first: int | None, acked: list[int], expected: int | None
) -> None:
    c = bare(Consumer, committed, acked, first)
    assert c._new_offset(TP0) == expected
    # what was not committed stays for the next time (below the head: committed before)
    heads = [h for h in (committed, first) if h is not None]
    kept_from = expected if expected is not None else max(heads, default=0)
    assert c._acked[TP0] == [o for o in acked if o >= kept_from]
    assert c._acked_index[TP0] == set(c._acked[TP0])


@pytest.mark.parametrize(
    ("committed", "acked", "faust_commits", "unacked"),
    [
        (None, [1, 2, 3], 4, 0),  # no commit yet: the head is not checked at all
        (0, [1, 2, 3], 4, 0),  # committed 0: not checked either (0 is falsy)
        (5, [6, 7], 8, 5),  # off by one: 5 is read, not acked, and committed past
    ],
)
def test_faust_rule_commits_past_an_unacked_head(
    committed: int | None, acked: list[int], faust_commits: int, unacked: int
) -> None:
    """Why the override exists. If this fails, Faust fixed issue 606 and the override
    may go."""
    c = bare(faust_aiokafka.Consumer, committed, acked, None)
    got = c._new_offset(TP0)
    assert got == faust_commits and got > unacked
    assert bare(Consumer, committed, acked, unacked)._new_offset(TP0) is None


def test_commits_resume_once_the_slow_offset_is_acked() -> None:
    c = bare(Consumer, 5, [6, 7, 8], 5)
    assert c._new_offset(TP0) is None
    c._acked[TP0].append(5)
    c._acked_index[TP0].add(5)
    assert c._new_offset(TP0) == 9
    assert c._acked[TP0] == [] and c._acked_index[TP0] == set()


def test_gap_excludes_the_offset_read_after_it() -> None:
    """Read 5, 6, then 9 (7 and 8 compacted away), then 10; 9 is in flight, 10 acked. The
    gap is 7-8. Faust's gap held 9 too and committed 11 while 9 was in flight."""
    ours = bare(Consumer, 5, [5, 6, 10], 5)
    faust = bare(faust_aiokafka.Consumer, 5, [5, 6, 10], 5)
    for c in (ours, faust):
        asyncio.run(c._add_gap(TP0, 7, 9))  # as the drain loop calls it: (6 + 1, 9)
    assert faust._new_offset(TP0) == 11
    assert ours._new_offset(TP0) == 9
    ours._committed_offset[TP0] = 9  # as the commit does
    ours._acked[TP0].append(9)
    assert ours._new_offset(TP0) == 11


def test_first_read_is_kept_until_a_seek_or_revoke() -> None:
    c = bare(Consumer, None, [], None)
    record = SimpleNamespace(
        topic="events.v1",
        partition=0,
        offset=0,
        timestamp=None,
        timestamp_type=0,
        headers=[],
        key=None,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
    )
    c._to_message(TP0, record)
    c._to_message(TP0, SimpleNamespace(**{**vars(record), "offset": 1}))
    assert c._first_read == {TP0: 0}


@pytest.mark.parametrize(
    ("acked", "head", "expected"),
    [
        ([], 0, (None, 0)),
        ([0, 1, 2], 0, (3, 3)),
        ([1, 2], 0, (None, 0)),
        ([0, 1, 3], 0, (2, 2)),
        ([2, 3, 5, 6], 5, (7, 4)),  # entries below the head were committed: dropped
        ([2, 3, 6], 5, (None, 2)),
    ],
)
def test_next_commit(acked: list[int], head: int, expected: tuple[int | None, int]) -> None:
    assert next_commit(acked, head) == expected
