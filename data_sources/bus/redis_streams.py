"""`RedisStreamBus`: the event bus on a Redis Stream (Redis >= 7), one consumer group per reader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from data_sources.bus import Delivery

#: The one field of every stream entry; its value is the encoded event, untouched.
FIELD = b"e"

#: A stream entry as redis-py parses it: (id, fields).
_Entry = tuple[bytes, dict[bytes, bytes]]


class RedisStreamBus:
    """The bus on the Redis Stream `stream`, trimmed to about `maxlen` entries (XADD MAXLEN ~).

    The client must return bytes (no `decode_responses`) and speak RESP2, redis-py's default. Its
    socket timeout, if any, must exceed the longest `block_ms` given to `read`.
    """

    def __init__(
        self, client: aioredis.Redis, stream: str = "gridcc:events", maxlen: int = 1_000_000
    ) -> None:
        options = client.connection_pool.connection_kwargs
        if options.get("decode_responses") or str(options.get("protocol", 2)) != "2":
            raise ValueError("RedisStreamBus needs a client without decode_responses, on RESP2")
        self._client = client
        self._stream = stream
        self._maxlen = maxlen

    async def publish(self, items: Sequence[bytes]) -> list[str]:
        """Append `items` in one MULTI/EXEC, so they get consecutive positions; their positions."""
        if not items:
            return []
        async with self._client.pipeline(transaction=True) as pipe:
            for data in items:
                pipe.xadd(self._stream, {FIELD: data}, maxlen=self._maxlen, approximate=True)
            ids = cast(list[bytes], await pipe.execute())
        return [position.decode() for position in ids]

    async def ensure_group(self, group: str) -> None:
        """Create `group` at the start of the stream (id "0"), creating the stream if needed."""
        try:
            await self._client.xgroup_create(self._stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def read(self, group: str, consumer: str, *, count: int, block_ms: int) -> list[Delivery]:
        """Up to `count` never-delivered entries (XREADGROUP >), waiting up to `block_ms` if > 0."""
        _check_count(count)
        # Redis reads BLOCK 0 as "forever"; the contract reads 0 as "do not wait".
        block = block_ms if block_ms > 0 else None
        with _group_errors(group):
            reply = await self._client.xreadgroup(
                group, consumer, {self._stream: ">"}, count=count, block=block
            )
        # [[stream, [(id, {field: value}), ...]]], or empty when nothing came.
        streams = cast(list[tuple[bytes, list[_Entry]]], reply or [])
        entries = streams[0][1] if streams else []
        return [Delivery(position.decode(), fields[FIELD]) for position, fields in entries]

    async def ack(self, group: str, positions: Sequence[str]) -> None:
        """XACK `positions`; unknown or already acknowledged ones are ignored, as is an unknown group."""
        if positions:
            await self._client.xack(self._stream, group, *positions)

    async def claim_stale(
        self, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Give `consumer` up to `count` entries pending at least `min_idle_ms`, oldest first.

        XAUTOCLAIM from "0-0", following its cursor until `count` are claimed or the pending list
        is exhausted: one call scans at most 10 x COUNT pending entries and may return none even
        when stale ones lie further on. Entries trimmed from the stream are dropped from the
        pending list (by Redis 7 itself; acked here for good measure) and never returned.
        """
        _check_count(count)
        claimed: list[tuple[str, bytes]] = []
        cursor = b"0-0"
        while len(claimed) < count:
            with _group_errors(group):
                reply = await self._client.xautoclaim(
                    self._stream, group, consumer, min_idle_ms, cursor, count=count - len(claimed)
                )
            # [next cursor, [(id, {field: value}), ...], [ids of entries trimmed away]]
            cursor = cast(bytes, reply[0])
            claimed += [(p.decode(), fields[FIELD]) for p, fields in cast(list[_Entry], reply[1])]
            # Redis 7 has already dropped these from the pending list; acking is a cheap guarantee.
            await self.ack(group, [p.decode() for p in cast(list[bytes], reply[2])])
            if cursor == b"0-0":
                break
        return await self._with_deliveries(group, consumer, claimed)

    async def pending_count(self, group: str) -> int:
        """Entries delivered to `group` and not acknowledged (XPENDING), trimmed ones included."""
        with _group_errors(group):
            summary = cast(dict[str, object], await self._client.xpending(self._stream, group))
        return cast(int, summary["pending"])

    async def length(self) -> int:
        """Entries in the stream (XLEN); approximate trimming may leave up to a node beyond maxlen."""
        return cast(int, await self._client.xlen(self._stream))

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to the app's `Services`, which closes it."""

    async def _with_deliveries(
        self, group: str, consumer: str, claimed: list[tuple[str, bytes]]
    ) -> list[Delivery]:
        """`claimed` as deliveries, with their delivery counts from XPENDING.

        XAUTOCLAIM does not report the counts. An entry no longer pending for `consumer` by the
        time we ask (acknowledged or claimed by someone else meanwhile) is not ours to handle.
        """
        if not claimed:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for position, _ in claimed:
                pipe.xpending_range(self._stream, group, position, position, 1, consumer)
            details = cast(list[list[dict[str, object]]], await pipe.execute())
        deliveries = []
        for (position, data), rows in zip(claimed, details, strict=True):
            if rows:
                deliveries.append(Delivery(position, data, cast(int, rows[0]["times_delivered"])))
        return deliveries


@contextmanager
def _group_errors(group: str) -> Iterator[None]:
    """Turn Redis's NOGROUP reply into a ValueError naming the group."""
    try:
        yield
    except ResponseError as exc:
        if str(exc).startswith("NOGROUP"):
            raise ValueError(
                f"no consumer group {group!r} on the bus; call ensure_group first"
            ) from exc
        raise


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
