"""The pure rules of access: one scope resolver, cross-site checks, CSRF, callback policies, CSP."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from data_sources.access.guard import (
    CallbackPolicies,
    CallbackPolicy,
    cross_site,
    csrf_token_ok,
    scope_param,
)
from data_sources.access.headers import content_security_policy, inline_script_hashes
from data_sources.access.model import (
    Forbidden,
    NoSuchArea,
    Permission,
    anonymous_principal,
    display_principal,
    user_principal,
)
from data_sources.access.model import Role as R
from data_sources.access.scope import NoHierarchy, from_own_area, resolve_scope
from data_sources.directory import Bounds, Directory, Place, empty_directory
from data_sources.model import Level, Node

# city 1 → district 2 → streets 3 (A) and 4 (B) → community 5 (under A)
DIRECTORY = Directory(
    root_id=1,
    nodes={
        "530100": Place(1, ()),
        "530103": Place(2, (2,)),
        "530103004": Place(3, (2, 3)),
        "530103001": Place(4, (2, 4)),
        "530103004001": Place(5, (2, 3, 5)),
    },
    cameras={},
    workers={},
    bounds=Bounds(0, 0, 1, 1),
    codes={1: "530100", 2: "530103", 3: "530103004", 4: "530103001", 5: "530103004001"},
    children={1: [2], 2: [3, 4], 3: [5]},
)
LEADER_A = user_principal(user_id=1, name="a", role=R.LEADER, scope="530103004")
ADMIN = user_principal(user_id=2, name="root", role=R.ADMIN, scope="530100")


def test_a_scope_is_the_callers_own_area_or_under_it_never_the_city_instead() -> None:
    assert resolve_scope(DIRECTORY, None, LEADER_A).code == "530103004"  # no code: own area
    community = resolve_scope(DIRECTORY, "530103004001", LEADER_A)
    assert (community.id, community.level, community.path) == (5, Level.COMMUNITY, (2, 3, 5))
    with pytest.raises(Forbidden):
        resolve_scope(DIRECTORY, "530103001", LEADER_A)  # street B
    with pytest.raises(Forbidden):
        resolve_scope(DIRECTORY, "530103", LEADER_A)  # above: the district
    with pytest.raises(NoSuchArea) as unknown:
        resolve_scope(DIRECTORY, "999", LEADER_A)
    assert unknown.value.status_code == 404
    city = resolve_scope(DIRECTORY, None, ADMIN)
    assert (city.level, city.contains((2, 4))) == (Level.CITY, True)
    assert resolve_scope(DIRECTORY, "530103001", ADMIN).code == "530103001"
    with pytest.raises(NoHierarchy):
        resolve_scope(empty_directory(), None, ADMIN)
    # A principal whose own node left the hierarchy sees nothing at all.
    gone = anonymous_principal("530199")
    with pytest.raises(Forbidden):
        resolve_scope(DIRECTORY, None, gone)


def test_roles_grant_what_the_issue_says() -> None:
    operator = user_principal(user_id=3, name="o", role=R.OPERATOR, scope="530103004")
    assert [LEADER_A.may(p) for p in Permission] == [True, False, False]
    assert [operator.may(p) for p in Permission] == [True, True, False]
    assert [ADMIN.may(p) for p in Permission] == [True, True, True]
    wall = display_principal(display_id=1, name="w", scope="530103004", operator=False)
    acting_wall = display_principal(display_id=2, name="w2", scope="530103004", operator=True)
    assert (wall.may(Permission.ACT), acting_wall.may(Permission.ACT)) == (False, True)
    assert not anonymous_principal("530100").may(Permission.ACT)


def test_a_breadcrumb_starts_at_the_callers_own_area() -> None:
    lineage = [
        Node(1, "530100", Level.CITY, None, "昆明市", "Kunming", 0, 0),
        Node(2, "530103", Level.DISTRICT, 1, "盘龙区", "Panlong", 0, 0),
        Node(3, "530103004", Level.STREET, 2, "联盟街道", "Lianmeng", 0, 0),
    ]
    assert [n.code for n in from_own_area(lineage, LEADER_A)] == ["530103004"]
    assert from_own_area(lineage, ADMIN) == lineage


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # no browser headers (a script): the CSRF token decides
        ({"sec-fetch-site": "same-origin"}, False),
        ({"sec-fetch-site": "none"}, False),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"sec-fetch-site": "same-site"}, True),  # a sibling host is another origin
        ({"origin": "http://127.0.0.1:8050"}, False),
        ({"origin": "http://localhost:8050"}, True),  # localhost is another site
        ({"origin": "null"}, True),
        ({"origin": "https://127.0.0.1:8050"}, True),
    ],
)
def test_cross_site_requests_are_named(headers: dict[str, str], refused: bool) -> None:
    request = Headers({"host": "127.0.0.1:8050", **headers})
    assert (cross_site(request, "http") is not None) is refused


def test_the_csrf_token_is_the_sessions_own_for_users_and_the_cookies_for_others() -> None:
    user = user_principal(user_id=1, name="a", role=R.OPERATOR, scope="530100", csrf="s3cret")
    assert csrf_token_ok(user, Headers({"x-csrftoken": "s3cret"}), {})
    # A cookie planted by a sibling host does not help: a user's token is bound to the session.
    assert not csrf_token_ok(user, Headers({"x-csrftoken": "planted"}), {"_csrf_token": "planted"})
    assert not csrf_token_ok(user, Headers({}), {"_csrf_token": "s3cret"})
    anonymous = anonymous_principal("530100")
    assert csrf_token_ok(anonymous, Headers({"x-csrftoken": "k"}), {"_csrf_token": "k"})
    assert not csrf_token_ok(anonymous, Headers({"x-csrftoken": ""}), {"_csrf_token": ""})


def test_a_callback_is_found_by_its_first_output_and_unknown_ones_are_undeclared() -> None:
    policies = CallbackPolicies()
    policies.declare("wall-title", CallbackPolicy(Permission.READ, scope_from="wall-url"))
    policies.declare("wall-action-result", CallbackPolicy(Permission.ACT, action="alarm.ack"))
    multi = "..wall-title.children...wall-kpis.children.."
    assert policies.of(multi) == CallbackPolicy(Permission.READ, scope_from="wall-url")
    assert policies.of("wall-action-result.children").permission is Permission.ACT  # type: ignore[union-attr]
    assert policies.undeclared([multi, "admin-users.children"]) == ["admin-users.children"]


def test_query_strings_give_their_scope() -> None:
    assert scope_param("?scope=530103&lang=en") == "530103"
    assert scope_param("lang=en") is None
    assert (
        scope_param("?scope=%E2%80%8B") == "\u200b"
    )  # resolved (and refused) later, never dropped


def test_the_csp_lets_only_own_scripts_and_own_frames() -> None:
    page = '<script src="/x.js"></script><script type="application/javascript">var r = 1;</script>'
    hashes = inline_script_hashes(page)
    assert hashes == ["'sha256-g/K9Wg7DmjGEuqfYKgf85KVhB1ufO6u5UYacULZTF8w='"]  # sha256 of the body
    policy = content_security_policy(hashes, tile_url="https://tiles.intranet/{z}/{x}/{y}.png")
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["frame-ancestors"] == "'self'"
    assert directives["script-src"] == f"'self' {hashes[0]}"  # no 'unsafe-inline', no eval
    assert "https://tiles.intranet" in directives["img-src"]
    assert directives["object-src"] == "'none'"
