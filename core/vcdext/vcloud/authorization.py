"""The documents of vCD's authorization framework (protocol notes §5): ``ResourceClass``,
``ResourceClassAction``, ``AclRule``, ``ServiceResource``, ``AuthorizationCheckParams`` and
``AuthorizationCheckResponse``, and their query records; each written once and read once.

Writers follow the element order of ``extension/services.xsd`` (each of these types extends
``vcloud:EntityType`` or ``VCloudExtensibleType``); readers check what the schema's
documentation requires (an ``Access`` of ``Shared``/``Published``/``Entity``, an ``Entity``
with ``Entity`` access, a method of GET/PUT/POST/DELETE, the length limits) and answer a
:class:`~vcdext.errors.BadRequest` naming the problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lxml import etree

from ..errors import BadRequest
from . import media
from .elements import find, name_attribute, root, strict_boolean, sub, text, x, xs_boolean
from .extension import Body, _description, _entity, _held, _held_of, _parse
from .media import VMEXT_NS
from .model import (
    ACL_ACCESS,
    ACTION_METHODS,
    AclAccess,
    AclRule,
    AuthorizationCheck,
    Held,
    Reference,
    ResourceClass,
    ResourceClassAction,
    ServiceResource,
)
from .query import Record, RecordKind
from .reference import read_reference, write_reference

#: The query types of the authorization objects, by ``type=``.
RESOURCE_CLASS_RECORDS = RecordKind(
    "resourceClass", "ResourceClassRecord", "ResourceClassReference", media.RESOURCE_CLASS
)
ACTION_RECORDS = RecordKind(
    "resourceClassAction",
    "ResourceClassActionRecord",
    "ResourceClassActionReference",
    media.RESOURCE_CLASS_ACTION,
)
ACL_RULE_RECORDS = RecordKind("aclRule", "AclRuleRecord", "AclRuleReference", media.ACL_RULE)
SERVICE_RESOURCE_RECORDS = RecordKind(
    "serviceResource",
    "ServiceResourceRecord",
    "ServiceResourceReference",
    media.SERVICE_RESOURCE,
)

_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z])")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A ``java.util.regex`` pattern (``UrlPattern``, ``UrnPattern``) for Python's ``re``:
    ``(?<id>…)`` becomes ``(?P<id>…)``; 400 for a pattern Python cannot compile."""
    try:
        return re.compile(_JAVA_NAMED_GROUP.sub("(?P<", pattern))
    except re.error as exc:
        raise BadRequest(f"{pattern!r} is not a valid regular expression: {exc}") from None


def _limited(el: etree._Element, tag: str, limit: int, *, required: bool = False) -> str:
    return text(el, tag, required=required, limit=limit) or ""


# -- ResourceClass ----------------------------------------------------------------------------


def write_resource_class(
    value: ResourceClass | Held[ResourceClass], *, inline: bool = False
) -> etree._Element:
    """A ``vmext:ResourceClass`` (without inline actions: they are created one by one)."""
    held = _held(value)
    c = held.value
    el = _entity(VMEXT_NS, "ResourceClass", held, inline=inline, name=c.name)
    for tag, item in (
        ("MimeType", c.mime_type),
        ("UrlTemplate", c.url_template),
        ("Nid", c.nid),
        ("UrnPattern", c.urn_pattern),
    ):
        if item:
            sub(el, tag, item, ns=VMEXT_NS)
    return el


def read_resource_class(body: Body) -> Held[ResourceClass]:
    """A ``vmext:ResourceClass``."""
    el = _parse(body, VMEXT_NS, "ResourceClass")
    value = ResourceClass(
        name=name_attribute(el),
        mime_type=_limited(el, "MimeType", 128),
        url_template=_limited(el, "UrlTemplate", 1024),
        nid=_limited(el, "Nid", 255),
        urn_pattern=_limited(el, "UrnPattern", 255),
    )
    return _held_of(el, value)


def resource_class_record(c: Held[ResourceClass], service: str) -> Record:
    """The ``ResourceClassRecord`` of a class of ``service`` (its href or URN)."""
    return {
        "href": c.href,
        "id": c.id,
        "name": c.value.name,
        "service": service,
        "mimeType": c.value.mime_type,
        "urlTemplate": c.value.url_template,
        "nid": c.value.nid,
        "urnPattern": c.value.urn_pattern,
    }


def read_resource_class_record(record: etree._Element) -> Held[ResourceClass] | None:
    """A ``ResourceClassRecord`` (``None`` without an href)."""
    href = record.get("href", "")
    if not href:
        return None
    value = ResourceClass(
        name=record.get("name", ""),
        mime_type=record.get("mimeType", ""),
        url_template=record.get("urlTemplate", ""),
        nid=record.get("nid", ""),
        urn_pattern=record.get("urnPattern", ""),
    )
    return Held(value, href=href, id=record.get("id", ""))


# -- ResourceClassAction ----------------------------------------------------------------------


def write_resource_class_action(
    value: ResourceClassAction | Held[ResourceClassAction],
    *,
    rules: Sequence[AclRule | Held[AclRule]] | None = None,
) -> etree._Element:
    """A ``vmext:ResourceClassAction``; with ``rules``, its ``AclRules`` inline."""
    held = _held(value)
    a = held.value
    el = _entity(VMEXT_NS, "ResourceClassAction", held, name=a.name)
    sub(el, "HttpMethod", a.http_method, ns=VMEXT_NS)
    sub(el, "UrlPattern", a.url_pattern, ns=VMEXT_NS)
    if rules is not None:
        container = sub(el, "AclRules", ns=VMEXT_NS)
        for rule in rules:
            container.append(write_acl_rule(rule, inline=True))
    return el


def read_resource_class_action(
    body: Body,
) -> tuple[Held[ResourceClassAction], tuple[Held[AclRule], ...]]:
    """A ``vmext:ResourceClassAction`` and the ACL rules inline in it."""
    el = _parse(body, VMEXT_NS, "ResourceClassAction")
    method = (text(el, "HttpMethod", required=True) or "").upper()
    if method not in ACTION_METHODS:
        raise BadRequest(f"HttpMethod must be one of {', '.join(ACTION_METHODS)}, got {method!r}")
    pattern = _limited(el, "UrlPattern", 1024, required=True)
    compile_pattern(pattern)
    action = ResourceClassAction(name_attribute(el), method, pattern)
    rules = tuple(read_acl_rule(r) for r in el.iterfind(f"{x('AclRules')}/{x('AclRule')}"))
    return _held_of(el, action), rules


def action_record(a: Held[ResourceClassAction], resource_class: str) -> Record:
    """The ``ResourceClassActionRecord`` of an action of ``resource_class`` (href or URN)."""
    return {
        "href": a.href,
        "id": a.id,
        "name": a.value.name,
        "httpMethod": a.value.http_method,
        "urlPattern": a.value.url_pattern,
        "resourceClass": resource_class,
    }


def read_action_record(record: etree._Element) -> Held[ResourceClassAction] | None:
    """A ``ResourceClassActionRecord`` (``None`` without an href)."""
    href = record.get("href", "")
    if not href:
        return None
    value = ResourceClassAction(
        name=record.get("name", ""),
        http_method=record.get("httpMethod", "").upper(),
        url_pattern=record.get("urlPattern", ""),
    )
    return Held(value, href=href, id=record.get("id", ""))


# -- AclRule ----------------------------------------------------------------------------------

#: AclRule field → element, in schema order.
_ACL_PARTS = (
    ("service_resource", "ServiceResourceAccess"),
    ("organization", "OrganizationAccess"),
    ("principal", "PrincipalAccess"),
)


def write_acl_rule(value: AclRule | Held[AclRule], *, inline: bool = False) -> etree._Element:
    """A ``vmext:AclRule``."""
    held = _held(value)
    rule = held.value
    el = _entity(VMEXT_NS, "AclRule", held, inline=inline, name=rule.name)
    if rule.description:
        sub(el, "Description", rule.description)
    for field_name, tag in _ACL_PARTS:
        part: AclAccess | None = getattr(rule, field_name)
        if part is None:
            continue
        container = sub(el, tag, ns=VMEXT_NS)
        sub(container, "Access", part.access, ns=VMEXT_NS)
        if part.entity is not None:
            write_reference(container, "Entity", part.entity, ns=VMEXT_NS)
    return el


def _read_access(el: etree._Element, tag: str) -> AclAccess | None:
    container = find(el, tag)
    if container is None:
        return None
    access = text(container, "Access", required=True) or ""
    if access not in ACL_ACCESS:
        raise BadRequest(f"{tag}/Access must be one of {', '.join(ACL_ACCESS)}, got {access!r}")
    entity_el = find(container, "Entity")
    entity = read_reference(entity_el, f"{tag}/Entity") if entity_el is not None else None
    if access == "Entity" and entity is None:
        raise BadRequest(f"{tag} with Access Entity needs an Entity reference")
    return AclAccess(access, entity)


def read_acl_rule(body: Body) -> Held[AclRule]:
    """A ``vmext:AclRule``."""
    el = _parse(body, VMEXT_NS, "AclRule")
    rule = AclRule(
        name=name_attribute(el),
        service_resource=_read_access(el, "ServiceResourceAccess"),
        organization=_read_access(el, "OrganizationAccess"),
        principal=_read_access(el, "PrincipalAccess"),
        description=_description(el) or "",
    )
    return _held_of(el, rule)


def acl_rule_record(r: Held[AclRule], action: str) -> Record:
    """The ``AclRuleRecord`` of a rule of ``action`` (href or URN); entities by href."""
    rule = r.value
    attrs = {"href": r.href, "id": r.id, "name": rule.name, "resourceClassAction": action}
    for part, access, entity in (
        (rule.service_resource, "serviceResourceAccess", "serviceResource"),
        (rule.organization, "orgAccess", "org"),
        (rule.principal, "principalAccess", "principal"),
    ):
        if part is None:
            continue
        attrs[access] = part.access
        if part.entity is not None:
            attrs[entity] = part.entity.href
            if entity == "principal" and part.entity.type:
                attrs["principalType"] = part.entity.type
    return attrs


def read_acl_rule_record(record: etree._Element) -> Held[AclRule] | None:
    """An ``AclRuleRecord`` (``None`` without an href)."""
    href = record.get("href", "")
    if not href:
        return None

    def part(access: str, entity: str, entity_type: str = "") -> AclAccess | None:
        value = record.get(access)
        if not value:
            return None
        ref = record.get(entity)
        return AclAccess(value, Reference(ref, entity_type) if ref else None)

    rule = AclRule(
        name=record.get("name", ""),
        service_resource=part("serviceResourceAccess", "serviceResource"),
        organization=part("orgAccess", "org"),
        principal=part("principalAccess", "principal", record.get("principalType", "")),
    )
    return Held(rule, href=href, id=record.get("id", ""))


# -- ServiceResource --------------------------------------------------------------------------


def write_service_resource(value: ServiceResource | Held[ServiceResource]) -> etree._Element:
    """A ``vmext:ServiceResource``."""
    held = _held(value)
    r = held.value
    el = _entity(VMEXT_NS, "ServiceResource", held, name=r.name)
    if r.org is not None:
        write_reference(el, "Org", r.org, ns=VMEXT_NS)
    if r.external_object_id:
        sub(el, "ExternalObjectId", r.external_object_id, ns=VMEXT_NS)
    return el


def read_service_resource(body: Body) -> Held[ServiceResource]:
    """A ``vmext:ServiceResource``."""
    el = _parse(body, VMEXT_NS, "ServiceResource")
    org_el = find(el, "Org")
    value = ServiceResource(
        name=name_attribute(el),
        org=read_reference(org_el, "Org") if org_el is not None else None,
        external_object_id=_limited(el, "ExternalObjectId", 255),
    )
    return _held_of(el, value)


def service_resource_record(r: Held[ServiceResource], resource_class: str) -> Record:
    """The ``ServiceResourceRecord`` of a resource of ``resource_class`` (href or URN)."""
    attrs = {
        "href": r.href,
        "id": r.id,
        "name": r.value.name,
        "resourceClass": resource_class,
        "externalObjectId": r.value.external_object_id,
    }
    if r.value.org is not None:
        attrs["org"] = r.value.org.href
    return attrs


def read_service_resource_record(record: etree._Element) -> Held[ServiceResource] | None:
    """A ``ServiceResourceRecord`` (``None`` without an href)."""
    href = record.get("href", "")
    if not href:
        return None
    org = record.get("org")
    value = ServiceResource(
        name=record.get("name", ""),
        org=Reference(org) if org else None,
        external_object_id=record.get("externalObjectId", ""),
    )
    return Held(value, href=href, id=record.get("id", ""))


# -- the authorization check ------------------------------------------------------------------


def write_authorization_check_params(check: AuthorizationCheck) -> etree._Element:
    """``vmext:AuthorizationCheckParams``: ``User``, ``HttpMethod``, ``URL``."""
    el = root(VMEXT_NS, "AuthorizationCheckParams")
    if check.user is not None:
        write_reference(el, "User", check.user, ns=VMEXT_NS)
    sub(el, "HttpMethod", check.http_method, ns=VMEXT_NS)
    sub(el, "URL", check.url, ns=VMEXT_NS)
    return el


def read_authorization_check_params(body: Body) -> AuthorizationCheck:
    """``vmext:AuthorizationCheckParams`` (``User``, ``HttpMethod`` and ``URL`` required)."""
    el = _parse(body, VMEXT_NS, "AuthorizationCheckParams")
    user_el = find(el, "User")
    if user_el is None:
        raise BadRequest("vmext:User is required in AuthorizationCheckParams")
    method = (text(el, "HttpMethod", required=True) or "").upper()
    if method not in ACTION_METHODS:
        raise BadRequest(f"HttpMethod must be one of {', '.join(ACTION_METHODS)}, got {method!r}")
    url = text(el, "URL", required=True, limit=1024) or ""
    return AuthorizationCheck(read_reference(user_el, "User"), method, url)


def write_authorization_check_response(authorized: bool) -> etree._Element:
    """``vmext:AuthorizationCheckResponse`` with ``IsAuthorized``."""
    el = root(VMEXT_NS, "AuthorizationCheckResponse")
    sub(el, "IsAuthorized", xs_boolean(authorized), ns=VMEXT_NS)
    return el


def read_authorization_check_response(body: Body) -> bool:
    """``IsAuthorized`` of a ``vmext:AuthorizationCheckResponse`` (absent: ``False``)."""
    el = _parse(body, VMEXT_NS, "AuthorizationCheckResponse")
    return strict_boolean(text(el, "IsAuthorized"), "IsAuthorized")
