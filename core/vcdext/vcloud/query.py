"""The query service's documents: ``QueryList``, ``QueryResultRecords`` (and the
``...References`` of ``format=references``), and the record kinds extension services use:
``AdminServiceRecord``, ``ApiFilterRecord``, ``ServiceLinkRecord``,
``AdminApiDefinitionRecord`` and ``RightRecord``; each record written once and read once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from lxml import etree

from . import media
from .elements import root, sub, v, xs_boolean
from .model import ApiDefinition, ApiFilter, Held, Link, Right, Service, ServiceLink, find_link
from .reference import read_links, write_link

#: ``format=`` of a query → the media type of its result.
FORMATS = {
    "records": media.RECORDS,
    "idrecords": media.IDRECORDS,
    "references": media.REFERENCES,
}


@dataclass(frozen=True)
class RecordKind:
    """One query type: its record and reference element names and its objects' media type."""

    name: str
    record: str
    reference: str
    object_type: str


#: The query types of extension services, by ``type=``.
RECORD_KINDS: dict[str, RecordKind] = {
    k.name: k
    for k in (
        RecordKind("adminService", "AdminServiceRecord", "AdminServiceReference", media.SERVICE),
        RecordKind("apiFilter", "ApiFilterRecord", "ApiFilterReference", media.API_FILTER),
        RecordKind("serviceLink", "ServiceLinkRecord", "ServiceLinkReference", media.SERVICE_LINK),
        RecordKind(
            "adminApiDefinition",
            "AdminApiDefinitionRecord",
            "AdminApiDefinitionReference",
            media.API_DEFINITION,
        ),
        RecordKind("right", "RightRecord", "RightReference", media.RIGHT),
    )
}

#: A record's attributes (``href`` and ``id`` always present).
Record = dict[str, str]


# -- records of each kind -----------------------------------------------------------------------


def service_record(s: Held[Service]) -> Record:
    """The ``AdminServiceRecord`` of a service."""
    return {
        "href": s.href,
        "id": s.id,
        "name": s.value.name,
        "namespace": s.value.namespace,
        "vendor": s.value.vendor,
        "enabled": xs_boolean(s.value.enabled),
        "exchange": s.value.exchange,
        "routingKey": s.value.routing_key,
        "priority": str(s.value.priority),
        "isAuthorizationEnabled": xs_boolean(s.value.authorization_enabled),
    }


def read_service_record(record: etree._Element) -> Held[Service] | None:
    """An ``AdminServiceRecord`` (``None`` without an href)."""
    href = record.get("href", "")
    if not href:
        return None
    service = Service(
        name=record.get("name", ""),
        namespace=record.get("namespace", ""),
        routing_key=record.get("routingKey", ""),
        exchange=record.get("exchange", ""),
        enabled=record.get("enabled") == "true",
        authorization_enabled=record.get("isAuthorizationEnabled") == "true",
        vendor=record.get("vendor", ""),
    )
    return Held(service, href=href, id=record.get("id", ""))


def api_filter_record(f: Held[ApiFilter], service: str) -> Record:
    """The ``ApiFilterRecord`` of a filter of ``service`` (its href or URN)."""
    attrs = {"href": f.href, "id": f.id, "service": service}
    if f.value.url_pattern is not None:
        attrs["urlPattern"] = f.value.url_pattern
    if f.value.response_content_type is not None:
        attrs["responseContentType"] = f.value.response_content_type
    return attrs


def read_api_filter_record(record: etree._Element) -> Held[ApiFilter] | None:
    """An ``ApiFilterRecord``; ``href`` is where it is removed (``None`` without one)."""
    href = _remove_href(record)
    if not href:
        return None
    value = ApiFilter(record.get("urlPattern"), record.get("responseContentType"))
    return Held(value, href=href, id=record.get("id", ""))


def service_link_record(link: Held[ServiceLink], service: str) -> Record:
    """The ``ServiceLinkRecord`` of a link of ``service``."""
    attrs = {
        "href": link.href,
        "id": link.id,
        "service": service,
        "rel": link.value.rel,
        "linkHref": link.value.href,
        "mimeType": link.value.mime_type,
        "resourceType": link.value.resource_type,
    }
    if link.value.resource_id:
        attrs["resourceId"] = link.value.resource_id
    return attrs


def read_service_link_record(record: etree._Element) -> Held[ServiceLink] | None:
    """A ``ServiceLinkRecord`` (records carry no ``ExternalResourceId``)."""
    href = _remove_href(record)
    if not href:
        return None
    value = ServiceLink(
        rel=record.get("rel", ""),
        href=record.get("linkHref", ""),
        mime_type=record.get("mimeType", ""),
        resource_type=record.get("resourceType", ""),
        resource_id=record.get("resourceId", "") or "",
    )
    return Held(value, href=href, id=record.get("id", ""))


def api_definition_record(
    d: Held[ApiDefinition], service: str, owner: Service | None = None
) -> Record:
    """The ``AdminApiDefinitionRecord`` of a definition of ``service`` (``owner``: the
    service's name, namespace and vendor are repeated in the record)."""
    attrs = {
        "href": d.href,
        "id": d.id,
        "name": d.value.name,
        "entryPoint": d.value.entry_point,
        "service": service,
        "namespace": d.value.namespace,
        "apiVendor": d.value.api_vendor,
    }
    if owner is not None:
        attrs.update(
            serviceName=owner.name, serviceNamespace=owner.namespace, serviceVendor=owner.vendor
        )
    return attrs


def read_api_definition_record(record: etree._Element) -> Held[ApiDefinition] | None:
    """An ``AdminApiDefinitionRecord``."""
    href = _remove_href(record)
    if not href:
        return None
    value = ApiDefinition(
        name=record.get("name", ""),
        entry_point=record.get("entryPoint", ""),
        namespace=record.get("namespace", ""),
        api_vendor=record.get("apiVendor", "") or "",
    )
    return Held(value, href=href, id=record.get("id", ""))


def right_record(r: Held[Right]) -> Record:
    """The ``RightRecord`` of a right."""
    return {"href": r.href, "id": r.id, "name": r.value.name, "category": r.value.category}


def read_right_record(record: etree._Element) -> Held[Right] | None:
    """A ``RightRecord``."""
    href = record.get("href", "")
    if not href:
        return None
    value = Right(name=record.get("name", ""), category=record.get("category", ""))
    return Held(value, href=href, id=record.get("id", ""))


def _remove_href(record: etree._Element) -> str:
    # A record's own remove link wins over its href (both name the same object in vCD).
    return find_link(read_links(record), media.REL_REMOVE) or record.get("href") or ""


# -- result documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Where one page of a query result is and how it relates to the whole."""

    href: str
    format: str
    page: int
    page_size: int
    total: int
    links: tuple[Link, ...] = ()


def write_query_result(
    kind: RecordKind, page: Page, records: Iterable[Mapping[str, str]]
) -> etree._Element:
    """``QueryResultRecords`` (``records``/``idrecords``) or ``{Kind}References``
    (``references``) holding ``records``."""
    references = page.format == "references"
    el = root(
        media.VCLOUD_NS,
        f"{kind.reference}s" if references else "QueryResultRecords",
        href=page.href,
        type=FORMATS[page.format],
        name=kind.name,
        page=str(page.page),
        pageSize=str(page.page_size),
        total=str(page.total),
    )
    for link in page.links:
        write_link(el, link)
    for record in records:
        if references:
            name = record.get("name") or record.get("urlPattern") or record.get("rel")
            sub(
                el,
                kind.reference,
                href=record["href"],
                id=record["id"],
                type=kind.object_type,
                name=name or None,
            )
        else:
            sub(el, kind.record, type=kind.object_type, **record)
    return el


def read_records(el: etree._Element) -> Iterator[etree._Element]:
    """The record elements of a ``QueryResultRecords`` (everything but its links)."""
    for record in el:
        if isinstance(record.tag, str) and record.tag != v("Link"):
            yield record


def write_query_list(href: str, links: Iterable[Link]) -> etree._Element:
    """``QueryList``: one ``down`` link per query type and format."""
    el = root(media.VCLOUD_NS, "QueryList", href=href, type=media.QUERY_LIST)
    for link in links:
        write_link(el, link)
    return el
