"""The event bus: an append-only log with one consumer group per reader (Redis Streams semantics).

Three implementations share one contract (tests/test_bus_contract.py): `RedisStreamBus` for scale-out,
`SqlBus` for the embedded default (an outbox in the system of record's database: a publish is
committed before it returns) and `MemoryBus` (in process, nothing durable: tests and benchmarks).
Positions are Redis Stream ids ("<ms>-<seq>"), comparable as (int, int) pairs, and are the resume
points of every consumer; `SqlBus` writes "0-<seq>", so its first part is not a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry handed to a consumer: its position in the log and the encoded event."""

    position: str
    data: bytes
    #: How many times this entry has been delivered to the group (1 on first delivery).
    deliveries: int = 1
    #: When the entry was published (ms since the epoch), where the position does not say it:
    #: `SqlBus` fills it; on Redis and in memory it is None and the position's first part is that
    #: time. Not part of equality: it describes the entry, it does not identify it.
    published_ms: int | None = field(default=None, compare=False)


@runtime_checkable
class Bus(Protocol):
    """An append-only, bounded log of encoded events, read through consumer groups."""

    async def publish(self, items: Sequence[bytes]) -> list[str]:
        """Append `items` in order (atomically where the backend can); their positions."""
        ...

    async def ensure_group(self, group: str) -> None:
        """Create consumer group `group` reading from the start of the log, if it does not exist."""
        ...

    async def read(self, group: str, consumer: str, *, count: int, block_ms: int) -> list[Delivery]:
        """New entries for `consumer` (never delivered to the group before), waiting up to
        `block_ms` for the first; they stay pending until acknowledged."""
        ...

    async def ack(self, group: str, positions: Sequence[str]) -> None:
        """Mark entries processed by the group; acking twice is harmless."""
        ...

    async def claim_stale(
        self, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over entries pending longer than `min_idle_ms` (a crashed consumer's), like
        XAUTOCLAIM; they are delivered again, with `deliveries` incremented."""
        ...

    async def pending_count(self, group: str) -> int:
        """Entries delivered to the group and not yet acknowledged."""
        ...

    async def length(self) -> int:
        """Entries currently in the log (bounded by the backend's max length)."""
        ...

    async def aclose(self) -> None: ...


def parse_position(position: str) -> tuple[int, int]:
    """ "<ms>-<seq>" as a comparable pair."""
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)
