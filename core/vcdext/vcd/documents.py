"""Building the vmext/vcloud XML bodies vcdext sends, and reading the documents vCD returns.

Builders follow the element order of VMware's schemas (``extension/services.xsd``,
``vcloud/entity.xsd``, ``admin/user.xsd``); readers are lenient (missing elements read as
empty) because vCD versions differ in what they include.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lxml import etree

from ..vcloud.media import VCLOUD_NS, VMEXT_NS
from ..xml import boolean, child, document
from .model import (
    ActualService,
    ApiDefinitionSpec,
    DesiredService,
    DocLink,
    LinkSpec,
    RemoteApiDefinition,
    RemoteFilter,
    RemoteLink,
    RemoteRight,
    RightSpec,
    split_description,
)


def _v(name: str) -> str:
    return f"{{{VCLOUD_NS}}}{name}"


def _x(name: str) -> str:
    return f"{{{VMEXT_NS}}}{name}"


# -- builders -------------------------------------------------------------------------------


def service_element(
    desired: DesiredService,
    *,
    description: str,
    operation_key: str | None = None,
    children: bool = False,
) -> etree._Element:
    """A ``vmext:Service``: the settable fields, plus its filters and links when ``children``.

    ``children`` is for the create; an update (PUT) sends only the service's own fields.
    """
    root = document(VMEXT_NS, "Service")
    if operation_key:
        root.set("operationKey", operation_key)
    root.set("name", desired.name)
    if description:
        child(root, "Description", description)
    child(root, "Namespace", desired.namespace, ns=VMEXT_NS)
    child(root, "Enabled", boolean(desired.enabled), ns=VMEXT_NS)
    child(root, "AuthorizationEnabled", boolean(desired.authorization_enabled), ns=VMEXT_NS)
    child(root, "RoutingKey", desired.routing_key, ns=VMEXT_NS)
    child(root, "Priority", str(desired.priority), ns=VMEXT_NS)
    child(root, "Exchange", desired.exchange, ns=VMEXT_NS)
    if desired.vendor:
        child(root, "Vendor", desired.vendor, ns=VMEXT_NS)
    if children and desired.filters:
        filters = child(root, "ApiFilters", ns=VMEXT_NS)
        for pattern in desired.filters:
            _fill_api_filter(child(filters, "ApiFilter", ns=VMEXT_NS), pattern)
    if children and desired.links:
        links = child(root, "ServiceLinks", ns=VMEXT_NS)
        for link in desired.links:
            _fill_service_link(child(links, "ServiceLink", ns=VMEXT_NS), link)
    return root


def _fill_api_filter(el: etree._Element, pattern: str) -> None:
    child(el, "UrlPattern", pattern, ns=VMEXT_NS)


def api_filter_element(pattern: str) -> etree._Element:
    """A ``vmext:ApiFilter`` with a ``UrlPattern``."""
    root = document(VMEXT_NS, "ApiFilter")
    _fill_api_filter(root, pattern)
    return root


def _fill_service_link(el: etree._Element, link: LinkSpec) -> None:
    child(el, "LinkHref", link.href, ns=VMEXT_NS)
    child(el, "MimeType", link.mime_type, ns=VMEXT_NS)
    child(el, "Rel", link.rel, ns=VMEXT_NS)
    child(el, "ResourceType", link.resource_type, ns=VMEXT_NS)
    if link.resource_id:
        child(el, "ResourceId", link.resource_id, ns=VMEXT_NS)
    if link.external_id:
        child(el, "ExternalResourceId", link.external_id, ns=VMEXT_NS)


def service_link_element(link: LinkSpec) -> etree._Element:
    """A ``vmext:ServiceLink``."""
    root = document(VMEXT_NS, "ServiceLink")
    _fill_service_link(root, link)
    return root


def api_definition_element(spec: ApiDefinitionSpec) -> etree._Element:
    """A ``vmext:ApiDefinition`` (no file descriptors)."""
    root = document(VMEXT_NS, "ApiDefinition")
    root.set("name", spec.name)
    if spec.description:
        child(root, "Description", spec.description)
    child(root, "EntryPoint", spec.entry_point, ns=VMEXT_NS)
    child(root, "Namespace", spec.namespace, ns=VMEXT_NS)
    child(root, "ApiVendor", spec.api_vendor, ns=VMEXT_NS)
    versions = child(root, "SupportedApiVersions", ns=VMEXT_NS)
    for version in spec.versions:
        child(versions, "Version", version, ns=VMEXT_NS)
    return root


def right_element(right: RightSpec, *, namespace: str, name: str) -> etree._Element:
    """A ``vcloud:Right``: ``name`` is the short name to create, the full name to update."""
    root = document(VCLOUD_NS, "Right")
    root.set("name", name)
    if right.description:
        child(root, "Description", right.description)
    child(root, "Category", right.category)
    if right.bundle_key:
        child(root, "BundleKey", right.bundle_key)
    child(root, "ServiceNamespace", namespace)
    return root


def bundle_upload_params(size: int, namespace: str) -> etree._Element:
    """``vmext:BundleUploadParams fileSize= serviceNamespace=``."""
    root = document(VMEXT_NS, "BundleUploadParams")
    root.set("fileSize", str(size))
    root.set("serviceNamespace", namespace)
    return root


# -- readers --------------------------------------------------------------------------------


def doc_links(root: etree._Element) -> tuple[DocLink, ...]:
    """The ``Link`` children of a document (vcloud namespace)."""
    return tuple(
        DocLink(
            rel=el.get("rel", ""),
            href=el.get("href", ""),
            type=el.get("type", ""),
            name=el.get("name", ""),
        )
        for el in root.findall(_v("Link"))
        if el.get("href")
    )


def find_link(links: Iterable[DocLink], rel: str, media_type: str | None = None) -> str | None:
    """The href of the first link with ``rel`` (and ``media_type``, compared without params)."""
    for link in links:
        if link.rel != rel:
            continue
        if media_type is None or link.type.split(";")[0].strip() == media_type:
            return link.href
    return None


def _text(root: etree._Element, tag: str) -> str:
    return (root.findtext(tag) or "").strip()


def _flag(root: etree._Element, tag: str) -> bool:
    return _text(root, tag).lower() in ("true", "1")


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def service_from_document(root: etree._Element, *, href: str = "") -> ActualService:
    """A ``vmext:Service`` document, without its children (filters, links, ...)."""
    text, managed, digest = split_description(root.findtext(_v("Description")) or "")
    return ActualService(
        href=root.get("href") or href,
        id=root.get("id", ""),
        name=root.get("name", ""),
        namespace=_text(root, _x("Namespace")),
        description=text,
        managed=managed,
        bundle_digest=digest,
        enabled=_flag(root, _x("Enabled")),
        authorization_enabled=_flag(root, _x("AuthorizationEnabled")),
        routing_key=_text(root, _x("RoutingKey")),
        priority=_int(_text(root, _x("Priority")), 50),
        exchange=_text(root, _x("Exchange")),
        vendor=_text(root, _x("Vendor")),
        links=doc_links(root),
    )


def records(root: etree._Element) -> Iterator[etree._Element]:
    """The record elements of a ``QueryResultRecords`` (everything but its links)."""
    for record in root:
        if isinstance(record.tag, str) and record.tag != _v("Link"):
            yield record


def filter_from_record(record: etree._Element) -> RemoteFilter | None:
    """An ``ApiFilterRecord`` (``ResponseContentType`` filters, without a pattern, are skipped)."""
    pattern = record.get("urlPattern")
    href = _remove_href(record)
    return RemoteFilter(pattern, href) if pattern is not None and href else None


def link_from_record(record: etree._Element) -> RemoteLink | None:
    """A ``ServiceLinkRecord``."""
    href = _remove_href(record)
    if not href:
        return None
    spec = LinkSpec(
        rel=record.get("rel", ""),
        href=record.get("linkHref", ""),
        mime_type=record.get("mimeType", ""),
        resource_type=record.get("resourceType", ""),
        resource_id=record.get("resourceId", "") or "",
    )
    return RemoteLink(spec, href)


def api_definition_from_record(record: etree._Element) -> RemoteApiDefinition | None:
    """An ``AdminApiDefinitionRecord``."""
    href = _remove_href(record)
    if not href:
        return None
    spec = ApiDefinitionSpec(
        name=record.get("name", ""),
        entry_point=record.get("entryPoint", ""),
        namespace=record.get("namespace", ""),
        api_vendor=record.get("apiVendor", "") or "",
    )
    return RemoteApiDefinition(spec, href)


def _remove_href(record: etree._Element) -> str:
    # A record's own remove link wins over its href (both name the same object in vCD).
    for link in record.findall(_v("Link")):
        if link.get("rel") == "remove" and link.get("href"):
            return link.get("href", "")
    return record.get("href", "")


def right_refs(root: etree._Element) -> list[tuple[str, str, str]]:
    """``(name, href, id)`` of each ``Right`` reference in a ``vmext:RightRefs`` (the schema
    puts them in the vmext namespace; vcloud is accepted too)."""
    return [
        (el.get("name", ""), el.get("href", ""), el.get("id", ""))
        for el in root
        if el.tag in (_x("Right"), _v("Right")) and el.get("href")
    ]


def right_from_document(root: etree._Element, *, href: str = "", id: str = "") -> RemoteRight:
    """A ``vcloud:Right`` document; its id falls back to ``urn:vcloud:right:<last href part>``."""
    href = root.get("href") or href
    ident = root.get("id") or id or right_urn(href)
    return RemoteRight(
        name=root.get("name", ""),
        href=href,
        id=ident,
        description=_text(root, _v("Description")),
        category=_text(root, _v("Category")),
        bundle_key=_text(root, _v("BundleKey")),
    )


def right_urn(href: str) -> str:
    """``.../api/admin/right/<uuid>`` → ``urn:vcloud:right:<uuid>``."""
    tail = href.rstrip("/").rsplit("/", 1)[-1]
    return f"urn:vcloud:right:{tail}" if tail else ""


def upload_location(root: etree._Element) -> str:
    """The ``uploadLocation`` of a ``vmext:BundleUploadSocket``."""
    return root.get("uploadLocation", "")


def error_fields(root: etree._Element) -> tuple[str, str] | None:
    """``(minorErrorCode, message)`` of a ``vcloud:Error``, else ``None``."""
    if root.tag != _v("Error"):
        return None
    return root.get("minorErrorCode", ""), root.get("message", "")
