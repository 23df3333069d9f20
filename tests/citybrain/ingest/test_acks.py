"""Acknowledgements in arrival order: a message is acknowledged only once it and every
message before it on the connection are written; a lost connection forgets them."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from citybrain.ingest.acks import InOrderAcks


def test_a_later_message_written_first_waits_for_the_earlier_one() -> None:
    acks: InOrderAcks[str] = InOrderAcks()
    a, b, c = acks.arrived("a"), acks.arrived("b"), acks.arrived("c")
    assert acks.written(c) == []
    assert acks.written(b) == []
    assert acks.waiting == 3
    assert acks.written(a) == ["a", "b", "c"]
    assert acks.waiting == 0


def test_in_order_writes_are_acknowledged_one_by_one() -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    tickets = [acks.arrived(i) for i in range(3)]
    assert [acks.written(t) for t in tickets] == [[0], [1], [2]]


def test_a_ticket_of_a_lost_connection_releases_nothing() -> None:
    acks: InOrderAcks[str] = InOrderAcks()
    old = acks.arrived("old")
    assert acks.reset() == 1
    new = acks.arrived("new")
    assert acks.written(old) == []  # the broker sends "old" again on the new connection
    assert acks.written(new) == ["new"]
    assert acks.written(new) == []  # twice: nothing more


@given(st.integers(1, 60), st.randoms(use_true_random=False))
def test_any_write_order_acknowledges_everything_in_arrival_order(
    count: int, rng: random.Random
) -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    tickets = [acks.arrived(i) for i in range(count)]
    rng.shuffle(tickets)
    released: list[int] = []
    written: set[int] = set()
    for ticket in tickets:
        written.add(ticket.seq)
        out = acks.written(ticket)
        # never one whose own write, or an earlier message's, is still to come
        assert all(set(range(i + 1)) <= written for i in out)
        released += out
    assert released == list(range(count))
