"""XML rendering of the cell's documents: versions, session, extension registration.

Every function returns an lxml element valid against VMware's schemas (the tests check each
one). Elements are built with lxml, never by string concatenation, so every value is escaped.
Inventory and task documents are in :mod:`.inventory`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from lxml import etree

from vcdext.vcloud import media
from vcdext.vcloud.media import VCLOUD_NS, VMEXT_NS
from vcdext.xml import boolean
from vcdext.xml import child as sub
from vcdext.xml import document as root

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
    """A vcloud ``Link``."""
    el = sub(parent, "Link", rel=rel, href=href)
    for key, value in (("type", type), ("name", name), ("id", id)):
        if value:
            el.set(key, value)
    return el


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


def add_service_links(
    el: etree._Element, urls: Urls, links: Iterable[ServiceLink], object_id: str
) -> None:
    """Append the registered service links, with ``{baseUri}``/``{resourceId}`` expanded."""
    for x in links:
        href = x.link_href.replace("{baseUri}", urls.base_uri).replace("{resourceId}", object_id)
        link(el, x.rel, href, x.mime_type, id=x.external_resource_id)


# -- versions and session ----------------------------------------------------------------


def session(urls: Urls, s: Session) -> etree._Element:
    """The ``Session`` a login returns, with links to what the user may reach."""
    roles = "System Administrator" if s.is_sysadmin else "Organization User"
    el = root(
        VCLOUD_NS,
        "Session",
        href=f"{urls.api}/session/",
        type=media.SESSION,
        user=s.user.name,
        org=s.org.name,
        userId=s.user_urn,
        roles=roles,
    )
    link(el, "down", f"{urls.api}/org/", media.ORG_LIST)
    link(el, "remove", f"{urls.api}/session")
    if s.is_sysadmin:
        link(el, "down", f"{urls.api}/admin/extension", media.VMW_EXTENSION)
    else:
        link(el, "down", urls.org(s.org.id), media.ORG, name=s.org.name)
    link(el, "down", urls.query(), media.QUERY_LIST)
    sub(el, "AuthorizedLocations")
    return el


# -- extension registration ------------------------------------------------------------------


def vmw_extension(urls: Urls) -> etree._Element:
    """``vmext:VMWExtension``: the root of the extension surface."""
    el = root(
        VMEXT_NS, "VMWExtension", href=f"{urls.api}/admin/extension", type=media.VMW_EXTENSION
    )
    link(el, "down", urls.service(), media.EXTENSION_SERVICES)
    link(el, "down", urls.query(type="adminService", format="records"), media.RECORDS)
    return el


def extension_services(urls: Urls, services: Iterable[Service]) -> etree._Element:
    """``vmext:ExtensionServices``: ``add`` and one ``down`` link per service."""
    el = root(VMEXT_NS, "ExtensionServices", href=urls.service(), type=media.EXTENSION_SERVICES)
    link(el, "up", f"{urls.api}/admin/extension", media.VMW_EXTENSION)
    link(el, "add", urls.service(), media.SERVICE)
    for s in services:
        link(el, "down", urls.service(s.id), media.SERVICE, name=s.name)
    return el


def service(
    urls: Urls,
    s: Service,
    filters: Iterable[ApiFilter] = (),
    links: Iterable[ServiceLink] = (),
    definitions: Iterable[ApiDefinition] = (),
) -> etree._Element:
    """A ``vmext:Service`` with its links and, inline, its filters, links and definitions."""
    href = urls.service(s.id)
    el = root(VMEXT_NS, "Service", href=href, type=media.SERVICE, id=s.urn, name=s.name)
    link(el, "up", urls.service(), media.EXTENSION_SERVICES)
    link(el, "remove", href)
    link(el, "edit", href, media.SERVICE)
    link(el, "rights", urls.of_service(s.id, "rights"), media.RIGHTS)
    link(el, "down:serviceLinks", urls.of_service(s.id, "links"), media.RECORDS)
    link(el, "add", urls.of_service(s.id, "links"), media.SERVICE_LINK)
    link(el, "down:apiFilters", urls.of_service(s.id, "apifilters"), media.RECORDS)
    link(el, "add", urls.of_service(s.id, "apifilters"), media.API_FILTER)
    link(el, "down:apiDefinitions", urls.of_service(s.id, "apidefinitions"), media.RECORDS)
    link(el, "add", urls.of_service(s.id, "apidefinitions"), media.API_DEFINITION)
    link(
        el,
        "bundle:upload",
        urls.of_service(s.id, "localizationbundles"),
        media.BUNDLE_UPLOAD_PARAMS,
    )
    if s.description:
        sub(el, "Description", s.description)
    for name, value in (
        ("Namespace", s.namespace),
        ("Enabled", boolean(s.enabled)),
        ("AuthorizationEnabled", boolean(s.authorization_enabled)),
        ("RoutingKey", s.routing_key),
        ("Priority", str(s.priority)),
        ("Exchange", s.exchange),
        ("Vendor", s.vendor),
    ):
        sub(el, name, value, ns=VMEXT_NS)
    container = sub(el, "ApiFilters", ns=VMEXT_NS)
    for f in filters:
        container.append(api_filter(urls, f, inline=True))
    container = sub(el, "ServiceLinks", ns=VMEXT_NS)
    for x in links:
        container.append(service_link(urls, x, inline=True))
    container = sub(el, "ApiDefinitions", ns=VMEXT_NS)
    for d in definitions:
        container.append(api_definition(urls, d, inline=True))
    return el


def _part(
    urls: Urls,
    kind: str,
    name: str,
    part_id: str,
    urn: str,
    mime: str,
    service_id: str,
    inline: bool,
) -> etree._Element:
    href = urls.part(kind, part_id)
    el = root(VMEXT_NS, name, declare=not inline, href=href, type=mime, id=urn)
    link(el, "up", urls.service(service_id), media.SERVICE)
    link(el, "remove", href)
    return el


def api_filter(urls: Urls, f: ApiFilter, *, inline: bool = False) -> etree._Element:
    """A ``vmext:ApiFilter`` (inline: without namespace declarations)."""
    el = _part(urls, "apifilter", "ApiFilter", f.id, f.urn, media.API_FILTER, f.service_id, inline)
    if f.url_pattern is not None:
        sub(el, "UrlPattern", f.url_pattern, ns=VMEXT_NS)
    if f.response_content_type is not None:
        sub(el, "ResponseContentType", f.response_content_type, ns=VMEXT_NS)
    return el


def service_link(urls: Urls, x: ServiceLink, *, inline: bool = False) -> etree._Element:
    """A ``vmext:ServiceLink`` (inline: without namespace declarations)."""
    el = _part(urls, "link", "ServiceLink", x.id, x.urn, media.SERVICE_LINK, x.service_id, inline)
    for name, value in (
        ("LinkHref", x.link_href),
        ("MimeType", x.mime_type),
        ("Rel", x.rel),
        ("ResourceType", x.resource_type),
        ("ResourceId", x.resource_id),
        ("ExternalResourceId", x.external_resource_id),
    ):
        if value is not None:
            sub(el, name, value, ns=VMEXT_NS)
    return el


def api_definition(urls: Urls, d: ApiDefinition, *, inline: bool = False) -> etree._Element:
    """A ``vmext:ApiDefinition`` with its files."""
    href = urls.part("apidefinition", d.id)
    el = root(
        VMEXT_NS,
        "ApiDefinition",
        declare=not inline,
        href=href,
        type=media.API_DEFINITION,
        id=d.urn,
        name=d.name,
    )
    link(el, "up", urls.service(d.service_id), media.SERVICE)
    link(el, "remove", href)
    if d.description:
        sub(el, "Description", d.description)
    sub(el, "EntryPoint", d.entry_point, ns=VMEXT_NS)
    sub(el, "Namespace", d.namespace, ns=VMEXT_NS)
    sub(el, "ApiVendor", d.api_vendor, ns=VMEXT_NS)
    versions = sub(el, "SupportedApiVersions", ns=VMEXT_NS)
    for version in d.versions:
        sub(versions, "Version", version, ns=VMEXT_NS)
    files = sub(el, "Files", ns=VMEXT_NS)
    for fd in d.files:
        item = sub(files, "FileDescriptor", ns=VMEXT_NS)
        if fd.description:
            sub(item, "Description", fd.description, ns=VMEXT_NS)
        ref = sub(item, "File", ns=VMEXT_NS, href=fd.href)
        for key, value in (("type", fd.type), ("name", fd.name)):
            if value:
                ref.set(key, value)
    return el


def right(urls: Urls, r: Right) -> etree._Element:
    """A vcloud ``Right`` (admin/user.xsd)."""
    href = urls.right(r.id)
    el = root(VCLOUD_NS, "Right", href=href, type=media.RIGHT, id=r.urn, name=r.name)
    link(el, "remove", href)
    if r.service_id:
        link(el, "up", urls.service(r.service_id), media.SERVICE)
    if r.description:
        sub(el, "Description", r.description)
    sub(el, "Category", r.category)
    if r.bundle_key:
        sub(el, "BundleKey", r.bundle_key)
    if r.service_namespace:
        sub(el, "ServiceNamespace", r.service_namespace)
    return el


def right_refs(urls: Urls, service_id: str, rights: Iterable[Right]) -> etree._Element:
    """``vmext:RightRefs``: the rights a service registered, and where to add one."""
    href = urls.of_service(service_id, "rights")
    el = root(VMEXT_NS, "RightRefs", href=href, type=media.RIGHTS)
    link(el, "up", urls.service(service_id), media.SERVICE)
    link(el, "add", href, media.RIGHT)
    for r in rights:
        # A local element of the vmext schema, so in the vmext namespace.
        sub(
            el, "Right", ns=VMEXT_NS, href=urls.right(r.id), type=media.RIGHT, name=r.name, id=r.urn
        )
    return el


def bundle_upload_socket(upload_location: str) -> etree._Element:
    """``vmext:BundleUploadSocket`` (it has no href or type attribute in the schema)."""
    return root(VMEXT_NS, "BundleUploadSocket", uploadLocation=upload_location)
