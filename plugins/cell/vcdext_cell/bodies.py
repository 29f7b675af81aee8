"""Reading the XML documents clients send to the cell into :mod:`.model` records.

Bodies are parsed only with :func:`vcdext.xml.parse` (no entities, no DTDs, no network).
Element names and namespaces are checked as vCD checks them: a wrong root, a missing required
element or a malformed value is a 400 ``Error`` naming the problem. Unknown children are
ignored.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from lxml import etree

from vcdext.errors import BadRequest
from vcdext.vcloud.media import VCLOUD_NS, VMEXT_NS
from vcdext.xml import parse

from .model import (
    TASK_STATUSES,
    ApiDefinition,
    ApiFilter,
    Event,
    FileDescriptor,
    Ref,
    Right,
    Service,
    ServiceLink,
    Task,
    TaskError,
    new_id,
    now,
)

_PREFIX = {VCLOUD_NS: "vcloud", VMEXT_NS: "vmext"}


def document(body: bytes, namespace: str, name: str) -> etree._Element:
    """Parse ``body`` and check that its root is ``{namespace}name``."""
    if not body.strip():
        raise BadRequest(f"A {_PREFIX[namespace]}:{name} document is required")
    el = parse(body)
    expect(el, namespace, name)
    return el


def expect(el: etree._Element, namespace: str, name: str) -> None:
    """Raise a 400 unless ``el`` is ``{namespace}name``."""
    qname = etree.QName(el)
    if (qname.namespace, qname.localname) != (namespace, name):
        got = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise BadRequest(f"Expected a {_PREFIX[namespace]}:{name} element ({namespace}), got {got}")


def child(el: etree._Element, name: str, ns: str = VMEXT_NS) -> etree._Element | None:
    """The first child ``{ns}name`` (``None`` if absent)."""
    return el.find(f"{{{ns}}}{name}")


def text(
    el: etree._Element, name: str, ns: str = VMEXT_NS, *, required: bool = False, limit: int = 0
) -> str | None:
    """The stripped text of child ``{ns}name``; ``None`` when absent or empty."""
    found = child(el, name, ns)
    if found is None or found.text is None or not found.text.strip():
        if required:
            raise BadRequest(f"{_PREFIX[ns]}:{name} is required in {etree.QName(el).localname}")
        return None
    value = found.text.strip()
    if limit and len(value) > limit:
        raise BadRequest(f"{_PREFIX[ns]}:{name} is longer than {limit} characters")
    return value


def boolean(value: str | None, what: str, default: bool = False) -> bool:
    """An ``xs:boolean`` value (``true``/``false``/``1``/``0``); 400 otherwise."""
    if value is None:
        return default
    if value.strip() in ("true", "1"):
        return True
    if value.strip() in ("false", "0"):
        return False
    raise BadRequest(f"{what} must be true or false, got {value!r}")


def integer(value: str | None, what: str, low: int, high: int) -> int | None:
    """An integer within ``[low, high]``; ``None`` stays ``None``; 400 otherwise."""
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise BadRequest(f"{what} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise BadRequest(f"{what} must be between {low} and {high}, got {number}")
    return number


def name_attribute(el: etree._Element) -> str:
    """The required ``name`` attribute."""
    value = (el.get("name") or "").strip()
    if not value:
        raise BadRequest(f"The name attribute of {etree.QName(el).localname} is required")
    return value


def reference(el: etree._Element, what: str) -> Ref:
    """A vcloud ``ReferenceType`` element as a :class:`Ref` (``href`` required)."""
    href = el.get("href")
    if not href:
        raise BadRequest(f"{what} needs an href")
    return Ref(href, el.get("type", ""), el.get("name", ""), el.get("id", ""))


def _description(el: etree._Element) -> str:
    return text(el, "Description", VCLOUD_NS) or ""


# -- extension services --------------------------------------------------------------------


def service(
    el: etree._Element,
) -> tuple[Service, list[ApiFilter], list[ServiceLink], list[ApiDefinition]]:
    """A new service from a ``vmext:Service`` with its inline filters, links, definitions."""
    service_id = new_id()
    priority = integer(text(el, "Priority"), "Priority", 0, 100)
    new = Service(
        id=service_id,
        name=name_attribute(el),
        namespace=text(el, "Namespace", required=True) or "",
        routing_key=text(el, "RoutingKey", required=True) or "",
        exchange=text(el, "Exchange", required=True) or "",
        enabled=boolean(text(el, "Enabled"), "Enabled"),
        authorization_enabled=boolean(text(el, "AuthorizationEnabled"), "AuthorizationEnabled"),
        priority=50 if priority is None else priority,
        vendor=text(el, "Vendor") or "",
        description=_description(el),
    )
    filters = [
        api_filter(f, service_id)
        for f in el.iterfind(f"{{{VMEXT_NS}}}ApiFilters/{{{VMEXT_NS}}}ApiFilter")
    ]
    links = [
        service_link(x, service_id)
        for x in el.iterfind(f"{{{VMEXT_NS}}}ServiceLinks/{{{VMEXT_NS}}}ServiceLink")
    ]
    definitions = [
        api_definition(d, service_id)
        for d in el.iterfind(f"{{{VMEXT_NS}}}ApiDefinitions/{{{VMEXT_NS}}}ApiDefinition")
    ]
    return new, filters, links, definitions


def service_changes(el: etree._Element, current: Service) -> dict[str, object]:
    """What a ``PUT`` of a full ``vmext:Service`` changes; the namespace cannot change.

    Elements left out keep their value; inline filters, links and definitions are ignored
    (they have their own URLs).
    """
    namespace = text(el, "Namespace")
    if namespace is not None and namespace != current.namespace:
        raise BadRequest(
            f"The namespace of an extension service cannot change ({current.namespace!r} "
            f"→ {namespace!r})"
        )
    changes: dict[str, object] = {"name": name_attribute(el)}
    for field, tag in (
        ("routing_key", "RoutingKey"),
        ("exchange", "Exchange"),
        ("vendor", "Vendor"),
    ):
        value = text(el, tag)
        if value is not None:
            changes[field] = value
    for field, tag in (("enabled", "Enabled"), ("authorization_enabled", "AuthorizationEnabled")):
        value = text(el, tag)
        if value is not None:
            changes[field] = boolean(value, tag)
    priority = integer(text(el, "Priority"), "Priority", 0, 100)
    if priority is not None:
        changes["priority"] = priority
    if child(el, "Description", VCLOUD_NS) is not None:
        changes["description"] = _description(el)
    return changes


def api_filter(el: etree._Element, service_id: str) -> ApiFilter:
    """A ``vmext:ApiFilter`` of ``service_id``."""
    expect(el, VMEXT_NS, "ApiFilter")
    pattern = text(el, "UrlPattern", limit=1024)
    content_type = text(el, "ResponseContentType", limit=1024)
    if (pattern is None) == (content_type is None):
        raise BadRequest("An ApiFilter needs exactly one of UrlPattern and ResponseContentType")
    return ApiFilter(new_id(), service_id, pattern, content_type)


def service_link(el: etree._Element, service_id: str) -> ServiceLink:
    """A ``vmext:ServiceLink`` of ``service_id`` (every part but the ids required)."""
    expect(el, VMEXT_NS, "ServiceLink")

    def required(tag: str) -> str:
        return text(el, tag, required=True, limit=255) or ""

    return ServiceLink(
        id=new_id(),
        service_id=service_id,
        link_href=required("LinkHref"),
        mime_type=required("MimeType"),
        rel=required("Rel"),
        resource_type=required("ResourceType"),
        resource_id=text(el, "ResourceId", limit=255),
        external_resource_id=text(el, "ExternalResourceId", limit=255),
    )


def api_definition(el: etree._Element, service_id: str) -> ApiDefinition:
    """A ``vmext:ApiDefinition`` of ``service_id`` with its file descriptors."""
    expect(el, VMEXT_NS, "ApiDefinition")
    versions = tuple(
        (v.text or "").strip()
        for v in el.iterfind(f"{{{VMEXT_NS}}}SupportedApiVersions/{{{VMEXT_NS}}}Version")
        if (v.text or "").strip()
    )
    files = []
    for fd in el.iterfind(f"{{{VMEXT_NS}}}Files/{{{VMEXT_NS}}}FileDescriptor"):
        ref_el = child(fd, "File")
        if ref_el is None:
            raise BadRequest("A FileDescriptor needs a File reference")
        ref = reference(ref_el, "File")
        files.append(FileDescriptor(ref.href, text(fd, "Description") or "", ref.type, ref.name))
    return ApiDefinition(
        id=new_id(),
        service_id=service_id,
        name=name_attribute(el),
        description=_description(el),
        entry_point=text(el, "EntryPoint", limit=255) or "",
        namespace=text(el, "Namespace") or "",
        api_vendor=text(el, "ApiVendor") or "",
        versions=versions,
        files=tuple(files),
    )


def right(el: etree._Element, owner: Service) -> Right:
    """A service right; its stored name is ``{namespace}:name`` (not prefixed twice)."""
    expect(el, VCLOUD_NS, "Right")
    name = name_attribute(el)
    prefix = f"{{{owner.namespace}}}:"
    return Right(
        id=new_id(),
        name=name if name.startswith(prefix) else prefix + name,
        category=text(el, "Category", VCLOUD_NS) or owner.name,
        description=_description(el),
        bundle_key=text(el, "BundleKey", VCLOUD_NS) or "",
        service_namespace=owner.namespace,
        service_id=owner.id,
    )


def bundle_upload_params(el: etree._Element, owner: Service) -> int:
    """The declared ``fileSize`` of a ``vmext:BundleUploadParams``."""
    size = integer(el.get("fileSize"), "fileSize", 1, 50 * 1024 * 1024)
    if size is None:
        raise BadRequest("BundleUploadParams needs a fileSize attribute")
    namespace = el.get("serviceNamespace")
    if namespace and namespace != owner.namespace:
        raise BadRequest(
            f"serviceNamespace {namespace!r} is not the namespace of this service "
            f"({owner.namespace!r})"
        )
    return size


# -- tasks and events ------------------------------------------------------------------------


def _namespace_attribute(el: etree._Element, attribute: str, forbidden: str) -> str:
    value = el.get(attribute) or ""
    if not 1 <= len(value) <= 128:
        raise BadRequest(f"{attribute} must have 1 to 128 characters")
    if value.startswith(forbidden):
        raise BadRequest(f"{attribute} must not start with {forbidden}")
    return value


def _datetime(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{what} must be an xs:dateTime, got {value!r}") from None
    return value


def _task_error(el: etree._Element | None) -> TaskError | None:
    if el is None:
        return None
    major = integer(el.get("majorErrorCode", "500"), "Error majorErrorCode", 100, 599) or 500
    return TaskError(
        message=el.get("message", ""),
        major=major,
        minor=el.get("minorErrorCode", "INTERNAL_SERVER_ERROR"),
        stack_trace=el.get("stackTrace"),
    )


def _task_fields(el: etree._Element) -> dict[str, object]:
    status = el.get("status")
    if status not in TASK_STATUSES:
        raise BadRequest(f"Task status must be one of {', '.join(TASK_STATUSES)}, got {status!r}")
    owner = child(el, "Owner", VCLOUD_NS)
    user = child(el, "User", VCLOUD_NS)
    params = child(el, "Params", VCLOUD_NS)
    details = child(el, "Details", VCLOUD_NS)
    return {
        "status": status,
        "service_namespace": _namespace_attribute(el, "serviceNamespace", "com.vmware.vcloud"),
        "name": el.get("name") or "task",
        "operation": el.get("operation", ""),
        "operation_name": el.get("operationName", ""),
        "description": _description(el),
        "expiry_time": _datetime(el.get("expiryTime"), "expiryTime"),
        "end_time": _datetime(el.get("endTime"), "endTime"),
        "owner": reference(owner, "Owner") if owner is not None else None,
        "error": _task_error(child(el, "Error", VCLOUD_NS)),
        "user": reference(user, "User") if user is not None else None,
        "progress": integer(text(el, "Progress", VCLOUD_NS), "Progress", 0, 100),
        "params": etree.tostring(params) if params is not None else None,
        "details": (details.text or "") if details is not None else None,
    }


def task(el: etree._Element, org_id: str, creator_id: str) -> Task:
    """A new task from a posted ``Task``; the cell fills id, start time and organization."""
    expect(el, VCLOUD_NS, "Task")
    fields = _task_fields(el)
    task = Task(id=new_id(), org_id=org_id, creator_id=creator_id, start_time=now(), **fields)  # type: ignore[arg-type]
    if task.finished and task.end_time is None:
        task = _with(task, end_time=now())
    return task


def task_update(el: etree._Element, current: Task) -> Task:
    """The task after a ``PUT`` of a full ``Task``; id, org, start time and the cancel
    request stay the cell's."""
    expect(el, VCLOUD_NS, "Task")
    updated = _with(current, **_task_fields(el))
    if updated.finished and updated.end_time is None:
        updated = _with(updated, end_time=now())
    return updated


def _with(task: Task, **changes: object) -> Task:
    return dataclasses.replace(task, **changes)  # type: ignore[arg-type]


def event(el: etree._Element, org_id: str, posted_by: str, raw: bytes) -> Event:
    """A posted vcloud ``Event``; ``User`` is required, as the guide says."""
    expect(el, VCLOUD_NS, "Event")
    success = el.get("success")
    type_full = el.get("typeFull", "")
    if len(type_full) > 2000:
        raise BadRequest("typeFull must have at most 2000 characters")
    owner = child(el, "Owner", VCLOUD_NS)
    user = child(el, "User", VCLOUD_NS)
    if user is None:
        raise BadRequest("An Event needs a User reference (the user it belongs to)")
    properties = tuple(
        (p.get("name", ""), p.get("value", ""))
        for p in el.iterfind(f"{{{VCLOUD_NS}}}EventProperties/{{{VCLOUD_NS}}}EventProperty")
    )
    return Event(
        org_id=org_id,
        type=_namespace_attribute(el, "type", "com/vmware/vcloud"),
        service_namespace=_namespace_attribute(el, "serviceNamespace", "com.vmware.vcloud"),
        success=None if success is None else boolean(success, "success"),
        type_full=type_full,
        owner=reference(owner, "Owner") if owner is not None else None,
        user=reference(user, "User"),
        properties=properties,
        posted_by=posted_by,
        timestamp=now(),
        xml=raw,
    )
