"""What the cell's registration documents hold: the hrefs, URNs and links the cell gives each
object, as :class:`~vcdext.vcloud.model.Held` values for :mod:`vcdext.vcloud`'s writers.

The XML itself is written by :mod:`vcdext.vcloud` (every document valid against VMware's
schemas; the tests check each one). Inventory and task documents are in :mod:`.inventory`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import urlencode

from lxml import etree

from vcdext.vcloud import media
from vcdext.vcloud.extension import (
    write_api_definition,
    write_api_filter,
    write_extension_services,
    write_right,
    write_right_refs,
    write_service,
    write_service_link,
    write_vmw_extension,
)
from vcdext.vcloud.model import Held, Link
from vcdext.vcloud.reference import write_link
from vcdext.vcloud.session import Login, write_session

from .model import ApiDefinition, ApiFilter, Right, Service, ServiceLink, Session

# -- building blocks ---------------------------------------------------------------------


def link(
    parent: etree._Element,
    rel: str,
    href: str,
    type: str | None = None,
    name: str | None = None,
    id: str | None = None,
) -> etree._Element:
    """Append a vcloud ``Link``."""
    return write_link(parent, Link(rel, href, type or "", name or "", id or ""))


class Urls:
    """The hrefs of the cell's resources under one base URL (``http://host:port``)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.api = f"{self.base}/api"

    @property
    def base_uri(self) -> str:
        """What ``{baseUri}`` in a service link expands to: the API root with a slash."""
        return f"{self.api}/"

    def service(self, service_id: str = "") -> str:
        """``.../admin/extension/service[/{id}]``."""
        tail = f"/{service_id}" if service_id else ""
        return f"{self.api}/admin/extension/service{tail}"

    def of_service(self, service_id: str, what: str) -> str:
        """``.../service/{id}/{what}``."""
        return f"{self.service(service_id)}/{what}"

    def part(self, kind: str, part_id: str) -> str:
        """``apifilter``, ``link``, ``apidefinition`` objects live under ``.../service/``."""
        return f"{self.api}/admin/extension/service/{kind}/{part_id}"

    def right(self, right_id: str) -> str:
        """``/api/admin/right/{id}``."""
        return f"{self.api}/admin/right/{right_id}"

    def org(self, org_id: str, *, admin: bool = False) -> str:
        """``/api/org/{id}`` (``/api/admin/org/{id}`` with ``admin``)."""
        return f"{self.api}/admin/org/{org_id}" if admin else f"{self.api}/org/{org_id}"

    def user(self, user_id: str) -> str:
        """``/api/admin/user/{id}``."""
        return f"{self.api}/admin/user/{user_id}"

    def vdc(self, vdc_id: str) -> str:
        """``/api/vdc/{id}``."""
        return f"{self.api}/vdc/{vdc_id}"

    def vapp(self, vapp_id: str) -> str:
        """``/api/vApp/vapp-{id}``."""
        return f"{self.api}/vApp/vapp-{vapp_id}"

    def vm(self, vm_id: str) -> str:
        """``/api/vApp/vm-{id}``."""
        return f"{self.api}/vApp/vm-{vm_id}"

    def task(self, task_id: str) -> str:
        """``/api/task/{id}``."""
        return f"{self.api}/task/{task_id}"

    def tasks_list(self, org_id: str) -> str:
        """``/api/tasksList/{org}``."""
        return f"{self.api}/tasksList/{org_id}"

    def query(self, **params: str) -> str:
        """``/api/query`` with parameters."""
        return f"{self.api}/query" + (f"?{urlencode(params, safe=':;=*/')}" if params else "")

    def transfer(self, transfer_id: str) -> str:
        """The upload location of a bundle transfer."""
        return f"{self.base}/transfer/{transfer_id}/file"


def service_links(urls: Urls, links: Iterable[ServiceLink], object_id: str) -> list[Link]:
    """The registered service links of an object, with ``{baseUri}``/``{resourceId}``
    expanded."""
    return [
        Link(
            x.rel,
            x.href.replace("{baseUri}", urls.base_uri).replace("{resourceId}", object_id),
            x.mime_type,
            id=x.external_id,
        )
        for x in links
    ]


def add_service_links(
    el: etree._Element, urls: Urls, links: Iterable[ServiceLink], object_id: str
) -> None:
    """Append the registered service links, with ``{baseUri}``/``{resourceId}`` expanded."""
    for x in service_links(urls, links, object_id):
        write_link(el, x)


# -- session -----------------------------------------------------------------------------


def session(urls: Urls, s: Session) -> etree._Element:
    """The ``Session`` a login returns, with links to what the user may reach."""
    roles = "System Administrator" if s.is_sysadmin else "Organization User"
    links = [
        Link(media.REL_DOWN, f"{urls.api}/org/", media.ORG_LIST),
        Link(media.REL_REMOVE, f"{urls.api}/session"),
    ]
    if s.is_sysadmin:
        links.append(Link(media.REL_DOWN, f"{urls.api}/admin/extension", media.VMW_EXTENSION))
    else:
        links.append(Link(media.REL_DOWN, urls.org(s.org.id), media.ORG, s.org.name))
    links.append(Link(media.REL_DOWN, urls.query(), media.QUERY_LIST))
    login = Login(s.user.name, s.org.name, s.user_urn, roles)
    held = Held(login, href=f"{urls.api}/session/", type=media.SESSION, links=tuple(links))
    return write_session(held)


# -- extension registration ------------------------------------------------------------------


def vmw_extension(urls: Urls) -> etree._Element:
    """``vmext:VMWExtension``: the root of the extension surface."""
    links = (
        Link(media.REL_DOWN, urls.service(), media.EXTENSION_SERVICES),
        Link(media.REL_DOWN, urls.query(type="adminService", format="records"), media.RECORDS),
    )
    href = f"{urls.api}/admin/extension"
    return write_vmw_extension(Held(None, href=href, type=media.VMW_EXTENSION, links=links))


def extension_services(urls: Urls, services: Iterable[Service]) -> etree._Element:
    """``vmext:ExtensionServices``: ``add`` and one ``down`` link per service."""
    links = [
        Link(media.REL_UP, f"{urls.api}/admin/extension", media.VMW_EXTENSION),
        Link(media.REL_ADD, urls.service(), media.SERVICE),
    ]
    links += [Link(media.REL_DOWN, urls.service(s.id), media.SERVICE, s.name) for s in services]
    held = Held(None, href=urls.service(), type=media.EXTENSION_SERVICES, links=tuple(links))
    return write_extension_services(held)


def held_service(urls: Urls, s: Service) -> Held[Service]:
    """A service with its href, URN and the links of its document."""
    href = urls.service(s.id)

    def of(what: str) -> str:
        return urls.of_service(s.id, what)

    links = (
        Link(media.REL_UP, urls.service(), media.EXTENSION_SERVICES),
        Link(media.REL_REMOVE, href),
        Link(media.REL_EDIT, href, media.SERVICE),
        Link(media.REL_RIGHTS, of("rights"), media.RIGHTS),
        Link(media.REL_SERVICE_LINKS, of("links"), media.RECORDS),
        Link(media.REL_ADD, of("links"), media.SERVICE_LINK),
        Link(media.REL_API_FILTERS, of("apifilters"), media.RECORDS),
        Link(media.REL_ADD, of("apifilters"), media.API_FILTER),
        Link(media.REL_API_DEFINITIONS, of("apidefinitions"), media.RECORDS),
        Link(media.REL_ADD, of("apidefinitions"), media.API_DEFINITION),
        Link(media.REL_BUNDLE_UPLOAD, of("localizationbundles"), media.BUNDLE_UPLOAD_PARAMS),
        Link(media.REL_RESOURCE_CLASSES, of("resourceclasses"), media.RECORDS),
        Link(media.REL_ADD, of("resourceclasses"), media.RESOURCE_CLASS),
        Link(
            media.REL_AUTHORIZATION_CHECK,
            of("authorizationcheck"),
            media.AUTHORIZATION_CHECK_PARAMS,
        ),
    )
    return Held(s, href=href, id=s.urn, type=media.SERVICE, links=links)


_Part = TypeVar("_Part", ApiFilter, ServiceLink, ApiDefinition)


def _held_part(urls: Urls, kind: str, part: _Part, urn: str, mime: str) -> Held[_Part]:
    """A service's filter, link or definition: it lives under ``.../service/{kind}/{id}``."""
    href = urls.part(kind, part.id)
    links = (
        Link(media.REL_UP, urls.service(part.service_id), media.SERVICE),
        Link(media.REL_REMOVE, href),
    )
    return Held(part, href=href, id=urn, type=mime, links=links)


def held_filter(urls: Urls, f: ApiFilter) -> Held[ApiFilter]:
    """An API filter with its href, URN and links."""
    return _held_part(urls, "apifilter", f, f.urn, media.API_FILTER)


def held_link(urls: Urls, x: ServiceLink) -> Held[ServiceLink]:
    """A service link with its href, URN and links."""
    return _held_part(urls, "link", x, x.urn, media.SERVICE_LINK)


def held_definition(urls: Urls, d: ApiDefinition) -> Held[ApiDefinition]:
    """An API definition with its href, URN and links."""
    return _held_part(urls, "apidefinition", d, d.urn, media.API_DEFINITION)


def held_right(urls: Urls, r: Right) -> Held[Right]:
    """A right with its href, URN and links (``up`` to its service, if it has one)."""
    href = urls.right(r.id)
    links = [Link(media.REL_REMOVE, href)]
    if r.service_id:
        links.append(Link(media.REL_UP, urls.service(r.service_id), media.SERVICE))
    return Held(r, href=href, id=r.urn, type=media.RIGHT, links=tuple(links))


def service(
    urls: Urls,
    s: Service,
    filters: Iterable[ApiFilter] = (),
    links: Iterable[ServiceLink] = (),
    definitions: Iterable[ApiDefinition] = (),
) -> etree._Element:
    """A ``vmext:Service`` with its links and, inline, its filters, links and definitions."""
    return write_service(
        held_service(urls, s),
        filters=[held_filter(urls, f) for f in filters],
        links=[held_link(urls, x) for x in links],
        definitions=[held_definition(urls, d) for d in definitions],
    )


def api_filter(urls: Urls, f: ApiFilter) -> etree._Element:
    """A ``vmext:ApiFilter``."""
    return write_api_filter(held_filter(urls, f))


def service_link(urls: Urls, x: ServiceLink) -> etree._Element:
    """A ``vmext:ServiceLink``."""
    return write_service_link(held_link(urls, x))


def api_definition(urls: Urls, d: ApiDefinition) -> etree._Element:
    """A ``vmext:ApiDefinition`` with its files."""
    return write_api_definition(held_definition(urls, d))


def right(urls: Urls, r: Right) -> etree._Element:
    """A vcloud ``Right``."""
    return write_right(held_right(urls, r))


def right_refs(urls: Urls, service_id: str, rights: Iterable[Right]) -> etree._Element:
    """``vmext:RightRefs``: the rights a service registered, and where to add one."""
    href = urls.of_service(service_id, "rights")
    links = (
        Link(media.REL_UP, urls.service(service_id), media.SERVICE),
        Link(media.REL_ADD, href, media.RIGHT),
    )
    refs = [held_right(urls, r) for r in rights]
    return write_right_refs(Held(refs, href=href, type=media.RIGHTS, links=links))
