"""The extension-service documents: ``VMWExtension``, ``ExtensionServices``, ``Service``,
``ApiFilter``, ``ServiceLink``, ``ApiDefinition``, ``Right``, ``RightRefs``,
``BundleUploadParams`` and ``BundleUploadSocket``; each written once and read once.

Writers follow the element order of VMware's schemas (``extension/services.xsd``,
``vcloud/entity.xsd``, ``admin/user.xsd``) and take a value, or a :class:`~.model.Held` value
when the document carries its ``href``, URN and links (as vCD's answers do). Readers check
what the schemas require (a wrong root, a missing required element, a malformed value is a
:class:`~vcdext.errors.BadRequest` naming it) and ignore unknown children.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from lxml import etree

from ..errors import BadRequest
from ..xml import parse
from .elements import (
    expect,
    find,
    name_attribute,
    required_root,
    root,
    strict_boolean,
    strict_integer,
    sub,
    text,
    x,
    xs_boolean,
)
from .media import VCLOUD_NS, VMEXT_NS
from .model import (
    ApiDefinition,
    ApiFilter,
    FileDescriptor,
    Held,
    Reference,
    Right,
    Service,
    ServiceLink,
)
from .reference import read_links, read_reference, write_link, write_reference

T = TypeVar("T")
#: What a reader takes: the document's bytes or text (parsed with the hardened parser), or an
#: element already parsed.
Body = bytes | str | etree._Element

#: The largest ``fileSize`` of a ``BundleUploadParams`` the readers accept.
MAX_BUNDLE_SIZE = 50 * 1024 * 1024


def _held(value: T | Held[T]) -> Held[T]:
    return value if isinstance(value, Held) else Held(value)


def _entity(
    namespace: str,
    tag: str,
    held: Held[Any],
    *,
    inline: bool = False,
    **attributes: str | None,
) -> etree._Element:
    el = root(
        namespace,
        tag,
        declare=not inline,
        href=held.href or None,
        type=held.type or None,
        id=held.id or None,
        **attributes,
    )
    for link in held.links:
        write_link(el, link)
    return el


def _parse(body: Body, namespace: str, name: str) -> etree._Element:
    """``body`` (bytes are parsed with the hardened parser) checked to be ``{namespace}name``."""
    if not isinstance(body, etree._Element):
        if not body.strip():
            raise required_root(namespace, name)
        body = parse(body)
    expect(body, namespace, name)
    return body


def _description(el: etree._Element) -> str | None:
    found = find(el, "Description", VCLOUD_NS)
    if found is None:
        return None
    return (found.text or "").strip()


# -- VMWExtension and ExtensionServices ------------------------------------------------------


def write_vmw_extension(held: Held[None]) -> etree._Element:
    """``vmext:VMWExtension``: the root of the extension surface (links only)."""
    return _entity(VMEXT_NS, "VMWExtension", held)


def write_extension_services(held: Held[None]) -> etree._Element:
    """``vmext:ExtensionServices``: the services as ``down`` links, and an ``add`` link."""
    return _entity(VMEXT_NS, "ExtensionServices", held)


def read_linked(body: Body) -> Held[None]:
    """Any document read for its ``href`` and links (``Session``, ``VMWExtension``,
    ``ExtensionServices``, ``RightRefs``' own links)."""
    return _held_of(body if isinstance(body, etree._Element) else parse(body), None)


# -- Service ----------------------------------------------------------------------------------

#: Service field → vmext element, in schema order.
_SERVICE_FIELDS = (
    ("namespace", "Namespace"),
    ("enabled", "Enabled"),
    ("authorization_enabled", "AuthorizationEnabled"),
    ("routing_key", "RoutingKey"),
    ("priority", "Priority"),
    ("exchange", "Exchange"),
    ("vendor", "Vendor"),
)
_ELEMENT_OF = dict(_SERVICE_FIELDS)


def write_service(
    service: Service | Held[Service],
    *,
    operation_key: str | None = None,
    filters: Sequence[ApiFilter | Held[ApiFilter]] | None = None,
    links: Sequence[ServiceLink | Held[ServiceLink]] | None = None,
    definitions: Sequence[ApiDefinition | Held[ApiDefinition]] | None = None,
) -> etree._Element:
    """A ``vmext:Service``; with ``filters``/``links``/``definitions`` (even empty), their
    containers inline. ``None`` leaves a container out (an update sends only the fields)."""
    held = _held(service)
    s = held.value
    el = _entity(VMEXT_NS, "Service", held, operationKey=operation_key, name=s.name)
    if s.description:
        sub(el, "Description", s.description)
    values: dict[str, str] = {
        "namespace": s.namespace,
        "enabled": xs_boolean(s.enabled),
        "authorization_enabled": xs_boolean(s.authorization_enabled),
        "routing_key": s.routing_key,
        "priority": str(s.priority),
        "exchange": s.exchange,
        "vendor": s.vendor,
    }
    for field_name, tag in _SERVICE_FIELDS:
        if tag != "Vendor" or s.vendor:
            sub(el, tag, values[field_name], ns=VMEXT_NS)
    if filters is not None:
        container = sub(el, "ApiFilters", ns=VMEXT_NS)
        for f in filters:
            container.append(write_api_filter(f, inline=True))
    if links is not None:
        container = sub(el, "ServiceLinks", ns=VMEXT_NS)
        for link in links:
            container.append(write_service_link(link, inline=True))
    if definitions is not None:
        container = sub(el, "ApiDefinitions", ns=VMEXT_NS)
        for d in definitions:
            container.append(write_api_definition(d, inline=True))
    return el


@dataclass(frozen=True)
class ServiceDocument:
    """A ``vmext:Service`` as read: the service, which of its elements were present, and its
    inline parts."""

    held: Held[Service]
    #: The :class:`~.model.Service` fields whose element the document had.
    given: frozenset[str]
    filters: tuple[Held[ApiFilter], ...] = ()
    links: tuple[Held[ServiceLink], ...] = ()
    definitions: tuple[Held[ApiDefinition], ...] = ()
    #: Whether it carried ``ResourceClasses`` (which vcdext does not read).
    resource_classes: bool = False

    @property
    def service(self) -> Service:
        """The service (absent elements read as their defaults)."""
        return self.held.value

    def require(self, *field_names: str) -> None:
        """400 unless the elements of ``field_names`` were present."""
        for name in field_names:
            if name not in self.given:
                raise BadRequest(f"vmext:{_ELEMENT_OF[name]} is required in Service")

    def changes(self) -> dict[str, object]:
        """The given fields and their values (what a ``PUT`` changes)."""
        return {name: getattr(self.service, name) for name in sorted(self.given)}


def read_service(body: Body) -> ServiceDocument:
    """A ``vmext:Service`` with its inline filters, links and API definitions."""
    el = _parse(body, VMEXT_NS, "Service")
    given = {"name"}
    values: dict[str, Any] = {"name": name_attribute(el)}
    for field_name, tag in _SERVICE_FIELDS:
        found = text(el, tag)
        if found is None:
            continue
        given.add(field_name)
        if field_name in ("enabled", "authorization_enabled"):
            values[field_name] = strict_boolean(found, tag)
        elif field_name == "priority":
            values[field_name] = strict_integer(found, tag, 0, 100)
        else:
            values[field_name] = found
    description = _description(el)
    if description is not None:
        given.add("description")
        values["description"] = description
    values.setdefault("namespace", "")
    held = Held(
        Service(**values),
        href=el.get("href", ""),
        id=el.get("id", ""),
        type=el.get("type", ""),
        links=read_links(el),
    )
    return ServiceDocument(
        held,
        frozenset(given),
        filters=tuple(
            read_api_filter(f) for f in el.iterfind(f"{x('ApiFilters')}/{x('ApiFilter')}")
        ),
        links=tuple(
            read_service_link(k) for k in el.iterfind(f"{x('ServiceLinks')}/{x('ServiceLink')}")
        ),
        definitions=tuple(
            read_api_definition(d)
            for d in el.iterfind(f"{x('ApiDefinitions')}/{x('ApiDefinition')}")
        ),
        resource_classes=find(el, "ResourceClasses") is not None,
    )


# -- ApiFilter, ServiceLink, ApiDefinition ---------------------------------------------------


def write_api_filter(f: ApiFilter | Held[ApiFilter], *, inline: bool = False) -> etree._Element:
    """A ``vmext:ApiFilter`` (``inline``: to append to a Service, without declarations)."""
    held = _held(f)
    el = _entity(VMEXT_NS, "ApiFilter", held, inline=inline)
    if held.value.url_pattern is not None:
        sub(el, "UrlPattern", held.value.url_pattern, ns=VMEXT_NS)
    if held.value.response_content_type is not None:
        sub(el, "ResponseContentType", held.value.response_content_type, ns=VMEXT_NS)
    return el


def read_api_filter(body: Body) -> Held[ApiFilter]:
    """A ``vmext:ApiFilter``: exactly one of ``UrlPattern`` and ``ResponseContentType``."""
    el = _parse(body, VMEXT_NS, "ApiFilter")
    pattern = text(el, "UrlPattern", limit=1024)
    content_type = text(el, "ResponseContentType", limit=1024)
    if (pattern is None) == (content_type is None):
        raise BadRequest("An ApiFilter needs exactly one of UrlPattern and ResponseContentType")
    return _held_of(el, ApiFilter(pattern, content_type))


def write_service_link(
    link: ServiceLink | Held[ServiceLink], *, inline: bool = False
) -> etree._Element:
    """A ``vmext:ServiceLink``."""
    held = _held(link)
    k = held.value
    el = _entity(VMEXT_NS, "ServiceLink", held, inline=inline)
    sub(el, "LinkHref", k.href, ns=VMEXT_NS)
    sub(el, "MimeType", k.mime_type, ns=VMEXT_NS)
    sub(el, "Rel", k.rel, ns=VMEXT_NS)
    sub(el, "ResourceType", k.resource_type, ns=VMEXT_NS)
    if k.resource_id:
        sub(el, "ResourceId", k.resource_id, ns=VMEXT_NS)
    if k.external_id:
        sub(el, "ExternalResourceId", k.external_id, ns=VMEXT_NS)
    return el


def read_service_link(body: Body) -> Held[ServiceLink]:
    """A ``vmext:ServiceLink`` (every part but the ids required)."""
    el = _parse(body, VMEXT_NS, "ServiceLink")

    def required(tag: str) -> str:
        return text(el, tag, required=True, limit=255) or ""

    link = ServiceLink(
        href=required("LinkHref"),
        mime_type=required("MimeType"),
        rel=required("Rel"),
        resource_type=required("ResourceType"),
        resource_id=text(el, "ResourceId", limit=255) or "",
        external_id=text(el, "ExternalResourceId", limit=255) or "",
    )
    return _held_of(el, link)


def write_api_definition(
    definition: ApiDefinition | Held[ApiDefinition], *, inline: bool = False
) -> etree._Element:
    """A ``vmext:ApiDefinition`` with its file descriptors (``Files`` only when it has some)."""
    held = _held(definition)
    d = held.value
    el = _entity(VMEXT_NS, "ApiDefinition", held, inline=inline, name=d.name)
    if d.description:
        sub(el, "Description", d.description)
    sub(el, "EntryPoint", d.entry_point, ns=VMEXT_NS)
    sub(el, "Namespace", d.namespace, ns=VMEXT_NS)
    sub(el, "ApiVendor", d.api_vendor, ns=VMEXT_NS)
    versions = sub(el, "SupportedApiVersions", ns=VMEXT_NS)
    for version in d.versions:
        sub(versions, "Version", version, ns=VMEXT_NS)
    if d.files:
        files = sub(el, "Files", ns=VMEXT_NS)
        for fd in d.files:
            item = sub(files, "FileDescriptor", ns=VMEXT_NS)
            if fd.description:
                sub(item, "Description", fd.description, ns=VMEXT_NS)
            write_reference(item, "File", Reference(fd.href, fd.type, fd.name), ns=VMEXT_NS)
    return el


def read_api_definition(body: Body) -> Held[ApiDefinition]:
    """A ``vmext:ApiDefinition`` with its file descriptors."""
    el = _parse(body, VMEXT_NS, "ApiDefinition")
    versions = tuple(
        (version.text or "").strip()
        for version in el.iterfind(f"{x('SupportedApiVersions')}/{x('Version')}")
        if (version.text or "").strip()
    )
    files = []
    for fd in el.iterfind(f"{x('Files')}/{x('FileDescriptor')}"):
        ref_el = find(fd, "File")
        if ref_el is None:
            raise BadRequest("A FileDescriptor needs a File reference")
        ref = read_reference(ref_el, "File")
        files.append(FileDescriptor(ref.href, text(fd, "Description") or "", ref.type, ref.name))
    definition = ApiDefinition(
        name=name_attribute(el),
        description=_description(el) or "",
        entry_point=text(el, "EntryPoint", limit=255) or "",
        namespace=text(el, "Namespace") or "",
        api_vendor=text(el, "ApiVendor") or "",
        versions=versions,
        files=tuple(files),
    )
    return _held_of(el, definition)


# -- Right and RightRefs -----------------------------------------------------------------------


def write_right(right: Right | Held[Right]) -> etree._Element:
    """A ``vcloud:Right`` (``admin/user.xsd``)."""
    held = _held(right)
    r = held.value
    el = _entity(VCLOUD_NS, "Right", held, name=r.name)
    if r.description:
        sub(el, "Description", r.description)
    sub(el, "Category", r.category)
    if r.bundle_key:
        sub(el, "BundleKey", r.bundle_key)
    if r.service_namespace:
        sub(el, "ServiceNamespace", r.service_namespace)
    return el


def read_right(body: Body) -> Held[Right]:
    """A ``vcloud:Right``."""
    el = _parse(body, VCLOUD_NS, "Right")
    right = Right(
        name=name_attribute(el),
        category=text(el, "Category", VCLOUD_NS) or "",
        description=_description(el) or "",
        bundle_key=text(el, "BundleKey", VCLOUD_NS) or "",
        service_namespace=text(el, "ServiceNamespace", VCLOUD_NS) or "",
    )
    return _held_of(el, right)


def write_right_refs(held: Held[Iterable[Held[Right]]]) -> etree._Element:
    """``vmext:RightRefs``: references to a service's rights (in the vmext namespace, as the
    schema's local element is), and the document's own links."""
    el = _entity(VMEXT_NS, "RightRefs", held)
    for right in held.value:
        write_reference(
            el,
            "Right",
            Reference(right.href, right.type, right.value.name, right.id),
            ns=VMEXT_NS,
        )
    return el


def read_right_refs(body: Body) -> Held[tuple[Reference, ...]]:
    """The ``Right`` references of a ``vmext:RightRefs`` (vcloud-namespaced ones are accepted
    too, as some vCD versions send them)."""
    el = _parse(body, VMEXT_NS, "RightRefs")
    refs = tuple(
        Reference(r.get("href", ""), r.get("type", ""), r.get("name", ""), r.get("id", ""))
        for r in el
        if r.tag in (x("Right"), f"{{{VCLOUD_NS}}}Right") and r.get("href")
    )
    return _held_of(el, refs)


# -- localization bundle upload ----------------------------------------------------------------


def write_bundle_upload_params(size: int, namespace: str) -> etree._Element:
    """``vmext:BundleUploadParams fileSize= serviceNamespace=``."""
    return root(VMEXT_NS, "BundleUploadParams", fileSize=str(size), serviceNamespace=namespace)


def read_bundle_upload_params(body: Body) -> tuple[int, str]:
    """``(fileSize, serviceNamespace)`` of a ``vmext:BundleUploadParams`` (``""`` when the
    namespace is left out); the size must be 1 byte to 50 MB."""
    el = _parse(body, VMEXT_NS, "BundleUploadParams")
    size = strict_integer(el.get("fileSize"), "fileSize", 1, MAX_BUNDLE_SIZE)
    if size is None:
        raise BadRequest("BundleUploadParams needs a fileSize attribute")
    return size, el.get("serviceNamespace") or ""


def write_bundle_upload_socket(upload_location: str) -> etree._Element:
    """``vmext:BundleUploadSocket`` (it has no href or type attribute in the schema)."""
    return root(VMEXT_NS, "BundleUploadSocket", uploadLocation=upload_location)


def read_bundle_upload_socket(body: Body) -> str:
    """The ``uploadLocation`` of a ``vmext:BundleUploadSocket`` (``""`` if absent)."""
    el = _parse(body, VMEXT_NS, "BundleUploadSocket")
    return el.get("uploadLocation", "")


# -- helpers --------------------------------------------------------------------------------------


def _held_of(el: etree._Element, value: T) -> Held[T]:
    return Held(
        value,
        href=el.get("href", ""),
        id=el.get("id", ""),
        type=el.get("type", ""),
        links=read_links(el),
    )
