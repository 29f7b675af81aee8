"""Reading what vCD has registered: services, their filters, links, API definitions, rights.

Everything is found by following links from the login's ``Session`` document (``VMWExtension``
→ ``ExtensionServices``; the query service; each ``Service``'s own links); the documented
paths are only the fallback when a link is missing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..vcloud import media
from .client import VcdClient
from .documents import (
    api_definition_from_record,
    doc_links,
    filter_from_record,
    find_link,
    link_from_record,
    right_from_document,
    right_refs,
    service_from_document,
)
from .errors import VcdApiError
from .model import ActualService, RemoteRight

log = logging.getLogger(__name__)

#: The query service's largest page.
PAGE_SIZE = "128"


def service_link(service: ActualService, rel: str, media_type: str | None, fallback: str) -> str:
    """A link of the service document, else ``<service href>/<fallback>``."""
    return find_link(service.links, rel, media_type) or f"{service.href.rstrip('/')}/{fallback}"


class Observer:
    """Reads the registration state from vCD through a logged-in :class:`VcdClient`."""

    def __init__(self, client: VcdClient) -> None:
        self.client = client
        self._services_url: str | None = None

    # -- where things are ----------------------------------------------------------------------

    def _session_link(self, media_type: str, fallback: str) -> str:
        links = doc_links(self.client.session_document)
        return find_link(links, media.REL_DOWN, media_type) or self.client.base_url + fallback

    def services_url(self) -> str:
        """The ``ExtensionServices`` collection (POST creates a service there)."""
        if self._services_url is None:
            extension_url = self._session_link(media.VMW_EXTENSION, "/api/admin/extension")
            extension = self.client.get(extension_url)
            self._services_url = find_link(
                doc_links(extension), media.REL_DOWN, media.EXTENSION_SERVICES
            ) or (extension_url.rstrip("/") + "/service")
        return self._services_url

    # -- finding services ----------------------------------------------------------------------

    def find(self, namespace: str, *, children: bool = True) -> ActualService | None:
        """The service registered with ``namespace`` (with ``children``: its filters, links,
        API definitions and rights too); ``None`` if there is none."""
        for href in self._candidates(namespace):
            service = self.read(href, children=False)
            if service.namespace == namespace:
                return self.read_children(service) if children else service
        return None

    def managed(self) -> list[ActualService]:
        """Every service whose description carries the vcdext marker (for ``--prune``)."""
        services = (self.read(href, children=False) for href in self._candidates(None))
        return [service for service in services if service.managed]

    def _candidates(self, namespace: str | None) -> list[str]:
        """Hrefs of the services that may have ``namespace`` (all with ``None``): from the
        ``adminService`` query, else (query refused) from the ``ExtensionServices`` list."""
        params = {"type": "adminService", "format": "records", "pageSize": PAGE_SIZE}
        if namespace is not None:
            params["filter"] = f"namespace=={namespace}"
        query_url = self._session_link(media.QUERY_LIST, "/api/query")
        try:
            return [
                r.get("href", "")
                for r in self.client.records(query_url, params=params)
                if r.get("href")
                and (namespace is None or r.get("namespace", namespace) == namespace)
            ]
        except VcdApiError as exc:
            if exc.status >= 500:
                raise
            log.debug("the adminService query failed (%s); listing services instead", exc)
        return self._listed()

    def _listed(self) -> list[str]:
        listing = self.client.get(self.services_url())
        return [
            link.href
            for link in doc_links(listing)
            if link.rel == media.REL_DOWN and link.type.split(";")[0] == media.SERVICE
        ]

    # -- reading one service -------------------------------------------------------------------

    def read(self, href: str, *, children: bool = True) -> ActualService:
        """The service at ``href``; with ``children``, also its filters, links, API definitions
        and rights."""
        service = service_from_document(self.client.get(href), href=href)
        if not children:
            return service
        return self.read_children(service)

    def read_children(self, service: ActualService) -> ActualService:
        """``service`` with its filters, service links, API definitions and rights filled in."""
        get = self.client.records
        filters_url = service_link(service, media.REL_API_FILTERS, None, "apifilters")
        links_url = service_link(service, media.REL_SERVICE_LINKS, None, "links")
        definitions_url = service_link(service, media.REL_API_DEFINITIONS, None, "apidefinitions")
        filters = tuple(f for f in map(filter_from_record, get(filters_url)) if f is not None)
        links = tuple(x for x in map(link_from_record, get(links_url)) if x is not None)
        definitions = tuple(
            d for d in map(api_definition_from_record, get(definitions_url)) if d is not None
        )
        return replace(
            service,
            filters=filters,
            service_links=links,
            api_definitions=definitions,
            rights=tuple(self.rights(service)),
        )

    def rights(self, service: ActualService) -> list[RemoteRight]:
        """The rights registered by the service, each read in full."""
        refs = self.client.get(service_link(service, media.REL_RIGHTS, None, "rights"))
        found = []
        for name, href, ident in right_refs(refs):
            right = right_from_document(self.client.get(href), href=href, id=ident)
            found.append(right if right.name else replace(right, name=name))
        return found
