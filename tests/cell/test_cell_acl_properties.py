"""Properties of the cell's ACL evaluation, over generated rules, callers and URLs: any
allowing rule suffices (adding a rule never takes access away), a rule restricting nothing
allows everyone, a covering action without rules allows no one, and a request no action
covers is allowed."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcdext.vcloud import media
from vcdext.vcloud.model import AclAccess, Reference
from vcdext_cell.acl import Caller, is_authorized
from vcdext_cell.model import (
    AclRule,
    ResourceClass,
    ResourceClassAction,
    Service,
    ServiceResource,
    new_id,
)
from vcdext_cell.seed import parse_seed
from vcdext_cell.state import State

RIGHT = "{io.example.p}:Use"
SEED = parse_seed(
    tomllib.loads(
        f"""
[[orgs]]
name = "System"
[[orgs.users]]
name = "administrator"
password = "x"
rights = ["*"]
[[orgs]]
name = "acme"
[[orgs.users]]
name = "alice"
password = "x"
rights = ["{RIGHT}"]
[[orgs.users]]
name = "bob"
password = "x"
[[orgs]]
name = "globex"
[[orgs.users]]
name = "carol"
password = "x"
rights = ["{RIGHT}"]
"""
    ),
    source="test",
)
USERS = {u.name: u for u in SEED.users}
ORGS = {o.name: o for o in SEED.orgs}


def access(kind: str, hrefs: dict[str, str]) -> AclAccess | None:
    if kind == "none":
        return None
    if kind.startswith("org:"):
        return AclAccess("Entity", Reference(f"http://h/api/org/{ORGS[kind[4:]].id}"))
    if kind.startswith("user:"):
        return AclAccess("Entity", Reference(f"http://h/api/admin/user/{USERS[kind[5:]].id}"))
    if kind == "right":
        return AclAccess("Entity", Reference(hrefs["right"], media.RIGHT))
    if kind.startswith("res:"):
        return AclAccess("Entity", Reference(hrefs[kind[4:]]))
    return AclAccess(kind)


rule_specs = st.tuples(
    st.sampled_from(["none", "Shared", "res:r1", "res:r2"]),
    st.sampled_from(["none", "Shared", "Published", "org:acme", "org:globex", "org:System"]),
    st.sampled_from(["none", "Shared", "right", "user:alice", "user:bob", "user:carol"]),
)
callers = st.sampled_from(sorted(USERS))
urls = st.sampled_from(["/api/p/r1", "/api/p/r2", "/api/p/unknown", "/p/r1"])


def decide(specs: list[tuple[str, str, str]], who: str, method: str, url: str) -> bool:
    state = State(SEED)
    service = state.add_service(
        Service("p", "io.example.p", enabled=True, authorization_enabled=True, id=new_id())
    )
    cls, _ = state.add_resource_class(ResourceClass("C", id=new_id(), service_id=service.id))
    action = state.add_action(
        ResourceClassAction("get", "GET", "/api/p/(?<id>[^/]+)", id=new_id(), class_id=cls.id)
    )
    hrefs: dict[str, str] = {}
    for name, org in (("r1", "acme"), ("r2", "globex")):
        ref = Reference(f"http://h/api/org/{ORGS[org].id}", media.ORG)
        r = state.add_resource(ServiceResource(name, ref, name, id=new_id(), class_id=cls.id))
        hrefs[name] = f"http://h/api/admin/extension/service/serviceresource/{r.id}"
    right = next(r for r in state.rights() if r.name == RIGHT)
    hrefs["right"] = f"http://h/api/admin/right/{right.id}"
    for i, (a, b, c) in enumerate(specs):
        state.add_rule(
            AclRule(
                f"r{i}",
                access(a, hrefs),
                access(b, hrefs),
                access(c, hrefs),
                id=new_id(),
                action_id=action.id,
            )
        )
    return is_authorized(state, [service.id], Caller.of(USERS[who]), method, url)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_specs, max_size=3), rule_specs, callers, urls)
def test_adding_a_rule_never_takes_access_away(specs, extra, who, url):
    if decide(specs, who, "GET", url):
        assert decide([*specs, extra], who, "GET", url)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_specs, max_size=3), callers, urls)
def test_a_rule_restricting_nothing_allows_everyone(specs, who, url):
    assert decide([*specs, ("none", "Published", "Shared")], who, "GET", url)
    assert decide([*specs, ("none", "none", "none")], who, "GET", url)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(callers, urls)
def test_a_covering_action_without_rules_allows_no_one(who, url):
    assert not decide([], who, "GET", url)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_specs, max_size=3), callers)
def test_what_no_action_covers_is_allowed(specs, who):
    assert decide(specs, who, "DELETE", "/api/p/r1")
    assert decide(specs, who, "GET", "/api/elsewhere")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_specs, callers, st.sampled_from(["r1", "r2"]))
def test_a_single_rule_means_what_the_notes_say(spec, who, resource):
    sr, org, principal = spec
    user = USERS[who]
    owner = {"r1": "acme", "r2": "globex"}[resource]
    expected = (
        (sr in ("none", "Shared") or sr == f"res:{resource}")
        and (
            org in ("none", "Published")
            or (org == "Shared" and user.org_id == ORGS[owner].id)
            or (org.startswith("org:") and user.org_id == ORGS[org[4:]].id)
        )
        and (
            principal in ("none", "Shared")
            or (principal == "right" and (RIGHT in user.rights or "*" in user.rights))
            or principal == f"user:{who}"
        )
    )
    assert decide([spec], who, "GET", f"/api/p/{resource}") == expected


def test_an_entity_access_without_its_entity_allows_no_one() -> None:
    """``Entity`` access names one entity; a rule that lost it restricts to nobody, whichever
    of the parts it is (deny by default), rather than to no restriction."""
    from vcdext_cell.acl import rule_allows

    state = State(SEED)
    alice = Caller.of(USERS["alice"])
    for part in ("service_resource", "organization", "principal"):
        rule = AclRule(name="lost", **{part: AclAccess("Entity", None)})
        assert not rule_allows(state, rule, alice, None), part
