"""The cell's answer to "may this user send this method to this URL?": vCD's ACL rules
evaluated as the protocol notes (§5) describe them.

* The actions that *cover* a request are those of the services asked about (authorization
  enabled) whose ``HttpMethod`` is the method and whose ``UrlPattern`` matches the whole URL
  path, as given or relative to the API root (``/api/box/1`` and ``/box/1`` are the same).
  No covering action: authorized (the framework has no rule for it, as for a service
  without ``AuthorizationEnabled``).
* The resource is the service resource of the action's class whose ``ExternalObjectId`` (or
  id) is what the pattern's ``(?<id>…)`` group captured, if any.
* A rule allows when each of its parts does: ``ServiceResourceAccess`` ``Entity`` = that
  resource, else any; ``OrganizationAccess`` ``Entity`` = the caller is in that org,
  ``Shared`` = the caller is in the org owning the resource (any org when the URL names no
  resource), ``Published`` = any org; ``PrincipalAccess`` ``Entity`` = that user, or a
  holder of that right, ``Shared`` = any user. A missing part restricts nothing.
* Any allowing rule of any covering action authorizes the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from vcdext.errors import NotFound
from vcdext.vcloud.model import AclAccess

from .model import AclRule, ResourceClassAction, ServiceResource, uuid_of
from .seed import ALL_RIGHTS, User
from .state import State


@dataclass(frozen=True)
class Caller:
    """Who asks: a user (id), their org (id) and the full names of their rights."""

    user_id: str
    org_id: str
    rights: frozenset[str]

    @classmethod
    def of(cls, user: User) -> Caller:
        """The caller a seed user is."""
        return cls(user.id, user.org_id, frozenset(user.rights))

    def holds(self, right: str) -> bool:
        """Whether the caller's role holds the right called ``right``."""
        return ALL_RIGHTS in self.rights or right in self.rights


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def covering(
    state: State, service_ids: Iterable[str], method: str, url: str
) -> list[tuple[ResourceClassAction, str | None]]:
    """The actions of ``service_ids`` that cover ``method url``, each with the resource id its
    pattern captured (``None`` if it has no ``id`` group)."""
    path = _path(url)
    candidates = [path]
    if path.startswith("/api/"):
        candidates.append(path.removeprefix("/api"))
    else:
        candidates.append("/api" + path)
    classes = {c.id for s in set(service_ids) for c in state.resource_classes(s)}
    found = []
    for action in state.actions():
        if action.class_id not in classes or action.http_method != method.upper():
            continue
        for candidate in candidates:
            m = action.compiled.fullmatch(candidate) if action.compiled else None
            if m is not None:
                found.append((action, m.groupdict().get("id")))
                break
    return found


def _resource(
    state: State, action: ResourceClassAction, resource_id: str | None
) -> ServiceResource | None:
    if not resource_id:
        return None
    for resource in state.resources(action.class_id):
        if resource_id in (resource.external_object_id, resource.id):
            return resource
    return None


def _principal_allows(state: State, part: AclAccess, caller: Caller) -> bool:
    if part.access != "Entity":
        return True  # Shared: every user
    if part.entity is None:  # Entity access naming no one: no one (as for the other parts)
        return False
    href = part.entity.href
    if "/right/" in href or ":right:" in href or part.entity.type.endswith("right+xml"):
        try:
            right = state.right(uuid_of(href))
        except NotFound:  # an unknown right is held by nobody
            return False
        return caller.holds(right.name)
    return uuid_of(href) == caller.user_id


def rule_allows(
    state: State, rule: AclRule, caller: Caller, resource: ServiceResource | None
) -> bool:
    """Whether ``rule`` lets ``caller`` act on ``resource`` (``None``: the URL names none)."""
    part = rule.service_resource
    if (
        part is not None
        and part.access == "Entity"
        and (resource is None or part.entity is None or uuid_of(part.entity.href) != resource.id)
    ):
        return False
    part = rule.organization
    if part is not None and part.access == "Entity":
        if part.entity is None or uuid_of(part.entity.href) != caller.org_id:
            return False
    elif (
        part is not None
        and part.access == "Shared"
        and resource is not None
        and resource.org is not None
        and uuid_of(resource.org.href) != caller.org_id
    ):
        return False
    part = rule.principal
    return part is None or _principal_allows(state, part, caller)


def is_authorized(
    state: State, service_ids: Iterable[str], caller: Caller, method: str, url: str
) -> bool:
    """The authorization check: see the module docs."""
    actions = covering(state, service_ids, method, url)
    if not actions:
        return True
    return any(
        rule_allows(state, rule, caller, _resource(state, action, resource_id))
        for action, resource_id in actions
        for rule in state.rules(action.id)
    )
