"""Carrying out a :class:`~vcdext.vcd.plan.ServicePlan` against vCD.

Each action follows the service document's own links (``add`` links by media type,
``rights``, ``bundle:upload``, ``edit``, ``remove``), with the documented paths as fallback.
A service create carries an ``operationKey`` derived from the namespace, so instances that
start together and both create get the same service back where vCD honours the key; where it
refuses the duplicate instead, :class:`CreateConflict` tells the reconcile to look again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from ..acl import SYSTEM, Acl, ResourceAction
from ..context import SYSTEM_ORG_ID
from ..vcloud import media
from ..vcloud.authorization import (
    read_acl_rule,
    read_resource_class,
    read_resource_class_action,
    write_acl_rule,
    write_resource_class,
    write_resource_class_action,
)
from ..vcloud.extension import (
    read_bundle_upload_socket,
    read_right,
    write_api_definition,
    write_api_filter,
    write_bundle_upload_params,
    write_right,
    write_service,
    write_service_link,
)
from ..vcloud.model import (
    AclAccess,
    AclRule,
    ApiFilter,
    Reference,
    ResourceClassAction,
    right_urn,
)
from .client import VcdClient, readable
from .errors import VcdApiError, VcdError
from .model import ActualService, DesiredService, compose_description
from .observe import Observer, service_link
from .plan import (
    Action,
    AddAclRule,
    AddApiDefinition,
    AddFilter,
    AddLink,
    AddResourceAction,
    AddResourceClass,
    AddRight,
    CreateService,
    DeleteService,
    RemoveAclRule,
    RemoveApiDefinition,
    RemoveFilter,
    RemoveLink,
    RemoveResourceAction,
    RemoveResourceClass,
    ServicePlan,
    UpdateRight,
    UpdateService,
    UploadBundle,
    resource_value,
)

log = logging.getLogger(__name__)

_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://vcdext.io/operation-key/service")


def operation_key(namespace: str) -> str:
    """The ``operationKey`` of the create of the service with ``namespace`` (deterministic)."""
    return f"vcdext-{uuid.uuid5(_KEY_NAMESPACE, namespace)}"


class CreateConflict(VcdError):
    """vCD refused to create the service, most likely because it exists by now."""

    def __init__(self, namespace: str, cause: VcdApiError) -> None:
        self.namespace, self.cause = namespace, cause
        super().__init__(f"creating service {namespace} failed: {cause}")


@dataclass
class Applied:
    """What applying one service plan did."""

    namespace: str
    #: The service as vCD had it before, or as created (without children).
    service: ActualService | None = None
    done: list[Action] = field(default_factory=list)
    #: Full right name → ``urn:vcloud:right:<uuid>``, for the rights created.
    right_ids: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Applier:
    """Applies service plans through a logged-in client."""

    def __init__(self, client: VcdClient, observer: Observer) -> None:
        self.client = client
        self.observer = observer
        self._right_refs: dict[str, Reference] = {}

    def apply(self, plan: ServicePlan) -> Applied:
        """Carry out every action of ``plan`` in order.

        :raises CreateConflict: the create was refused (the caller looks again).
        :raises VcdError: any other failure; later actions are not attempted.
        """
        result = Applied(plan.namespace, plan.actual)
        digest = plan.actual.bundle_digest if plan.actual else None
        for action in plan.actions:
            if isinstance(action, CreateService):
                result.service = self._create(action.desired)
            elif result.service is None:  # pragma: no cover - plans always create first
                raise VcdError(f"{plan.namespace}: no service to change")
            elif isinstance(action, UpdateService):
                self._put_service(result.service, action.desired, digest)
            elif isinstance(action, UploadBundle):
                self._upload(result.service, action)
                # Record the digest only once the upload went through.
                digest = action.bundle.digest
                if plan.desired is not None:
                    self._put_service(result.service, plan.desired, digest)
            elif isinstance(action, DeleteService):
                self.delete(result.service)
            else:
                self._apply_child(action, result.service, result)
            result.done.append(action)
            log.info("vCD %s: %s %s %s", plan.namespace, action.verb, action.subject, action.detail)
        return result

    def _apply_child(self, action: Action, service: ActualService, result: Applied) -> None:
        client = self.client
        if isinstance(action, AddFilter):
            url = service_link(service, media.REL_ADD, media.API_FILTER, "apifilters")
            client.post(url, write_api_filter(ApiFilter(action.url_pattern)), media.API_FILTER)
        elif isinstance(action, AddLink):
            url = service_link(service, media.REL_ADD, media.SERVICE_LINK, "links")
            client.post(url, write_service_link(action.link), media.SERVICE_LINK)
        elif isinstance(action, AddApiDefinition):
            url = service_link(service, media.REL_ADD, media.API_DEFINITION, "apidefinitions")
            client.post(url, write_api_definition(action.definition), media.API_DEFINITION)
        elif isinstance(
            action,
            RemoveFilter
            | RemoveLink
            | RemoveApiDefinition
            | RemoveResourceClass
            | RemoveResourceAction
            | RemoveAclRule,
        ):
            client.delete(action.href)
        elif isinstance(action, AddResourceClass):
            self._add_class(service, action)
        elif isinstance(action, AddResourceAction):
            self._add_action(service, action.class_href, action.action)
        elif isinstance(action, AddAclRule):
            self._add_rule(service, action.action_href, action.rule)
        elif isinstance(action, AddRight):
            url = service_link(service, media.REL_RIGHTS, None, "rights")
            right = action.right
            body = write_right(right.as_right(service.namespace, name=right.short_name))
            created = client.post(url, body, media.RIGHT)
            if created is not None:
                remote = readable(read_right, created, url)
                ident = remote.id or right_urn(remote.href)
                if ident:
                    result.right_ids[remote.value.name or right.name] = ident
        elif isinstance(action, UpdateRight):
            right = action.right
            body = write_right(right.as_right(service.namespace, name=right.name))
            try:
                client.put(action.href, body, media.RIGHT)
            except VcdApiError as exc:
                # PUT /admin/right is deprecated from API 33.0; a refusal is not fatal.
                result.warnings.append(
                    f"could not update right {right.name} ({exc.status} "
                    f"{exc.minor_code or exc.message}); it stays as vCD has it"
                )
        else:  # pragma: no cover - every action type is handled above
            raise VcdError(f"unknown action {action!r}")

    # -- resource classes, actions, ACL rules ---------------------------------------------------

    def _created_href(
        self, created: etree._Element | None, url: str, reader: Callable[[etree._Element], Any]
    ) -> str:
        href = readable(reader, created, url).href if created is not None else ""
        if not href:
            raise VcdError(f"{url}: vCD did not say where the new object is")
        return str(href)

    def _add_class(self, service: ActualService, action: AddResourceClass) -> None:
        url = service_link(service, media.REL_ADD, media.RESOURCE_CLASS, "resourceclasses")
        body = write_resource_class(resource_value(action.resource_class))
        created = self.client.post(url, body, media.RESOURCE_CLASS)
        href = self._created_href(created, url, read_resource_class)
        for declared in action.resource_class.actions:
            self._add_action(service, href, declared)

    def _add_action(
        self, service: ActualService, class_href: str, declared: ResourceAction
    ) -> None:
        url = f"{class_href.rstrip('/')}/resourceclassactions"
        value = ResourceClassAction(declared.name, declared.method, declared.url_pattern)
        created = self.client.post(
            url, write_resource_class_action(value), media.RESOURCE_CLASS_ACTION
        )
        href = self._created_href(created, url, lambda el: read_resource_class_action(el)[0])
        for rule in declared.acl:
            self._add_rule(service, href, rule)

    def _add_rule(self, service: ActualService, action_href: str, rule: Acl) -> None:
        url = f"{action_href.rstrip('/')}/aclrules"
        principal = AclAccess("Shared")
        if rule.principal_right is not None:
            principal = AclAccess("Entity", self._right_reference(service, rule.principal_right))
        organization = AclAccess(rule.organization)
        if rule.organization == SYSTEM:
            system = Reference(f"{self.client.base_url}/api/org/{SYSTEM_ORG_ID}", media.ORG)
            organization = AclAccess("Entity", system)
        value = AclRule(
            rule.name,
            service_resource=AclAccess(rule.resource),
            organization=organization,
            principal=principal,
            description=rule.description,
        )
        created = self.client.post(url, write_acl_rule(value), media.ACL_RULE)
        self._created_href(created, url, read_acl_rule)

    def _right_reference(self, service: ActualService, name: str) -> Reference:
        """The reference of right ``name``: the service's own, else found by name in vCD."""
        if name not in self._right_refs:
            for right in self.observer.rights(service):
                self._right_refs[right.value.name] = Reference(
                    right.href, media.RIGHT, right.value.name, right.id
                )
        if name not in self._right_refs:
            urn = self.observer.right_ids([name]).get(name)
            if urn:
                href = f"{self.client.base_url}/api/admin/right/{urn.rsplit(':', 1)[-1]}"
                self._right_refs[name] = Reference(href, media.RIGHT, name, urn)
        if name not in self._right_refs:
            raise VcdError(f"an ACL rule names right {name!r}, which vCD does not know")
        return self._right_refs[name]

    # -- the service itself --------------------------------------------------------------------

    def _create(self, desired: DesiredService, *, keyed: bool = True) -> ActualService:
        url = self.observer.services_url()
        key = operation_key(desired.namespace) if keyed else None
        body = write_service(
            desired.service(compose_description(desired.description)),
            operation_key=key,
            filters=[ApiFilter(p) for p in desired.filters] or None,
            links=desired.links or None,
        )
        try:
            created = self.client.post(url, body, media.SERVICE)
        except VcdApiError as exc:
            if exc.status in (400, 409):
                raise CreateConflict(desired.namespace, exc) from None
            raise
        href = created.get("href", "") if created is not None else ""
        if not href:
            found = self.observer.find(desired.namespace, children=False)
            if found is None:
                raise VcdError(f"vCD accepted service {desired.namespace} but does not list it")
            return found
        try:
            return self.observer.read(href, children=False)
        except VcdApiError as exc:
            # How long vCD remembers an operationKey is not documented: if it answered with
            # the service an earlier create made (deleted since), create without the key.
            if exc.status != 404 or not keyed:
                raise
            log.warning(
                "vCD %s: the create returned a service that no longer exists (operationKey "
                "remembered from an earlier registration?); creating it without the key",
                desired.namespace,
            )
            return self._create(desired, keyed=False)

    def _put_service(
        self, service: ActualService, desired: DesiredService, digest: str | None
    ) -> None:
        description = compose_description(desired.description, digest)
        body = write_service(desired.service(description))
        self.client.put(_own_link(service, media.REL_EDIT, media.SERVICE), body, media.SERVICE)

    def _upload(self, service: ActualService, action: UploadBundle) -> None:
        url = service_link(
            service, media.REL_BUNDLE_UPLOAD, media.BUNDLE_UPLOAD_PARAMS, "localizationbundles"
        )
        data = action.bundle.data
        socket = self.client.post(
            url,
            write_bundle_upload_params(len(data), service.namespace),
            media.BUNDLE_UPLOAD_PARAMS,
        )
        location = readable(read_bundle_upload_socket, socket, url) if socket is not None else ""
        if not location:
            raise VcdError(f"{url}: vCD gave no uploadLocation for the localization bundle")
        self.client.put_bytes(location, data, media.ZIP)

    def delete(self, service: ActualService) -> None:
        """Disable the service (as pyvcloud does; whether vCD insists is unknown), then delete
        it. Its description is sent back unchanged."""
        if service.enabled:
            body = write_service(replace(service.service, enabled=False))
            self.client.put(_own_link(service, media.REL_EDIT, media.SERVICE), body, media.SERVICE)
        self.client.delete(_own_link(service, media.REL_REMOVE, None))


def _own_link(service: ActualService, rel: str, media_type: str | None) -> str:
    return service.held.link(rel, media_type) or service.href
