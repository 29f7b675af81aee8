"""What vcdext wants registered in vCD (desired) and what vCD has (actual), as plain values.

:func:`desired_service` turns a plugin's :class:`~vcdext.registry.Service` into a
:class:`DesiredService`; :mod:`vcdext.vcd.observe` reads an :class:`ActualService` from vCD;
:mod:`vcdext.vcd.plan` compares the two. Nothing here does I/O.

**How vcdext recognises its own services.** Every service vcdext registers carries a last
line in its ``Description``: ``[managed by vcdext]``, or ``[managed by vcdext; bundle
sha256:<16 hex>]`` once a localization bundle was uploaded. ``--prune`` only ever deletes
services with that marker, and the digest tells the reconcile whether the bundle changed
(vCD cannot hand a bundle back). The rest of the description is the plugin's own text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..registry import Service
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
class LinkSpec:
    """A service link as vCD stores it (``ServiceLink`` / ``ServiceLinkRecord``)."""

    rel: str
    href: str
    mime_type: str
    resource_type: str
    resource_id: str = ""
    external_id: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a link when comparing with vCD. ``ExternalResourceId`` is left out:
        vCD's link records do not carry it."""
        return (self.rel, self.href, self.mime_type, self.resource_type, self.resource_id)


@dataclass(frozen=True)
class RightSpec:
    """A right: ``name`` is vCD's full name ``{namespace}:Name``, ``short_name`` the plugin's."""

    name: str
    short_name: str
    description: str
    category: str
    bundle_key: str = ""


@dataclass(frozen=True)
class ApiDefinitionSpec:
    """An ``ApiDefinition`` (compared by name, entry point, namespace and vendor)."""

    name: str
    entry_point: str
    namespace: str
    api_vendor: str
    description: str = field(default="", compare=False)
    versions: tuple[str, ...] = field(default=API_DEFINITION_VERSIONS, compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a definition when comparing with vCD's records."""
        return (self.name, self.entry_point, self.namespace, self.api_vendor)


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
    links: tuple[LinkSpec, ...] = ()
    rights: tuple[RightSpec, ...] = ()
    api_definitions: tuple[ApiDefinitionSpec, ...] = ()
    bundle: LocalizationBundle | None = None


@dataclass(frozen=True)
class RemoteFilter:
    """An API filter in vCD; ``href`` deletes it."""

    url_pattern: str
    href: str


@dataclass(frozen=True)
class RemoteLink:
    """A service link in vCD; ``href`` deletes it."""

    spec: LinkSpec
    href: str


@dataclass(frozen=True)
class RemoteApiDefinition:
    """An API definition in vCD; ``href`` deletes it."""

    spec: ApiDefinitionSpec
    href: str


@dataclass(frozen=True)
class RemoteRight:
    """A right of the service in vCD; ``id`` is its URN ``urn:vcloud:right:<uuid>``."""

    name: str
    href: str
    id: str
    description: str = ""
    category: str = ""
    bundle_key: str = ""


@dataclass(frozen=True)
class DocLink:
    """A ``Link`` of a vCloud document."""

    rel: str
    href: str
    type: str = ""
    name: str = ""


@dataclass(frozen=True)
class ActualService:
    """A service as vCD has it, with its filters, links, API definitions and rights."""

    href: str
    id: str
    name: str
    namespace: str
    description: str = ""
    managed: bool = False
    bundle_digest: str | None = None
    enabled: bool = False
    authorization_enabled: bool = False
    routing_key: str = ""
    priority: int = 50
    exchange: str = ""
    vendor: str = ""
    links: tuple[DocLink, ...] = field(default=(), repr=False)
    filters: tuple[RemoteFilter, ...] = ()
    service_links: tuple[RemoteLink, ...] = ()
    api_definitions: tuple[RemoteApiDefinition, ...] = ()
    rights: tuple[RemoteRight, ...] = ()


def entry_point(service: Service) -> str | None:
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
    service: Service,
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
        LinkSpec(
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
    definitions: tuple[ApiDefinitionSpec, ...] = ()
    if entry is not None:
        definitions = (
            ApiDefinitionSpec(
                name=service.name,
                entry_point=entry,
                namespace=service.namespace,
                api_vendor=service.vendor,
                description=service.description,
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
        # sends. vCD's own framework needs resource classes and ACL rules, which vcdext does
        # not register, so enabling it would lock every caller out.
        authorization_enabled=False,
        filters=service.api_filters,
        links=links,
        rights=rights,
        api_definitions=definitions,
        bundle=make_bundle(messages) if messages else None,
    )
