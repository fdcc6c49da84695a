"""Tables of a million rows in blocks (AG Grid's infinite row model): each block starts where
the one before it ended — a keyset cursor the page keeps (a dcc.Store of block start → cursor) —
so a block deep in the table costs what the first one does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
#: Cursors a page keeps: block 0's neighbours up to this many blocks either side of the block
#: asked for (the grid caches 20 blocks); a page scrolled far down never sends a store that grows
#: past the callback body's limit (64 kB: ~600 cursors).
KEEP_BLOCKS = 25
#: Blocks walked at most to reach a block whose cursor the page lost (it never should: the grid
#: asks block by block from the top and the page keeps every cursor it was given). It bounds
#: what a forged request can make the server read.
MAX_WALK = 10


@dataclass(frozen=True, slots=True)
class Block(Generic[T]):
    items: list[T]
    #: The table ends with this block.
    last: bool


def read_block(
    start: int,
    size: int,
    known: dict[str, str],
    fetch: Callable[[str | None], tuple[list[T], str | None]],
) -> Block[T] | None:
    """Block `start` of a keyset-paged table of blocks of `size`: from the cursor the page kept
    for it, or paging on from the nearest block before it whose cursor the page kept (at most
    `MAX_WALK` blocks). `fetch(after)` reads a block and the cursor after it (None: the end);
    `known` (block start → cursor) gains every cursor met. None when the block is out of reach.
    Raises what `fetch` raises (`FilterError` for a cursor of another table)."""
    begin, after = 0, None
    if start:
        begin = max((int(k) for k in known if int(k) <= start), default=0)
        after = known.get(str(begin)) if begin else None
    for _ in range(MAX_WALK):
        if begin == start:
            break
        _, after = fetch(after)
        if after is None:
            return None
        begin += size
        known[str(begin)] = after
    if begin != start:
        return None
    items, following = fetch(after)
    if following is not None:
        # The grid asks for the next block at start + size, even if a row vanished meanwhile
        # and this one came back short.
        known[str(start + size)] = following
    return Block(items, following is None)


def trimmed(known: dict[str, str], start: int, size: int) -> dict[str, str]:
    """The cursors worth keeping around block `start` (at most 2 × `KEEP_BLOCKS` + 1)."""
    reach = KEEP_BLOCKS * size
    return {k: v for k, v in known.items() if abs(int(k) - start) <= reach}


def kept_cursors(cursors: Any, key: str) -> dict[str, str]:
    """The cursors a page kept for the table drawn for `key` (a store's data: anything, as a
    forged callback body may send; only block starts with a cursor are kept)."""
    if not isinstance(cursors, dict) or cursors.get("key") != key:
        return {}
    after = cursors.get("after")
    if not isinstance(after, dict):
        return {}
    return {k: v for k, v in after.items() if k.isascii() and k.isdigit() and isinstance(v, str)}
