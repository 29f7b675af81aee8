"""``Task``, ``TasksList`` and ``Event``: written once and read once.

The readers check what vCD checks when an extension posts a task or an event (a status vCD
knows, a ``serviceNamespace`` of 1 to 128 characters not in VMware's own namespace, dates
that are ``xs:dateTime``, a ``User`` on every event); a violation is a
:class:`~vcdext.errors.BadRequest` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lxml import etree

from ..errors import BadRequest
from ..xml import parse
from .elements import expect, find, root, strict_boolean, strict_integer, sub, text, v, xs_boolean
from .error import _NOT_XML, error_element, read_error_element
from .media import VCLOUD_NS
from .model import TASK_STATUSES, Event, Held, Task, TaskError
from .reference import read_links, read_reference, write_link, write_reference

Body = bytes | str | etree._Element


def _element(body: Body, name: str) -> etree._Element:
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VCLOUD_NS, name)
    return el


# -- Task ---------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Free text (a work's details, an exception's message) with each character XML cannot
    hold as U+FFFD, so that a task's state and its event can always be sent."""
    return _NOT_XML.sub("\ufffd", value)


def write_task(held: Held[Task], *, inline: bool = False) -> etree._Element:
    """A ``vcloud:Task`` (``inline``: to append to a ``TasksList``, without declarations)."""
    t = held.value
    el = root(
        VCLOUD_NS,
        "Task",
        declare=not inline,
        href=held.href or None,
        type=held.type or None,
        id=held.id or None,
        name=t.name,
        status=t.status,
        serviceNamespace=t.service_namespace,
        operation=_text(t.operation),
        operationName=t.operation_name,
        startTime=t.start_time or None,
        endTime=t.end_time,
        expiryTime=t.expiry_time,
        cancelRequested=xs_boolean(t.cancel_requested),
    )
    for link in held.links:
        write_link(el, link)
    if t.description:
        sub(el, "Description", _text(t.description))
    if t.owner is not None:
        write_reference(el, "Owner", t.owner)
    if t.error is not None:
        error = error_element(t.error.major, t.error.minor, t.error.message)
        if t.error.stack_trace:
            error.set("stackTrace", _text(t.error.stack_trace))
        el.append(error)
    if t.user is not None:
        write_reference(el, "User", t.user)
    if t.organization is not None:
        write_reference(el, "Organization", t.organization)
    if t.progress is not None:
        sub(el, "Progress", str(t.progress))
    if t.params is not None:
        el.append(parse(t.params))
    if t.details is not None:
        sub(el, "Details", _text(t.details))
    return el


def read_task(body: Body) -> Held[Task]:
    """A ``vcloud:Task`` (as posted by an extension, or as vCD returns it)."""
    el = _element(body, "Task")
    status = el.get("status")
    if status not in TASK_STATUSES:
        raise BadRequest(f"Task status must be one of {', '.join(TASK_STATUSES)}, got {status!r}")
    owner = find(el, "Owner", VCLOUD_NS)
    user = find(el, "User", VCLOUD_NS)
    organization = find(el, "Organization", VCLOUD_NS)
    params = find(el, "Params", VCLOUD_NS)
    details = find(el, "Details", VCLOUD_NS)
    task = Task(
        status=status,
        service_namespace=_namespace_attribute(el, "serviceNamespace", "com.vmware.vcloud"),
        name=el.get("name") or "task",
        operation=el.get("operation", ""),
        operation_name=el.get("operationName", ""),
        description=text(el, "Description", VCLOUD_NS) or "",
        start_time=_datetime(el.get("startTime"), "startTime") or "",
        end_time=_datetime(el.get("endTime"), "endTime"),
        expiry_time=_datetime(el.get("expiryTime"), "expiryTime"),
        cancel_requested=strict_boolean(el.get("cancelRequested"), "cancelRequested"),
        owner=read_reference(owner, "Owner") if owner is not None else None,
        error=_task_error(find(el, "Error", VCLOUD_NS)),
        user=read_reference(user, "User") if user is not None else None,
        organization=(
            read_reference(organization, "Organization") if organization is not None else None
        ),
        progress=strict_integer(text(el, "Progress", VCLOUD_NS), "Progress", 0, 100),
        params=etree.tostring(params) if params is not None else None,
        details=(details.text or "") if details is not None else None,
    )
    return Held(
        task,
        href=el.get("href", ""),
        id=el.get("id", ""),
        type=el.get("type", ""),
        links=read_links(el),
    )


def _task_error(el: etree._Element | None) -> TaskError | None:
    return None if el is None else read_error_element(el)


def write_tasks_list(held: Held[Iterable[Held[Task]]]) -> etree._Element:
    """``vcloud:TasksList`` with its tasks inline."""
    el = root(VCLOUD_NS, "TasksList", href=held.href, type=held.type or None, name="Tasks Lists")
    for link in held.links:
        write_link(el, link)
    for task in held.value:
        el.append(write_task(task, inline=True))
    return el


def read_tasks_list(body: Body) -> list[Held[Task]]:
    """The tasks of a ``vcloud:TasksList``."""
    el = _element(body, "TasksList")
    return [read_task(task) for task in el.findall(v("Task"))]


# -- Event ----------------------------------------------------------------------------------------


def write_event(event: Event) -> etree._Element:
    """A ``vcloud:Event`` to post to ``/api/admin/org/{id}/events``."""
    success = None if event.success is None else xs_boolean(event.success)
    el = root(
        VCLOUD_NS,
        "Event",
        type=event.type,
        serviceNamespace=event.service_namespace,
        success=success,
        typeFull=event.type_full or None,
    )
    if event.owner is not None:
        write_reference(el, "Owner", event.owner)
    if event.user is not None:
        write_reference(el, "User", event.user)
    if event.properties:
        properties = sub(el, "EventProperties")
        for name, value in event.properties:
            sub(properties, "EventProperty", name=name, value=_text(value))
    return el


def read_event(body: Body) -> Event:
    """A posted ``vcloud:Event``; ``User`` is required, as the guide says."""
    el = _element(body, "Event")
    success = el.get("success")
    type_full = el.get("typeFull", "")
    if len(type_full) > 2000:
        raise BadRequest("typeFull must have at most 2000 characters")
    owner = find(el, "Owner", VCLOUD_NS)
    user = find(el, "User", VCLOUD_NS)
    if user is None:
        raise BadRequest("An Event needs a User reference (the user it belongs to)")
    properties = tuple(
        (p.get("name", ""), p.get("value", ""))
        for p in el.iterfind(f"{v('EventProperties')}/{v('EventProperty')}")
    )
    return Event(
        type=_namespace_attribute(el, "type", "com/vmware/vcloud"),
        service_namespace=_namespace_attribute(el, "serviceNamespace", "com.vmware.vcloud"),
        success=None if success is None else strict_boolean(success, "success"),
        type_full=type_full,
        owner=read_reference(owner, "Owner") if owner is not None else None,
        user=read_reference(user, "User"),
        properties=properties,
    )


# -- checks ----------------------------------------------------------------------------------


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
