"""Acknowledgements in arrival order (pure): the MQTT bridge acknowledges a message to the
broker only once Kafka has it, and, as MQTT requires (3.1.1 and 5, section 4.6: PUBACK
in the order the PUBLISH packets arrived), only once every message that came
before it on the same connection is acknowledged too.

A message is `arrived` (a ticket), later `written` (Kafka acknowledged it, or its dead
letter); `written` returns the messages whose acknowledgement may now be sent, oldest
first. A lost connection `reset`s it: the broker sends again what was not acknowledged,
and a ticket of an earlier connection releases nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Ticket:
    """One message's place: its connection (generation) and its arrival number."""

    generation: int
    seq: int


class InOrderAcks(Generic[T]):
    """The messages of the current connection awaiting their acknowledgement, in order."""

    def __init__(self) -> None:
        self.generation = 0
        self._next = 0
        self._waiting: deque[list[object]] = deque()  # [seq, item, written]
        self._index: dict[int, list[object]] = {}

    def arrived(self, item: T) -> Ticket:
        """Record a message as it arrives; its ticket."""
        seq = self._next
        self._next += 1
        entry: list[object] = [seq, item, False]
        self._waiting.append(entry)
        self._index[seq] = entry
        return Ticket(self.generation, seq)

    def written(self, ticket: Ticket) -> list[T]:
        """The message of `ticket` is written: the messages now to acknowledge, in arrival
        order (none while an earlier one is not written, none for a past connection)."""
        if ticket.generation != self.generation:
            return []
        entry = self._index.get(ticket.seq)
        if entry is None:
            return []
        entry[2] = True
        released: list[T] = []
        while self._waiting and self._waiting[0][2]:
            seq, item, _ = self._waiting.popleft()
            del self._index[seq]  # type: ignore[arg-type]
            released.append(item)  # type: ignore[arg-type]
        return released

    def reset(self) -> int:
        """The connection is gone: forget its messages; how many were not acknowledged."""
        dropped = len(self._waiting)
        self.generation += 1
        self._waiting.clear()
        self._index.clear()
        return dropped

    @property
    def waiting(self) -> int:
        """Messages of this connection not yet acknowledged."""
        return len(self._waiting)
