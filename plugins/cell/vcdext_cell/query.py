"""The query service: ``GET /api/query?type=...`` for the types extension services use.

Supported types: ``adminService``, ``apiFilter``, ``serviceLink``, ``adminApiDefinition`` and
``right`` (all for system administrators), in the formats ``records`` (default), ``idrecords``
(references to other objects, such as a filter's ``service``, are URNs instead of hrefs) and
``references``. Filters: ``attr==value`` and ``attr!=value`` (``*`` is a wildcard), joined with
``;`` (AND) or ``,`` (OR; AND binds tighter); no parentheses. A reference-valued attribute
(``service``) matches its URN, its UUID or its href. The filter may come with literal operators
and encoded values (pyvcloud) or wholly URL-encoded (``requests``' ``params=``); see
:func:`_conditions`. Paging: ``page`` (from 1) and
``pageSize`` (default 25, at most 128); sorting: ``sortAsc``/``sortDesc`` by attribute.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_plus

from lxml import etree

from vcdext.errors import BadRequest, Forbidden
from vcdext.vcloud import media
from vcdext.vcloud.model import Link
from vcdext.vcloud.query import (
    FORMATS,
    RECORD_KINDS,
    Page,
    RecordKind,
    api_definition_record,
    api_filter_record,
    right_record,
    service_link_record,
    service_record,
    write_query_list,
    write_query_result,
)

from .state import State
from .views import Urls, held_definition, held_filter, held_link, held_right, held_service

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 128

#: A result row: attribute → value; ``href``/``id`` always present.
Row = dict[str, str]


@dataclass(frozen=True)
class _Row:
    attrs: Row
    #: Other spellings a filter may use for reference-valued attributes.
    aliases: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryType:
    """One query type: its records (:mod:`vcdext.vcloud.query`) and how to list its rows."""

    kind: RecordKind
    rows: Callable[[State, Urls, bool], list[_Row]]

    @property
    def name(self) -> str:
        """The ``type=`` of the query."""
        return self.kind.name


def _service_ref(urls: Urls, service_id: str, ids: bool) -> tuple[str, frozenset[str]]:
    urn = f"urn:vcloud:externalService:{service_id}"
    href = urls.service(service_id)
    return (urn if ids else href), frozenset({urn, href, service_id})


def _services(state: State, urls: Urls, ids: bool) -> list[_Row]:
    return [_Row(service_record(held_service(urls, s))) for s in state.services()]


def _filters(state: State, urls: Urls, ids: bool) -> list[_Row]:
    rows = []
    for f in state.filters():
        ref, aliases = _service_ref(urls, f.service_id, ids)
        rows.append(_Row(api_filter_record(held_filter(urls, f), ref), {"service": aliases}))
    return rows


def _links(state: State, urls: Urls, ids: bool) -> list[_Row]:
    rows = []
    for x in state.links():
        ref, aliases = _service_ref(urls, x.service_id, ids)
        rows.append(_Row(service_link_record(held_link(urls, x), ref), {"service": aliases}))
    return rows


def _definitions(state: State, urls: Urls, ids: bool) -> list[_Row]:
    services = {s.id: s for s in state.services()}
    rows = []
    for d in state.definitions():
        ref, aliases = _service_ref(urls, d.service_id, ids)
        record = api_definition_record(held_definition(urls, d), ref, services.get(d.service_id))
        rows.append(_Row(record, {"service": aliases}))
    return rows


def _rights(state: State, urls: Urls, ids: bool) -> list[_Row]:
    return [_Row(right_record(held_right(urls, r))) for r in state.rights()]


_ROWS: dict[str, Callable[[State, Urls, bool], list[_Row]]] = {
    "adminService": _services,
    "apiFilter": _filters,
    "serviceLink": _links,
    "adminApiDefinition": _definitions,
    "right": _rights,
}
QUERY_TYPES: dict[str, QueryType] = {
    name: QueryType(kind, _ROWS[name]) for name, kind in RECORD_KINDS.items()
}

_CONDITION = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)(==|!=)(.*)", re.DOTALL)


@dataclass(frozen=True)
class QueryParams:
    """The query string of a query request, as the cell understands it."""

    type: str = ""
    format: str = "records"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    #: The filter exactly as it appeared in the URL (still URL-encoded).
    raw_filter: str = ""
    filter_encoded: bool = False
    sort_asc: str = ""
    sort_desc: str = ""

    @classmethod
    def parse(cls, query_string: str) -> QueryParams:
        """Read the raw query string; lenient about numbers (``1pageSize=5`` reads as 1)."""
        raw: dict[str, str] = {}
        for part in query_string.split("&"):
            key, _, value = part.partition("=")
            raw.setdefault(unquote_plus(key), value)
        fmt = unquote_plus(raw.get("format", "records")) or "records"
        if fmt not in FORMATS:
            raise BadRequest(f"Unknown query format {fmt!r}; use one of {', '.join(FORMATS)}")
        return cls(
            type=unquote_plus(raw.get("type", "")),
            format=fmt,
            page=max(1, _leading_int(raw.get("page"), 1)),
            page_size=min(
                MAX_PAGE_SIZE, max(1, _leading_int(raw.get("pageSize"), DEFAULT_PAGE_SIZE))
            ),
            raw_filter=raw.get("filter", ""),
            filter_encoded=unquote_plus(raw.get("filterEncoded", "")).lower() == "true",
            sort_asc=unquote_plus(raw.get("sortAsc", "")),
            sort_desc=unquote_plus(raw.get("sortDesc", "")),
        )

    def url(self, base: str, **changes: object) -> str:
        """This query's URL with some parameters changed (the filter is kept as sent)."""
        values = {
            "type": self.type,
            "format": str(changes.get("format", self.format)),
            "page": str(changes.get("page", self.page)),
            "pageSize": str(self.page_size),
        }
        parts = [f"{k}={quote(v, safe='')}" for k, v in values.items() if v]
        if self.raw_filter:
            if self.filter_encoded:
                parts.append("filterEncoded=true")
            parts.append(f"filter={self.raw_filter}")
        for key, value in (("sortAsc", self.sort_asc), ("sortDesc", self.sort_desc)):
            if value:
                parts.append(f"{key}={quote(value, safe='')}")
        joiner = "&" if "?" in base else "?"
        return base + joiner + "&".join(parts)


def _leading_int(text: str | None, default: int) -> int:
    m = re.match(r"\d+", text or "")
    return int(m.group(0)) if m else default


def _conditions(
    raw_filter: str, filter_encoded: bool, known: set[str]
) -> list[list[tuple[str, str, str]]]:
    """OR-groups of AND-ed ``(attribute, operator, value)``: ``a==1;b==2,c==3`` is
    ``(a AND b) OR c``.

    Two spellings reach the cell: operators literal in the URL with each value URL-encoded
    (pyvcloud), or the whole filter URL-encoded once (``requests``' ``params=``); in the
    second, ``filterEncoded=true`` means the values were encoded once more before that.
    """
    if not raw_filter:
        return []
    whole = "=" not in raw_filter
    text = unquote_plus(raw_filter) if whole else raw_filter
    groups = []
    for alternative in text.split(","):
        group = []
        for term in alternative.split(";"):
            m = _CONDITION.fullmatch(term)
            if m is None:
                raise BadRequest(
                    f"Unsupported query filter term {unquote_plus(term)!r}; the local cell "
                    "supports attr==value and attr!=value joined by ';' and ','"
                )
            attr, op, value = m.group(1), m.group(2), m.group(3)
            if not whole or filter_encoded:
                value = unquote_plus(value)
            if attr not in known:
                raise BadRequest(f"Unknown query filter attribute {attr!r}")
            group.append((attr, op, value))
        groups.append(group)
    return groups


def _matches(row: _Row, attr: str, op: str, value: str) -> bool:
    candidates = {row.attrs.get(attr, "")} | set(row.aliases.get(attr, frozenset()))
    if "*" in value:
        hit = any(fnmatch.fnmatchcase(c, value) for c in candidates)
    else:
        hit = value in candidates
    return hit if op == "==" else not hit


def run_query(
    state: State,
    urls: Urls,
    params: QueryParams,
    *,
    sysadmin: bool,
    href: str | None = None,
    only_service: str | None = None,
) -> tuple[etree._Element, str]:
    """Answer one query: the result document and its media type.

    :param href: the URL the result lives at (default ``/api/query``).
    :param only_service: restrict rows to those whose ``service`` is this service id.
    """
    qtype = QUERY_TYPES.get(params.type)
    if qtype is None:
        names = ", ".join(QUERY_TYPES)
        raise BadRequest(
            f"Unknown or unsupported query type {params.type!r} (the cell knows {names})"
        )
    if not sysadmin:
        raise Forbidden(f"Query type {params.type} is for system administrators only")
    ids = params.format == "idrecords"
    rows = qtype.rows(state, urls, ids)
    if only_service is not None:
        rows = [r for r in rows if only_service in r.aliases.get("service", frozenset())]
    known = {k for r in rows for k in r.attrs} | set(_ATTRIBUTES.get(qtype.name, ()))
    groups = _conditions(params.raw_filter, params.filter_encoded, known)
    if groups:
        rows = [r for r in rows if any(all(_matches(r, *c) for c in g) for g in groups)]
    for key, reverse in ((params.sort_asc, False), (params.sort_desc, True)):
        if key:
            rows.sort(key=lambda r: _sort_key(r.attrs.get(key, "")), reverse=reverse)
    total = len(rows)
    start = (params.page - 1) * params.page_size
    page_rows = rows[start : start + params.page_size]
    base = href or urls.query()
    mime = FORMATS[params.format]
    page = Page(
        params.url(base),
        params.format,
        params.page,
        params.page_size,
        total,
        tuple(_paging_links(params, base, total)),
    )
    return write_query_result(qtype.kind, page, [row.attrs for row in page_rows]), mime


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value.lower())


def _paging_links(params: QueryParams, base: str, total: int) -> list[Link]:
    last = max(1, -(-total // params.page_size))
    mime = FORMATS[params.format]
    links = [
        Link(media.REL_ALTERNATE, params.url(base, format=fmt, page=1), other)
        for fmt, other in FORMATS.items()
        if fmt != params.format
    ]
    if params.page > 1:
        links.append(Link(media.REL_FIRST_PAGE, params.url(base, page=1), mime))
        links.append(Link(media.REL_PREVIOUS_PAGE, params.url(base, page=params.page - 1), mime))
    if params.page < last:
        links.append(Link(media.REL_NEXT_PAGE, params.url(base, page=params.page + 1), mime))
        links.append(Link(media.REL_LAST_PAGE, params.url(base, page=last), mime))
    return links


# Attributes that may be filtered on even when no row has them yet.
_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "adminService": (
        "href",
        "id",
        "name",
        "namespace",
        "vendor",
        "enabled",
        "exchange",
        "routingKey",
        "priority",
        "isAuthorizationEnabled",
    ),
    "apiFilter": ("href", "id", "service", "urlPattern", "responseContentType"),
    "serviceLink": (
        "href",
        "id",
        "service",
        "rel",
        "linkHref",
        "mimeType",
        "resourceType",
        "resourceId",
    ),
    "adminApiDefinition": (
        "href",
        "id",
        "name",
        "entryPoint",
        "service",
        "namespace",
        "apiVendor",
        "serviceName",
        "serviceNamespace",
        "serviceVendor",
    ),
    "right": ("href", "id", "name", "category"),
}


def query_list(urls: Urls, *, sysadmin: bool) -> etree._Element:
    """``QueryList``: one link per query type and format the caller may use."""
    links = []
    if sysadmin:
        for name in QUERY_TYPES:
            for fmt, mime in FORMATS.items():
                links.append(Link(media.REL_DOWN, urls.query(type=name, format=fmt), mime, name))
    return write_query_list(urls.query(), links)
