"""Reading what vCD has registered: services, their filters, links, API definitions, rights.

Everything is found by following links from the login's ``Session`` document (``VMWExtension``
→ ``ExtensionServices``; the query service; each ``Service``'s own links); the documented
paths are only the fallback when a link is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import quote

from lxml import etree

from ..vcloud import media
from ..vcloud.accept import bare
from ..vcloud.authorization import (
    read_acl_rule_record,
    read_action_record,
    read_resource_class_record,
)
from ..vcloud.extension import read_linked, read_right, read_right_refs, read_service
from ..vcloud.model import AclRule, Held, Right, right_urn
from ..vcloud.query import (
    read_api_definition_record,
    read_api_filter_record,
    read_right_record,
    read_service_link_record,
    read_service_record,
)
from .client import VcdClient
from .errors import VcdApiError, VcdError
from .model import ActualAction, ActualResourceClass, ActualRule, ActualService

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

    def find(
        self, namespace: str, *, children: bool = True, authorization: bool = False
    ) -> ActualService | None:
        """The service registered with ``namespace`` (with ``children``: its filters, links,
        API definitions and rights too, and its resource classes when ``authorization`` or
        when vCD has its authorization enabled); ``None`` if there is none."""
        for href in self._candidates(namespace):
            service = self.read(href, children=False)
            if service.namespace == namespace:
                if not children:
                    return service
                return self.read_children(service, authorization=authorization)
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

    def read_children(
        self, service: ActualService, *, authorization: bool = False
    ) -> ActualService:
        """``service`` with its filters, service links, API definitions and rights filled in
        (and its resource classes with ``authorization`` or authorization enabled)."""
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
        rights = tuple(self.rights(service))
        classes: tuple[ActualResourceClass, ...] = ()
        if authorization or service.authorization_enabled:
            classes = self.resource_classes(service, rights)
        return replace(
            service,
            filters=filters,
            service_links=links,
            api_definitions=definitions,
            rights=rights,
            resource_classes=classes,
        )

    def _records_or_none(self, url: str) -> list[etree._Element]:
        try:
            return list(self.client.records(url))
        except VcdApiError as exc:
            if exc.status != 404:
                raise
            log.debug("%s is not there (404); taking it as empty", url)
            return []

    def resource_classes(
        self, service: ActualService, rights: Iterable[Held[Right]] = ()
    ) -> tuple[ActualResourceClass, ...]:
        """The service's resource classes with their actions and ACL rules. A rule's
        principal right is named from ``rights`` (by href or URN), else read from vCD."""
        names = {}
        for right in rights:
            for key in (right.href, right.id):
                if key:
                    names[key.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]] = right.value.name
        classes_url = service_link(service, media.REL_RESOURCE_CLASSES, None, "resourceclasses")
        found = []
        for c in map(read_resource_class_record, self._records_or_none(classes_url)):
            if c is None:
                continue
            actions = []
            for a in map(
                read_action_record,
                self._records_or_none(f"{c.href.rstrip('/')}/resourceclassactions"),
            ):
                if a is None:
                    continue
                rules = []
                for r in map(
                    read_acl_rule_record, self._records_or_none(f"{a.href.rstrip('/')}/aclrules")
                ):
                    if r is not None:
                        rules.append(ActualRule(r, self._principal_right(r.value, names)))
                actions.append(ActualAction(a, tuple(rules)))
            found.append(ActualResourceClass(c, tuple(actions)))
        return tuple(found)

    def _principal_right(self, rule: AclRule, names: dict[str, str]) -> str | None:
        principal = rule.principal
        if principal is None or principal.entity is None:
            return None
        href = principal.entity.href
        if "/right/" not in href and ":right:" not in href:
            return None
        key = href.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if key not in names:
            try:
                names[key] = self.client.read(href, read_right).value.name
            except VcdError as exc:
                log.debug("cannot read the right %s of ACL rule %s: %s", href, rule.name, exc)
                return None
        return names[key]

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

    def right_ids(self, names: Iterable[str]) -> dict[str, str]:
        """The URNs of rights vcdext did not register (vCD's own, such as ``vApp: View``, or
        another service's ``{namespace}:Name``), found by name with the ``right`` query;
        a name vCD does not know is left out."""
        query_url = self._session_link(media.QUERY_LIST, "/api/query")
        found: dict[str, str] = {}
        for name in sorted(set(names)):
            params = {
                "type": "right",
                "format": "records",
                "filter": f"name=={quote(name, safe='')}",
                "filterEncoded": "true",
            }
            try:
                records = list(self.client.records(query_url, params=params))
            except VcdApiError as exc:
                if exc.status >= 500:
                    raise
                log.debug("the right query for %r failed: %s", name, exc)
                continue
            for right in map(read_right_record, records):
                if right is not None and right.value.name == name:
                    found[name] = right.id or right_urn(right.href)
        return found
