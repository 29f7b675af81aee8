"""Building the vmext/vcloud XML bodies vcdext sends, and reading the documents vCD returns.

Builders follow the element order of VMware's schemas (``extension/services.xsd``,
``vcloud/entity.xsd``, ``admin/user.xsd``); readers are lenient (missing elements read as
empty) because vCD versions differ in what they include.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from lxml import etree

from .media import VCLOUD_NS, VMEXT_NS
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

_NSMAP_VMEXT = cast("dict[str, str]", {None: VMEXT_NS, "vcloud": VCLOUD_NS})
_NSMAP_VCLOUD = cast("dict[str, str]", {None: VCLOUD_NS})


def _v(name: str) -> str:
    return f"{{{VCLOUD_NS}}}{name}"


def _x(name: str) -> str:
    return f"{{{VMEXT_NS}}}{name}"


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, tag)
    child.text = text
    return child


def _bool(value: bool) -> str:
    return "true" if value else "false"


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
    root = etree.Element(_x("Service"), nsmap=_NSMAP_VMEXT)
    if operation_key:
        root.set("operationKey", operation_key)
    root.set("name", desired.name)
    if description:
        _sub(root, _v("Description"), description)
    _sub(root, _x("Namespace"), desired.namespace)
    _sub(root, _x("Enabled"), _bool(desired.enabled))
    _sub(root, _x("AuthorizationEnabled"), _bool(desired.authorization_enabled))
    _sub(root, _x("RoutingKey"), desired.routing_key)
    _sub(root, _x("Priority"), str(desired.priority))
    _sub(root, _x("Exchange"), desired.exchange)
    if desired.vendor:
        _sub(root, _x("Vendor"), desired.vendor)
    if children and desired.filters:
        filters = etree.SubElement(root, _x("ApiFilters"))
        for pattern in desired.filters:
            _fill_api_filter(etree.SubElement(filters, _x("ApiFilter")), pattern)
    if children and desired.links:
        links = etree.SubElement(root, _x("ServiceLinks"))
        for link in desired.links:
            _fill_service_link(etree.SubElement(links, _x("ServiceLink")), link)
    return root


def _fill_api_filter(el: etree._Element, pattern: str) -> None:
    _sub(el, _x("UrlPattern"), pattern)


def api_filter_element(pattern: str) -> etree._Element:
    """A ``vmext:ApiFilter`` with a ``UrlPattern``."""
    root = etree.Element(_x("ApiFilter"), nsmap=_NSMAP_VMEXT)
    _fill_api_filter(root, pattern)
    return root


def _fill_service_link(el: etree._Element, link: LinkSpec) -> None:
    _sub(el, _x("LinkHref"), link.href)
    _sub(el, _x("MimeType"), link.mime_type)
    _sub(el, _x("Rel"), link.rel)
    _sub(el, _x("ResourceType"), link.resource_type)
    if link.resource_id:
        _sub(el, _x("ResourceId"), link.resource_id)
    if link.external_id:
        _sub(el, _x("ExternalResourceId"), link.external_id)


def service_link_element(link: LinkSpec) -> etree._Element:
    """A ``vmext:ServiceLink``."""
    root = etree.Element(_x("ServiceLink"), nsmap=_NSMAP_VMEXT)
    _fill_service_link(root, link)
    return root


def api_definition_element(spec: ApiDefinitionSpec) -> etree._Element:
    """A ``vmext:ApiDefinition`` (no file descriptors)."""
    root = etree.Element(_x("ApiDefinition"), nsmap=_NSMAP_VMEXT)
    root.set("name", spec.name)
    if spec.description:
        _sub(root, _v("Description"), spec.description)
    _sub(root, _x("EntryPoint"), spec.entry_point)
    _sub(root, _x("Namespace"), spec.namespace)
    _sub(root, _x("ApiVendor"), spec.api_vendor)
    versions = etree.SubElement(root, _x("SupportedApiVersions"))
    for version in spec.versions:
        _sub(versions, _x("Version"), version)
    return root


def right_element(right: RightSpec, *, namespace: str, name: str) -> etree._Element:
    """A ``vcloud:Right``: ``name`` is the short name to create, the full name to update."""
    root = etree.Element(_v("Right"), nsmap=_NSMAP_VCLOUD)
    root.set("name", name)
    if right.description:
        _sub(root, _v("Description"), right.description)
    _sub(root, _v("Category"), right.category)
    if right.bundle_key:
        _sub(root, _v("BundleKey"), right.bundle_key)
    _sub(root, _v("ServiceNamespace"), namespace)
    return root


def bundle_upload_params(size: int, namespace: str) -> etree._Element:
    """``vmext:BundleUploadParams fileSize= serviceNamespace=``."""
    root = etree.Element(_x("BundleUploadParams"), nsmap=_NSMAP_VMEXT)
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
    for child in root:
        if isinstance(child.tag, str) and child.tag != _v("Link"):
            yield child


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
