"""`?scope=` → `Scope`, in exactly one function, with the caller's permissions checked there.

Pages, Dash callbacks, live streams, REST APIs and exports all call `resolve_scope`; an unknown
code is `NoSuchArea` (404), a node outside the caller's own is `Forbidden` (403) and no code at
all is the caller's own area. Never a silent fallback to the city.
"""

from __future__ import annotations

from data_sources.access.model import Forbidden, NoSuchArea, Principal, Scope
from data_sources.directory import Directory, Place
from data_sources.model import FACT_LEVELS, Level, Node


class NoHierarchy(Exception):
    """Nothing is seeded yet: no scope can be resolved (the pages say so; APIs answer 503)."""


def scope_of(code: str, place: Place) -> Scope:
    """The `Scope` of node `code` at `place` (its level follows from its lineage)."""
    level = Level.CITY if not place.path else FACT_LEVELS[len(place.path) - 1]
    return Scope(place.id, code, level, place.path)


def resolve_scope(directory: Directory, code: str | None, principal: Principal) -> Scope:
    """The area `code` names, if `principal` may see it; the principal's own area without a code.

    Raises:
        NoSuchArea: no node has that code (404).
        Forbidden: the node lies outside the principal's area (403).
        NoHierarchy: the database holds no hierarchy yet.
    """
    if directory.root_id is None:
        raise NoHierarchy
    own_place = directory.nodes.get(principal.scope)
    if own_place is None:  # the principal's node left the hierarchy: it may see nothing
        raise Forbidden("your area no longer exists")
    own = scope_of(principal.scope, own_place)
    if code is None:
        return own
    place = directory.nodes.get(code) if isinstance(code, str) else None
    if place is None:
        raise NoSuchArea(str(code))
    if not (place.id == own.id or own.contains(place.path)):
        raise Forbidden("this area is outside yours")
    return scope_of(code, place)


def visible(directory: Directory, principal: Principal, path: tuple[int, ...]) -> bool:
    """Whether a fact with ancestor ids `path` (an alarm's, a case's) is in the principal's area."""
    place = directory.nodes.get(principal.scope)
    if place is None:
        return False
    return scope_of(principal.scope, place).contains(path)


def from_own_area(lineage: list[Node], principal: Principal) -> list[Node]:
    """A scope's lineage (city … scope) from the principal's own area down: a breadcrumb offers
    no way up to areas the principal may not open."""
    codes = [node.code for node in lineage]
    return lineage[codes.index(principal.scope) :] if principal.scope in codes else lineage


#: The levels an account's area (a user's or a display's) may have: a community or larger. A
#: building's wall shows the cameras of its community within 300 m: with no account below a
#: community, nobody sees there what lies outside their area.
ACCOUNT_LEVELS = frozenset({Level.CITY, Level.DISTRICT, Level.STREET, Level.COMMUNITY})


def account_area_problem(code: str, level: str | None) -> str | None:
    """Why node `code` (of `level`; None: no such node) cannot be an account's area, or None."""
    if level is None:
        return f"no area has the code {code!r}"
    if Level(level) not in ACCOUNT_LEVELS:
        return f"an account's area is a community or larger, not a {level} ({code})"
    return None
