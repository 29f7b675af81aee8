"""Reading what vCD has registered: services, their filters, links, API definitions, rights.

Everything is found by following links from the login's ``Session`` document (``VMWExtension``
→ ``ExtensionServices``; the query service; each ``Service``'s own links); the documented
paths are only the fallback when a link is missing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..vcloud import media
from ..vcloud.accept import bare
from ..vcloud.extension import read_linked, read_right, read_right_refs, read_service
from ..vcloud.model import Held, Right, right_urn
from ..vcloud.query import (
    read_api_definition_record,
    read_api_filter_record,
    read_service_link_record,
    read_service_record,
)
from .client import VcdClient
from .errors import VcdApiError
from .model import ActualService

log = logging.getLogger(__name__)

#: The query service's largest page.
PAGE_SIZE = "128"


def service_link(service: ActualService, rel: str, media_type: str | None, fallback: str) -> str:
    """A link of the service document, else ``<service href>/<fallback>``."""
    return service.held.link(rel, media_type) or f"{service.href.rstrip('/')}/{fallback}"


class Observer:
    """Reads the registration state from vCD through a logged-in :class:`VcdClient`."""

    def __init__(self, client: VcdClient) -> None:
        self.client = client
        self._services_url: str | None = None

    # -- where things are ----------------------------------------------------------------------

    def _session_link(self, media_type: str, fallback: str) -> str:
        return (
            self.client.session.link(media.REL_DOWN, media_type) or self.client.base_url + fallback
        )

    def services_url(self) -> str:
        """The ``ExtensionServices`` collection (POST creates a service there)."""
        if self._services_url is None:
            extension_url = self._session_link(media.VMW_EXTENSION, "/api/admin/extension")
            extension = self.client.read(extension_url, read_linked)
            self._services_url = extension.link(media.REL_DOWN, media.EXTENSION_SERVICES) or (
                extension_url.rstrip("/") + "/service"
            )
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
            records = map(read_service_record, self.client.records(query_url, params=params))
            return [  # a record without its namespace stays a candidate: find() reads it
                r.href
                for r in records
                if r is not None and (namespace is None or r.value.namespace in ("", namespace))
            ]
        except VcdApiError as exc:
            if exc.status >= 500:
                raise
            log.debug("the adminService query failed (%s); listing services instead", exc)
        return self._listed()

    def _listed(self) -> list[str]:
        listing = self.client.read(self.services_url(), read_linked)
        return [
            link.href
            for link in listing.links
            if link.rel == media.REL_DOWN and bare(link.type) == media.SERVICE
        ]

    # -- reading one service -------------------------------------------------------------------

    def read(self, href: str, *, children: bool = True) -> ActualService:
        """The service at ``href``; with ``children``, also its filters, links, API definitions
        and rights."""
        held = self.client.read(href, read_service).held
        service = ActualService.of(held if held.href else replace(held, href=href))
        if not children:
            return service
        return self.read_children(service)

    def read_children(self, service: ActualService) -> ActualService:
        """``service`` with its filters, service links, API definitions and rights filled in."""
        get = self.client.records
        filters_url = service_link(service, media.REL_API_FILTERS, None, "apifilters")
        links_url = service_link(service, media.REL_SERVICE_LINKS, None, "links")
        definitions_url = service_link(service, media.REL_API_DEFINITIONS, None, "apidefinitions")
        # ResponseContentType filters (without a pattern) are not vcdext's to manage.
        filters = tuple(
            f
            for f in map(read_api_filter_record, get(filters_url))
            if f is not None and f.value.url_pattern is not None
        )
        links = tuple(x for x in map(read_service_link_record, get(links_url)) if x is not None)
        definitions = tuple(
            d for d in map(read_api_definition_record, get(definitions_url)) if d is not None
        )
        return replace(
            service,
            filters=filters,
            service_links=links,
            api_definitions=definitions,
            rights=tuple(self.rights(service)),
        )

    def rights(self, service: ActualService) -> list[Held[Right]]:
        """The rights registered by the service, each read in full; a right's URN falls back
        to the reference's, then to ``urn:vcloud:right:<last href part>``."""
        refs = self.client.read(
            service_link(service, media.REL_RIGHTS, None, "rights"), read_right_refs
        )
        found = []
        for ref in refs.value:
            right = self.client.read(ref.href, read_right)
            found.append(
                replace(
                    right,
                    href=right.href or ref.href,
                    id=right.id or ref.id or right_urn(right.href or ref.href),
                )
            )
        return found
