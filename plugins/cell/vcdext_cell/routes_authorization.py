"""vCD's authorization framework on the cell (protocol notes §5): resource classes, their
actions, ACL rules and service resources under ``/api/admin/extension/service/...``, and the
authorization check, evaluated by :mod:`.acl`.

All of it is for system administrators (403 for anyone else), as the extension API is.
Choices where vCD's behaviour is not documented (see ``docs/local-cell.md``):

* a resource class whose name the service already has is not added: the existing one is
  answered (201), as the notes say vCD does;
* a ``ResourceClassAction`` posted with ``AclRules`` inline creates those rules too;
* lists (``GET`` of a collection) answer every record on one page;
* the authorization check's ``User`` must be a user the cell knows (400 otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lxml import etree

from vcdext.errors import BadRequest
from vcdext.vcloud import media
from vcdext.vcloud.authorization import (
    ACL_RULE_RECORDS,
    ACTION_RECORDS,
    RESOURCE_CLASS_RECORDS,
    SERVICE_RESOURCE_RECORDS,
    acl_rule_record,
    action_record,
    read_acl_rule,
    read_authorization_check_params,
    read_resource_class,
    read_resource_class_action,
    read_service_resource,
    resource_class_record,
    service_resource_record,
    write_acl_rule,
    write_authorization_check_response,
    write_resource_class,
    write_resource_class_action,
    write_service_resource,
)
from vcdext.vcloud.model import Held, Link
from vcdext.vcloud.query import Page, RecordKind, write_query_result

from .acl import Caller, is_authorized
from .http import Answer, Call, Router, xml_answer
from .model import (
    AclRule,
    ResourceClass,
    ResourceClassAction,
    ServiceResource,
    new_id,
    stored,
    uuid_of,
)
from .routes_extension import read_body, require_sysadmin
from .state import State
from .views import Urls

_SERVICE = "/api/admin/extension/service"


# -- views -----------------------------------------------------------------------------------


def held_class(urls: Urls, c: ResourceClass) -> Held[ResourceClass]:
    """A resource class with its href, URN and links."""
    href = urls.part("resourceclass", c.id)
    links = (
        Link(media.REL_UP, urls.service(c.service_id), media.SERVICE),
        Link(media.REL_REMOVE, href),
        Link(media.REL_RESOURCE_CLASS_ACTIONS, f"{href}/resourceclassactions", media.RECORDS),
        Link(media.REL_ADD, f"{href}/resourceclassactions", media.RESOURCE_CLASS_ACTION),
        Link(media.REL_SERVICE_RESOURCES, f"{href}/serviceresources", media.RECORDS),
        Link(media.REL_ADD, f"{href}/serviceresources", media.SERVICE_RESOURCE),
    )
    return Held(c, href=href, id=c.urn, type=media.RESOURCE_CLASS, links=links)


def held_action(urls: Urls, a: ResourceClassAction) -> Held[ResourceClassAction]:
    """A resource class action with its href, URN and links."""
    href = urls.part("resourceclassaction", a.id)
    links = (
        Link(media.REL_UP, urls.part("resourceclass", a.class_id), media.RESOURCE_CLASS),
        Link(media.REL_REMOVE, href),
        Link(media.REL_ACL_RULES, f"{href}/aclrules", media.RECORDS),
        Link(media.REL_ADD, f"{href}/aclrules", media.ACL_RULE),
    )
    return Held(a, href=href, id=a.urn, type=media.RESOURCE_CLASS_ACTION, links=links)


def held_rule(urls: Urls, r: AclRule) -> Held[AclRule]:
    """An ACL rule with its href, URN and links."""
    href = urls.part("aclrule", r.id)
    links = (
        Link(media.REL_UP, urls.part("resourceclassaction", r.action_id)),
        Link(media.REL_REMOVE, href),
    )
    return Held(r, href=href, id=r.urn, type=media.ACL_RULE, links=links)


def held_resource(urls: Urls, r: ServiceResource) -> Held[ServiceResource]:
    """A service resource with its href, URN and links."""
    href = urls.part("serviceresource", r.id)
    links = (
        Link(media.REL_UP, urls.part("resourceclass", r.class_id), media.RESOURCE_CLASS),
        Link(media.REL_REMOVE, href),
    )
    return Held(r, href=href, id=r.urn, type=media.SERVICE_RESOURCE, links=links)


def _records(href: str, kind: RecordKind, records: Sequence[Mapping[str, str]]) -> etree._Element:
    page = Page(href, "records", 1, max(len(records), 1), len(records))
    return write_query_result(kind, page, records)


# -- routes ----------------------------------------------------------------------------------


class AuthorizationRoutes:
    """Handlers for resource classes, actions, ACL rules, service resources and the
    authorization check, bound to one :class:`State`."""

    def __init__(self, state: State) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        """Add every route of this class to ``router`` (before the ``{id}`` routes)."""
        add = router.add
        add("POST", f"{_SERVICE}/authorizationcheck", self.check_all)
        for kind, getter, deleter in (
            ("resourceclass", self.get_class, self.delete_class),
            ("resourceclassaction", self.get_action, self.delete_action),
            ("aclrule", self.get_rule, self.delete_rule),
            ("serviceresource", self.get_resource, self.delete_resource),
        ):
            add("GET", f"{_SERVICE}/{kind}/{{id}}", getter)
            add("DELETE", f"{_SERVICE}/{kind}/{{id}}", deleter)
        add("GET", f"{_SERVICE}/resourceclass/{{id}}/resourceclassactions", self.list_actions)
        add("POST", f"{_SERVICE}/resourceclass/{{id}}/resourceclassactions", self.add_action)
        add("GET", f"{_SERVICE}/resourceclass/{{id}}/serviceresources", self.list_resources)
        add("POST", f"{_SERVICE}/resourceclass/{{id}}/serviceresources", self.add_resource)
        add("GET", f"{_SERVICE}/resourceclassaction/{{id}}/aclrules", self.list_rules)
        add("POST", f"{_SERVICE}/resourceclassaction/{{id}}/aclrules", self.add_rule)
        add("GET", f"{_SERVICE}/{{id}}/resourceclasses", self.list_classes)
        add("POST", f"{_SERVICE}/{{id}}/resourceclasses", self.add_class)
        add("POST", f"{_SERVICE}/{{id}}/authorizationcheck", self.check_one)

    # -- resource classes -------------------------------------------------------------------

    def list_classes(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}/resourceclasses``: ``resourceClass`` records."""
        _sysadmin(call)
        s = self.state.service(id)
        records = [
            resource_class_record(held_class(call.urls, c), s.urn)
            for c in self.state.resource_classes(s.id)
        ]
        href = call.urls.of_service(s.id, "resourceclasses")
        return xml_answer(_records(href, RESOURCE_CLASS_RECORDS, records), media.RECORDS)

    def add_class(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/resourceclasses``: 201 + the new (or same-named) class."""
        _sysadmin(call)
        s = self.state.service(id)
        sent = read_resource_class(_body(call)).value
        c, _ = self.state.add_resource_class(
            stored(ResourceClass, sent, id=new_id(), service_id=s.id)
        )
        return xml_answer(write_resource_class(held_class(call.urls, c)), media.RESOURCE_CLASS, 201)

    def get_class(self, call: Call, id: str) -> Answer:
        """``GET .../service/resourceclass/{id}``."""
        _sysadmin(call)
        c = self.state.resource_class(id)
        return xml_answer(write_resource_class(held_class(call.urls, c)), media.RESOURCE_CLASS)

    def delete_class(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/resourceclass/{id}`` (204; its actions, rules, resources too)."""
        _sysadmin(call)
        self.state.delete_resource_class(id)
        return Answer(204)

    # -- actions ------------------------------------------------------------------------------

    def list_actions(self, call: Call, id: str) -> Answer:
        """``GET .../resourceclass/{id}/resourceclassactions``: action records."""
        _sysadmin(call)
        c = self.state.resource_class(id)
        records = [
            action_record(held_action(call.urls, a), c.urn) for a in self.state.actions(c.id)
        ]
        href = f"{call.urls.part('resourceclass', c.id)}/resourceclassactions"
        return xml_answer(_records(href, ACTION_RECORDS, records), media.RECORDS)

    def add_action(self, call: Call, id: str) -> Answer:
        """``POST .../resourceclass/{id}/resourceclassactions``: 201 + the action (with the
        ACL rules sent inline, created too)."""
        _sysadmin(call)
        c = self.state.resource_class(id)
        sent, rules = read_resource_class_action(_body(call))
        a = self.state.add_action(
            stored(ResourceClassAction, sent.value, id=new_id(), class_id=c.id)
        )
        created = [
            self.state.add_rule(stored(AclRule, r.value, id=new_id(), action_id=a.id))
            for r in rules
        ]
        doc = write_resource_class_action(
            held_action(call.urls, a), rules=[held_rule(call.urls, r) for r in created]
        )
        return xml_answer(doc, media.RESOURCE_CLASS_ACTION, 201)

    def get_action(self, call: Call, id: str) -> Answer:
        """``GET .../service/resourceclassaction/{id}`` with its rules inline."""
        _sysadmin(call)
        a = self.state.action(id)
        rules = [held_rule(call.urls, r) for r in self.state.rules(a.id)]
        doc = write_resource_class_action(held_action(call.urls, a), rules=rules)
        return xml_answer(doc, media.RESOURCE_CLASS_ACTION)

    def delete_action(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/resourceclassaction/{id}`` (204; its rules too)."""
        _sysadmin(call)
        self.state.delete_action(id)
        return Answer(204)

    # -- ACL rules ------------------------------------------------------------------------------

    def list_rules(self, call: Call, id: str) -> Answer:
        """``GET .../resourceclassaction/{id}/aclrules``: ``aclRule`` records."""
        _sysadmin(call)
        a = self.state.action(id)
        records = [acl_rule_record(held_rule(call.urls, r), a.urn) for r in self.state.rules(a.id)]
        href = f"{call.urls.part('resourceclassaction', a.id)}/aclrules"
        return xml_answer(_records(href, ACL_RULE_RECORDS, records), media.RECORDS)

    def add_rule(self, call: Call, id: str) -> Answer:
        """``POST .../resourceclassaction/{id}/aclrules``: 201 + ``AclRule``."""
        _sysadmin(call)
        a = self.state.action(id)
        sent = read_acl_rule(_body(call)).value
        r = self.state.add_rule(stored(AclRule, sent, id=new_id(), action_id=a.id))
        return xml_answer(write_acl_rule(held_rule(call.urls, r)), media.ACL_RULE, 201)

    def get_rule(self, call: Call, id: str) -> Answer:
        """``GET .../service/aclrule/{id}``."""
        _sysadmin(call)
        return xml_answer(write_acl_rule(held_rule(call.urls, self.state.rule(id))), media.ACL_RULE)

    def delete_rule(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/aclrule/{id}`` (204)."""
        _sysadmin(call)
        self.state.delete_rule(id)
        return Answer(204)

    # -- service resources -------------------------------------------------------------------

    def list_resources(self, call: Call, id: str) -> Answer:
        """``GET .../resourceclass/{id}/serviceresources``: ``serviceResource`` records."""
        _sysadmin(call)
        c = self.state.resource_class(id)
        records = [
            service_resource_record(held_resource(call.urls, r), c.urn)
            for r in self.state.resources(c.id)
        ]
        href = f"{call.urls.part('resourceclass', c.id)}/serviceresources"
        return xml_answer(_records(href, SERVICE_RESOURCE_RECORDS, records), media.RECORDS)

    def add_resource(self, call: Call, id: str) -> Answer:
        """``POST .../resourceclass/{id}/serviceresources``: 201 + ``ServiceResource``; its
        ``Org`` must be an organization the cell knows."""
        _sysadmin(call)
        c = self.state.resource_class(id)
        sent = read_service_resource(_body(call)).value
        if sent.org is not None:
            self.state.org(uuid_of(sent.org.href))  # 404 for an unknown org
        r = self.state.add_resource(stored(ServiceResource, sent, id=new_id(), class_id=c.id))
        doc = write_service_resource(held_resource(call.urls, r))
        return xml_answer(doc, media.SERVICE_RESOURCE, 201)

    def get_resource(self, call: Call, id: str) -> Answer:
        """``GET .../service/serviceresource/{id}``."""
        _sysadmin(call)
        doc = write_service_resource(held_resource(call.urls, self.state.resource(id)))
        return xml_answer(doc, media.SERVICE_RESOURCE)

    def delete_resource(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/serviceresource/{id}`` (204)."""
        _sysadmin(call)
        self.state.delete_resource(id)
        return Answer(204)

    # -- the authorization check -------------------------------------------------------------

    def check_one(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/authorizationcheck``: against this service's rules (a
        service without ``AuthorizationEnabled`` authorizes everything)."""
        _sysadmin(call)
        s = self.state.service(id)
        return self._check(call, [s.id] if s.authorization_enabled else [])

    def check_all(self, call: Call) -> Answer:
        """``POST .../service/authorizationcheck``: against every service with
        ``AuthorizationEnabled``."""
        _sysadmin(call)
        return self._check(call, [s.id for s in self.state.services() if s.authorization_enabled])

    def _check(self, call: Call, service_ids: Iterable[str]) -> Answer:
        check = read_authorization_check_params(_body(call))
        user = self.state.user_by_id(uuid_of(check.user.href)) if check.user else None
        if user is None:
            raise BadRequest("The User of the authorization check is not a known user")
        allowed = is_authorized(
            self.state, service_ids, Caller.of(user), check.http_method, check.url
        )
        doc = write_authorization_check_response(allowed)
        return xml_answer(doc, media.AUTHORIZATION_CHECK_RESPONSE)


def _sysadmin(call: Call) -> None:
    require_sysadmin(call)


def _body(call: Call) -> bytes:
    return read_body(call)
