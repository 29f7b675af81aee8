"""What vcdext wants registered in vCD (desired) and what vCD has (actual), as plain values.

:func:`desired_service` turns what a plugin declares (:class:`~vcdext.registry.Service`) into
a :class:`DesiredService`; :mod:`vcdext.vcd.observe` reads an :class:`ActualService` from vCD;
:mod:`vcdext.vcd.plan` compares the two. The objects vCD holds (services, filters, links, API
definitions, rights) are :mod:`vcdext.vcloud.model`'s, shared with the local cell; this module
adds only the client's views of them. Nothing here does I/O.

**How vcdext recognises its own services.** Every service vcdext registers carries a last
line in its ``Description``: ``[managed by vcdext]``, or ``[managed by vcdext; bundle
sha256:<16 hex>]`` once a localization bundle was uploaded. ``--prune`` only ever deletes
services with that marker, and the digest tells the reconcile whether the bundle changed
(vCD cannot hand a bundle back). The rest of the description is the plugin's own text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .. import registry
from ..acl import SYSTEM
from ..acl import ResourceClass as DeclaredResourceClass
from ..context import SYSTEM_ORG_ID
from ..vcloud.model import (
    AclRule,
    ApiDefinition,
    ApiFilter,
    Held,
    Link,
    ResourceClass,
    ResourceClassAction,
    Right,
    Service,
    ServiceLink,
)
from .bundle import LocalizationBundle, make_bundle

MARKER = "managed by vcdext"
_MARKER_LINE = re.compile(r"\n?\[managed by vcdext(?:; bundle sha256:([0-9a-f]{8,64}))?\]\s*\Z")

#: ``SupportedApiVersions`` of the ApiDefinition vcdext declares for a service.
API_DEFINITION_VERSIONS: tuple[str, ...] = ("1.0",)


def compose_description(text: str, bundle_digest: str | None = None) -> str:
    """The ``Description`` to send: the plugin's text, then the vcdext marker line."""
    marker = f"[{MARKER}; bundle sha256:{bundle_digest}]" if bundle_digest else f"[{MARKER}]"
    return f"{text.rstrip()}\n{marker}" if text.strip() else marker


def split_description(description: str) -> tuple[str, bool, str | None]:
    """``(plugin text, managed by vcdext?, bundle digest)`` of a ``Description`` from vCD."""
    m = _MARKER_LINE.search(description)
    if m is None:
        return description.strip(), False, None
    return description[: m.start()].strip(), True, m.group(1)


@dataclass(frozen=True)
class RightSpec:
    """A right: ``name`` is vCD's full name ``{namespace}:Name``, ``short_name`` the plugin's."""

    name: str
    short_name: str
    description: str
    category: str
    bundle_key: str = ""

    def as_right(self, namespace: str, *, name: str) -> Right:
        """The right to send: ``name`` is the short name to create, the full name to update."""
        return Right(
            name=name,
            category=self.category,
            description=self.description,
            bundle_key=self.bundle_key,
            service_namespace=namespace,
        )


@dataclass(frozen=True)
class DesiredService:
    """Everything vcdext registers for one service."""

    plugin: str
    name: str
    namespace: str
    routing_key: str
    exchange: str
    description: str = ""
    vendor: str = ""
    priority: int = 50
    enabled: bool = True
    authorization_enabled: bool = False
    filters: tuple[str, ...] = ()
    links: tuple[ServiceLink, ...] = ()
    rights: tuple[RightSpec, ...] = ()
    api_definitions: tuple[ApiDefinition, ...] = ()
    bundle: LocalizationBundle | None = None
    #: vCD authorization framework classes (with actions and ACL rules) to create.
    resource_classes: tuple[DeclaredResourceClass, ...] = ()

    def service(self, description: str) -> Service:
        """The service to send, with ``description`` (the plugin's text and the marker)."""
        return Service(
            name=self.name,
            namespace=self.namespace,
            routing_key=self.routing_key,
            exchange=self.exchange,
            enabled=self.enabled,
            authorization_enabled=self.authorization_enabled,
            priority=self.priority,
            vendor=self.vendor,
            description=description,
        )


@dataclass(frozen=True)
class ActualRule:
    """An ACL rule as vCD holds it; ``principal_right`` is the name of the right its
    ``PrincipalAccess`` entity names (``None`` when it names none, or a user)."""

    held: Held[AclRule]
    principal_right: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a rule when comparing with a declared one."""
        rule = self.held.value
        principal = rule.principal
        who = self.principal_right or (
            principal.entity.href if principal is not None and principal.entity else ""
        )
        org = rule.organization
        org_access = org.access if org else ""
        if org is not None and org.entity is not None:
            tail = org.entity.href.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            org_access = SYSTEM if tail.lower() == SYSTEM_ORG_ID else f"Entity {org.entity.href}"
        return (
            rule.name,
            rule.service_resource.access if rule.service_resource else "",
            org_access,
            principal.access if principal else "",
            who,
        )


@dataclass(frozen=True)
class ActualAction:
    """A resource class action as vCD holds it, with its ACL rules."""

    held: Held[ResourceClassAction]
    rules: tuple[ActualRule, ...] = ()


@dataclass(frozen=True)
class ActualResourceClass:
    """A resource class as vCD holds it, with its actions."""

    held: Held[ResourceClass]
    actions: tuple[ActualAction, ...] = ()


@dataclass(frozen=True)
class ActualService:
    """A service as vCD holds it, with its filters, links, API definitions and rights.

    ``description`` is the plugin's text: the vcdext marker line is split off into
    ``managed`` and ``bundle_digest``.
    """

    held: Held[Service]
    description: str = ""
    managed: bool = False
    bundle_digest: str | None = None
    filters: tuple[Held[ApiFilter], ...] = ()
    service_links: tuple[Held[ServiceLink], ...] = ()
    api_definitions: tuple[Held[ApiDefinition], ...] = ()
    rights: tuple[Held[Right], ...] = ()
    resource_classes: tuple[ActualResourceClass, ...] = ()

    @classmethod
    def of(cls, held: Held[Service]) -> ActualService:
        """The service of a ``Service`` document, without its parts."""
        text, managed, digest = split_description(held.value.description)
        return cls(held, description=text, managed=managed, bundle_digest=digest)

    @property
    def service(self) -> Service:
        """The service's own fields (its description with the marker line)."""
        return self.held.value

    @property
    def href(self) -> str:
        """Where the service is."""
        return self.held.href

    @property
    def id(self) -> str:
        """The service's URN."""
        return self.held.id

    @property
    def links(self) -> tuple[Link, ...]:
        """The links of the service's document."""
        return self.held.links

    @property
    def name(self) -> str:
        """The service's name."""
        return self.service.name

    @property
    def namespace(self) -> str:
        """The service's namespace."""
        return self.service.namespace

    @property
    def enabled(self) -> bool:
        """Whether vCD routes requests to the service."""
        return self.service.enabled

    @property
    def authorization_enabled(self) -> bool:
        """Whether vCD's own authorization framework is on."""
        return self.service.authorization_enabled

    @property
    def routing_key(self) -> str:
        """The service's routing key."""
        return self.service.routing_key

    @property
    def priority(self) -> int:
        """The service's priority."""
        return self.service.priority

    @property
    def exchange(self) -> str:
        """The exchange vCD publishes the service's requests to."""
        return self.service.exchange

    @property
    def vendor(self) -> str:
        """The service's vendor."""
        return self.service.vendor


def entry_point(service: registry.Service) -> str | None:
    """``{baseUri}`` + the first operation path without ``/api/`` (up to its first parameter).

    ``{baseUri}`` is vCD's API root *with* its trailing ``/api/`` [inferred from VMware's
    examples], so ``/api/hello`` becomes ``{baseUri}hello``. ``None`` without operations.
    """
    if not service.operations:
        return None
    templates = [op.path.template for op in service.operations]
    path = next((t for t in templates if "{" not in t), None)
    if path is None:
        first = templates[0]
        path = first[: first.index("{")]
    return "{baseUri}" + path.removeprefix("/api").lstrip("/")


def desired_service(
    service: registry.Service,
    *,
    exchange: str,
    messages: Mapping[str, Mapping[str, str]] | None = None,
) -> DesiredService:
    """What to register for ``service``.

    :param exchange: ``amqp.exchange``, the exchange vCD publishes the service's requests to.
    :param messages: the service's localization messages ``{locale: {key: value}}``; a
        bundle is uploaded when given (and non-empty).
    :raises ValueError: bad localization messages (the message names the locale or key).
    """
    rights = tuple(
        RightSpec(
            name=r.full_name,
            short_name=r.name,
            description=r.description,
            category=r.category or service.name,
            bundle_key=r.bundle_key,
        )
        for r in service.rights
    )
    links = tuple(
        ServiceLink(
            rel=link.rel,
            href=link.href,
            mime_type=link.mime_type,
            resource_type=link.resource_type,
            resource_id=link.resource_id or "",
            external_id=link.external_id or "",
        )
        for link in service.links
    )
    entry = entry_point(service)
    definitions: tuple[ApiDefinition, ...] = ()
    if entry is not None:
        definitions = (
            ApiDefinition(
                name=service.name,
                entry_point=entry,
                namespace=service.namespace,
                api_vendor=service.vendor,
                description=service.description,
                versions=API_DEFINITION_VERSIONS,
            ),
        )
    return DesiredService(
        plugin=service.plugin,
        name=service.name,
        namespace=service.namespace,
        routing_key=service.routing_key,
        exchange=exchange,
        description=service.description,
        vendor=service.vendor,
        priority=service.priority,
        # vcdext enforces each operation's rights itself, from the security context vCD
        # sends. vCD's own framework needs resource classes and ACL rules: it is enabled only
        # for a service that declares them (enabling it without would lock every caller out).
        authorization_enabled=bool(service.resource_classes),
        resource_classes=service.resource_classes,
        filters=service.api_filters,
        links=links,
        rights=rights,
        api_definitions=definitions,
        bundle=make_bundle(messages) if messages else None,
    )
