"""`MemoryBus`: the event bus in process, with the semantics of a Redis Stream and its consumer groups.

For the embedded default: one asyncio event loop, no persistence. Behaviour follows Redis wherever
the contract can see it, including the odd parts: an entry trimmed away while pending stays counted
by `pending_count` until acknowledged or swept out by `claim_stale` (as XAUTOCLAIM does in Redis 7).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from data_sources.bus import Delivery

#: Below this many dead slots at the front of the log, trimming does not bother compacting it.
_COMPACT_AFTER = 1024


@dataclass(frozen=True, slots=True)
class _Entry:
    position: str
    data: bytes


@dataclass(slots=True)
class _Pending:
    index: int  # absolute index of the entry in the log, to find its data again
    consumer: str
    delivered_at: float  # time.monotonic()
    deliveries: int = 1


@dataclass(slots=True)
class _Group:
    next_index: int = 0  # absolute index of the first entry never delivered to the group
    # Insertion order is position order: reads only ever add positions beyond every earlier one.
    pending: dict[str, _Pending] = field(default_factory=dict)


class MemoryBus:
    """A bounded in-process log read through consumer groups, like a Redis Stream."""

    def __init__(self, maxlen: int = 1_000_000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        self._maxlen = maxlen
        # A list with a moving head rather than a deque: reads index into the middle, in O(1).
        self._log: list[_Entry] = []
        self._head = 0  # index in `_log` of the oldest live entry
        self._base = 0  # absolute index of `_log[0]`
        self._last_id = (0, 0)
        self._groups: dict[str, _Group] = {}
        # Replaced on every publish, so a reader that saw nothing new waits for the next one.
        self._published = asyncio.Event()
        self._closed = False

    async def publish(self, items: Sequence[bytes]) -> list[str]:
        """Append `items` in order, trimming the oldest entries beyond `maxlen`; their positions."""
        if self._closed:
            raise RuntimeError("MemoryBus is closed")
        positions = []
        for data in items:
            position = self._next_id()
            self._log.append(_Entry(position, bytes(data)))
            positions.append(position)
        self._trim()
        if positions:
            self._wake_readers()
        return positions

    async def ensure_group(self, group: str) -> None:
        """Create `group` at the start of the log (id "0") unless it exists."""
        self._groups.setdefault(group, _Group())

    async def read(self, group: str, consumer: str, *, count: int, block_ms: int) -> list[Delivery]:
        """Up to `count` never-delivered entries, waiting up to `block_ms` (0: not at all)."""
        _check_count(count)
        state = self._group(group)
        deadline = asyncio.get_running_loop().time() + block_ms / 1000
        while True:
            # Taken before looking, so a publish after the look cannot be missed.
            published = self._published
            deliveries = self._deliver(state, consumer, count)
            remaining = deadline - asyncio.get_running_loop().time()
            if deliveries or remaining <= 0 or self._closed:
                return deliveries
            try:
                async with asyncio.timeout(remaining):
                    await published.wait()
            except TimeoutError:
                return []

    async def ack(self, group: str, positions: Sequence[str]) -> None:
        """Forget `positions` as pending; unknown or already acknowledged ones are ignored."""
        state = self._groups.get(group)
        if state is None:
            return  # as XACK: nothing pending in a group that does not exist
        for position in positions:
            state.pending.pop(position, None)

    async def claim_stale(
        self, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Give `consumer` up to `count` entries pending at least `min_idle_ms`, oldest first.

        Pending entries already trimmed from the log are dropped on the way, whatever their idle
        time, and are not returned (XAUTOCLAIM in Redis 7).
        """
        _check_count(count)
        state = self._group(group)
        now = time.monotonic()
        claimed: list[Delivery] = []
        for position, pending in list(state.pending.items()):
            if len(claimed) >= count:
                break
            entry = self._entry(pending.index)
            if entry is None:
                del state.pending[position]
                continue
            if (now - pending.delivered_at) * 1000 < min_idle_ms:
                continue
            pending.consumer = consumer
            pending.delivered_at = now
            pending.deliveries += 1
            claimed.append(Delivery(position, entry.data, pending.deliveries))
        return claimed

    async def pending_count(self, group: str) -> int:
        """Entries delivered to `group` and not yet acknowledged (trimmed ones included)."""
        return len(self._group(group).pending)

    async def length(self) -> int:
        """Entries currently in the log."""
        return len(self._log) - self._head

    async def aclose(self) -> None:
        """Refuse further publishes and release blocked readers (they return what they have)."""
        self._closed = True
        self._wake_readers()

    def _group(self, group: str) -> _Group:
        state = self._groups.get(group)
        if state is None:
            raise ValueError(f"no consumer group {group!r} on the bus; call ensure_group first")
        return state

    def _next_id(self) -> str:
        """A fresh "<ms>-<seq>" id above every earlier one, even if the wall clock steps back."""
        now_ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self._last_id
        self._last_id = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        return f"{self._last_id[0]}-{self._last_id[1]}"

    def _trim(self) -> None:
        excess = len(self._log) - self._head - self._maxlen
        if excess <= 0:
            return
        self._head += excess
        if self._head >= _COMPACT_AFTER and self._head * 2 >= len(self._log):
            del self._log[: self._head]
            self._base += self._head
            self._head = 0

    def _entry(self, index: int) -> _Entry | None:
        """The entry at absolute `index`, or None if it has been trimmed away."""
        offset = index - self._base
        return self._log[offset] if offset >= self._head else None

    def _deliver(self, state: _Group, consumer: str, count: int) -> list[Delivery]:
        start = max(state.next_index - self._base, self._head)
        entries = self._log[start : start + count]
        now = time.monotonic()
        for offset, entry in enumerate(entries, start):
            state.pending[entry.position] = _Pending(self._base + offset, consumer, now)
        state.next_index = self._base + start + len(entries)
        return [Delivery(entry.position, entry.data) for entry in entries]

    def _wake_readers(self) -> None:
        self._published.set()
        self._published = asyncio.Event()


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
