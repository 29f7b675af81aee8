"""Notifications and blocking tasks: every document kind written once and read once.

* ``vmext:Notification`` (XML, on the ``AmqpExchange``) and its JSON form (on
  ``<AmqpPrefix>.notifications20``): :class:`Notification`, :func:`write_notification`,
  :func:`notification_json`, :func:`read_notification`;
* the AMQP routing key ``operationSuccess.entity.org.user.subType1…subTypeN[.taskName]`` and
  the ``notification.*`` headers: :func:`routing_key`, :func:`binding_key`,
  :func:`notification_headers`;
* ``vmext:BlockingTask`` (:class:`BlockingTask`), the ``BlockingTaskOperationParams`` and
  ``BlockingTaskUpdateProgressParams`` posted to its actions, ``BlockingTaskSettings``,
  ``BlockingTaskOperations``, ``NotificationsSettings`` and ``BlockingTaskReferences``.

Element names and order follow VMware's ``extension/notification.xsd``,
``extension/taskExtensionRequest.xsd``, ``admin/blockingExtensions.xsd`` and
``extension/settings.xsd`` (see ``docs/protocol.md``). Nothing here does I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from lxml import etree

from ..errors import BadRequest
from ..xml import parse
from .elements import (
    expect,
    find,
    root,
    strict_boolean,
    strict_integer,
    sub,
    text,
    v,
    x,
    xs_boolean,
)
from .media import VCLOUD_NS, VMEXT_NS
from .model import Link, Reference
from .reference import read_reference, write_link, write_reference

Body = bytes | str | etree._Element

#: Media types of the blocking-task and notification documents.
BLOCKING_TASK = "application/vnd.vmware.admin.blockingTask+xml"
BLOCKING_TASK_LIST = "application/vnd.vmware.admin.blockingTaskList+xml"
BLOCKING_TASK_OPERATION_PARAMS = "application/vnd.vmware.admin.blockingTaskOperationParams+xml"
BLOCKING_TASK_UPDATE_PROGRESS = (
    "application/vnd.vmware.admin.blockingTaskUpdateProgressOperationParams+xml"
)
BLOCKING_TASK_SETTINGS = "application/vnd.vmware.admin.blockingTaskSettings+xml"
TASK_OPERATION_LIST = "application/vnd.vmware.admin.taskOperationList+xml"
NOTIFICATIONS_SETTINGS = "application/vnd.vmware.admin.notificationsSettings+xml"

#: What a blocking task's actions (and ``TimeoutAction``) may be.
BlockingAction = Literal["resume", "abort", "fail"]
BLOCKING_ACTIONS: tuple[BlockingAction, ...] = ("resume", "abort", "fail")
#: The notification type prefix (``com/vmware/vcloud/event/<object>/<event>``).
EVENT_PREFIX = "com/vmware/vcloud/event/"
BLOCKING_TASK_CREATE = EVENT_PREFIX + "blockingtask/create"

# EntityLink rels of a notification (guide, "Notification Message Format").
REL_ENTITY = "entity"
REL_ORG = "up"
REL_USER = "down"
REL_TASK = "task"
REL_TASK_OWNER = "task:owner"
REL_ENTITY_RESOLVER = "entityResolver"


# -- notifications ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityLink:
    """A ``vmext:EntityLink``: ``id`` is a URN (``urn:vcloud:vapp:<uuid>``), ``type`` the
    entity type (``vcloud:vapp``)."""

    rel: str
    id: str
    type: str = ""
    name: str = ""

    @property
    def uuid(self) -> str:
        """The object identifier: the last part of the URN."""
        return self.id.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Notification:
    """One notification vCD published, in either format.

    ``type`` is ``com/vmware/vcloud/event/<object>/<event>``; ``entity``, ``org``, ``user``,
    ``task`` and ``task_owner`` are the matching entity links (``None`` when absent);
    ``raw`` the message body as received (or written) and ``format`` ``"xml"`` or ``"json"``.
    """

    type: str
    event_id: str
    success: bool
    timestamp: str
    entity_links: tuple[EntityLink, ...] = ()
    links: tuple[Link, ...] = ()
    format: Literal["xml", "json"] = "xml"
    raw: bytes = field(default=b"", repr=False)

    def _rel(self, rel: str) -> EntityLink | None:
        return next((e for e in self.entity_links if e.rel == rel), None)

    @property
    def entity(self) -> EntityLink | None:
        return self._rel(REL_ENTITY)

    @property
    def org(self) -> EntityLink | None:
        return self._rel(REL_ORG)

    @property
    def user(self) -> EntityLink | None:
        return self._rel(REL_USER)

    @property
    def task(self) -> EntityLink | None:
        return self._rel(REL_TASK)

    @property
    def task_owner(self) -> EntityLink | None:
        return self._rel(REL_TASK_OWNER)

    @property
    def entity_resolver(self) -> str | None:
        """The URL an entity's URN is appended to (``…/api/entity/``), XML notifications only."""
        return next((lk.href for lk in self.links if lk.rel == REL_ENTITY_RESOLVER), None)

    @property
    def subtypes(self) -> tuple[str, ...]:
        """The type's components (``com``, ``vmware``, … ``vapp``, ``create``)."""
        return tuple(self.type.split("/"))


def _uuid_or_star(link: EntityLink | None) -> str:
    return link.uuid if link is not None and link.uuid else "-"


def routing_key(n: Notification) -> str:
    """``operationSuccess.entity.org.user.subType1…subTypeN[.taskName]``: the task name is
    appended when the entity is a task or blocking task."""
    parts = [
        xs_boolean(n.success),
        _uuid_or_star(n.entity),
        _uuid_or_star(n.org),
        _uuid_or_star(n.user),
        *n.subtypes,
    ]
    entity = n.entity
    task_types = ("vcloud:task", "vcloud:blockingtask")
    if entity is not None and entity.name and entity.type.lower() in task_types:
        parts.append(entity.name)
    return ".".join(parts)


def binding_key(type: str, *, success: bool | None = None, task_name: str | None = None) -> str:
    """The topic binding that matches notifications of ``type`` (``success``: only those
    whose operation succeeded or failed; ``None``: both). ``task_name`` narrows a task's
    notifications to one operation; otherwise any task name (or none) matches."""
    check_type(type)
    head = "*" if success is None else xs_boolean(success)
    tail = task_name if task_name else "#"
    return ".".join([head, "*", "*", "*", *type.split("/"), tail])


def check_type(type: str) -> str:
    """``type`` if it is a notification type (``com/vmware/vcloud/event/<object>/<event>``);
    :class:`ValueError` otherwise."""
    parts = type.split("/")
    if (
        not type.startswith(EVENT_PREFIX)
        or len(parts) < 6
        or not all(p and "." not in p and "*" not in p and "#" not in p for p in parts)
    ):
        raise ValueError(
            f"notification type {type!r} must look like com/vmware/vcloud/event/<object>/<event>"
        )
    return type


def notification_headers(n: Notification) -> dict[str, str]:
    """The ``notification.*`` AMQP headers vCD prepends to every notification."""
    entity = n.entity
    headers = {
        "notification.type": n.type,
        "notification.entityType": entity.type.split(":")[-1] if entity else "",
        "notification.entityUUID": entity.uuid if entity else "",
        "notification.orgUUID": n.org.uuid if n.org else "",
        "notification.userUUID": n.user.uuid if n.user else "",
        "notification.operationSuccess": xs_boolean(n.success),
    }
    if n.task is not None:
        headers["notification.taskUUID"] = n.task.uuid
    return headers


def write_notification(n: Notification) -> etree._Element:
    """A ``vmext:Notification`` (Link and EntityLink are vmext elements, as in the guide)."""
    el = root(VMEXT_NS, "Notification", type=n.type, eventId=n.event_id)
    for link in n.links:
        sub(
            el,
            "Link",
            ns=VMEXT_NS,
            rel=link.rel,
            href=link.href,
            type=link.type or None,
            name=link.name or None,
        )
    for e in n.entity_links:
        sub(el, "EntityLink", ns=VMEXT_NS, rel=e.rel, type=e.type, name=e.name or None, id=e.id)
    sub(el, "Timestamp", n.timestamp, ns=VMEXT_NS)
    sub(el, "OperationSuccess", xs_boolean(n.success), ns=VMEXT_NS)
    return el


_JSON_RELS = {REL_USER: "user", REL_ORG: "org", REL_ENTITY: "entity", REL_TASK: "task"}
_JSON_RELS[REL_TASK_OWNER] = "taskOwner"


def notification_json(n: Notification) -> dict[str, Any]:
    """The JSON form vCD publishes on ``<AmqpPrefix>.notifications20`` (URNs only)."""
    doc: dict[str, Any] = {
        "eventId": n.event_id,
        "type": n.type,
        "timestamp": n.timestamp,
        "operationSuccess": n.success,
    }
    for e in n.entity_links:
        key = _JSON_RELS.get(e.rel)
        if key is not None:
            doc[key] = e.id
    return doc


def read_notification(body: bytes | str) -> Notification:
    """A notification in either format (JSON when the body is a JSON object); XML goes through
    the hardened parser. A malformed one is a :class:`~vcdext.errors.BadRequest`."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if raw.lstrip()[:1] == b"{":
        return _read_json(raw)
    el = parse(raw)
    expect(el, VMEXT_NS, "Notification")
    type_ = el.get("type") or ""
    event_id = el.get("eventId") or ""
    if not type_ or not event_id:
        raise BadRequest("vmext:Notification needs its type and eventId attributes")
    links = tuple(
        Link(rel=lk.get("rel", ""), href=lk.get("href", ""), type=lk.get("type", ""))
        for lk in el.findall(x("Link")) + el.findall(v("Link"))
        if lk.get("href")
    )
    entities = tuple(
        EntityLink(
            rel=e.get("rel", ""), id=e.get("id", ""), type=e.get("type", ""), name=e.get("name", "")
        )
        for e in el.findall(x("EntityLink")) + el.findall(v("EntityLink"))
    )
    return Notification(
        type=type_,
        event_id=event_id,
        success=strict_boolean(text(el, "OperationSuccess", required=True), "OperationSuccess"),
        timestamp=text(el, "Timestamp", required=True) or "",
        entity_links=entities,
        links=links,
        format="xml",
        raw=raw,
    )


def _read_json(raw: bytes) -> Notification:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the notification is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise BadRequest("a JSON notification is an object with a type")
    success = doc.get("operationSuccess")
    if not isinstance(success, bool):
        raise BadRequest("a JSON notification needs a boolean operationSuccess")
    entities = []
    for rel, key in _JSON_RELS.items():
        value = doc.get(key)
        if isinstance(value, str) and value:
            parts = value.split(":")
            entity_type = f"vcloud:{parts[2]}" if len(parts) >= 4 else ""
            entities.append(EntityLink(rel=rel, id=value, type=entity_type))
    return Notification(
        type=doc["type"],
        event_id=str(doc.get("eventId", "")),
        success=success,
        timestamp=str(doc.get("timestamp", "")),
        entity_links=tuple(entities),
        format="json",
        raw=raw,
    )


# -- blocking tasks -----------------------------------------------------------------------


@dataclass(frozen=True)
class BlockingTask:
    """A ``vmext:BlockingTask``: the operation it holds (``name``, e.g. ``vappDeploy``), its
    ``status``, when it times out and with which action, and references to the org, the user
    and the object the task operates on (``task_owner``)."""

    name: str
    status: str
    created_time: str
    timeout_date: str
    timeout_action: str
    organization: Reference
    user: Reference | None = None
    task_owner: Reference | None = None
    description: str = ""
    href: str = ""
    id: str = ""
    links: tuple[Link, ...] = ()

    def action_href(self, action: str) -> str | None:
        """The href of the ``rel=<action>`` link (``resume``, ``abort``, ``fail``,
        ``updateProgress``)."""
        return next((lk.href for lk in self.links if lk.rel == action), None)


def write_blocking_task(t: BlockingTask) -> etree._Element:
    """A ``vmext:BlockingTask`` (vcloud ``Link``/``Description``/``Organization``/``User``/
    ``TaskOwner`` children, in the schema's order)."""
    el = root(
        VMEXT_NS,
        "BlockingTask",
        href=t.href or None,
        type=BLOCKING_TASK,
        id=t.id or None,
        name=t.name,
        createdTime=t.created_time,
        timeoutDate=t.timeout_date,
        timeoutAction=t.timeout_action,
        status=t.status,
    )
    for link in t.links:
        write_link(el, link)
    if t.description:
        sub(el, "Description", t.description)
    write_reference(el, "Organization", t.organization)
    if t.user is not None:
        write_reference(el, "User", t.user)
    if t.task_owner is not None:
        write_reference(el, "TaskOwner", t.task_owner)
    return el


def read_blocking_task(body: Body) -> BlockingTask:
    """A ``vmext:BlockingTask``; 400 when a required part is missing."""
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VMEXT_NS, "BlockingTask")
    values = {}
    for attr in ("name", "createdTime", "timeoutDate", "timeoutAction", "status"):
        value = el.get(attr)
        if not value:
            raise BadRequest(f"vmext:BlockingTask needs its {attr} attribute")
        values[attr] = value
    org = find(el, "Organization", VCLOUD_NS)
    if org is None:
        raise BadRequest("vmext:BlockingTask needs an Organization")
    user = find(el, "User", VCLOUD_NS)
    owner = find(el, "TaskOwner", VCLOUD_NS)
    links = tuple(
        Link(
            rel=lk.get("rel", ""),
            href=lk.get("href", ""),
            type=lk.get("type", ""),
            name=lk.get("name", ""),
        )
        for lk in el.findall(v("Link"))
        if lk.get("href")
    )
    return BlockingTask(
        name=values["name"],
        status=values["status"],
        created_time=values["createdTime"],
        timeout_date=values["timeoutDate"],
        timeout_action=values["timeoutAction"],
        organization=read_reference(org, "Organization"),
        user=read_reference(user, "User") if user is not None else None,
        task_owner=read_reference(owner, "TaskOwner") if owner is not None else None,
        description=text(el, "Description", VCLOUD_NS) or "",
        href=el.get("href", ""),
        id=el.get("id", ""),
        links=links,
    )


def write_operation_params(message: str, *, timeout_ms: int | None = None) -> etree._Element:
    """``BlockingTaskOperationParams`` (resume, abort, fail) or, with ``timeout_ms``,
    ``BlockingTaskUpdateProgressParams`` (updateProgress)."""
    if timeout_ms is None:
        el = root(VMEXT_NS, "BlockingTaskOperationParams")
        sub(el, "Message", message, ns=VMEXT_NS)
        return el
    el = root(VMEXT_NS, "BlockingTaskUpdateProgressParams")
    sub(el, "Message", message, ns=VMEXT_NS)
    sub(el, "TimeoutValueInMilliseconds", str(timeout_ms), ns=VMEXT_NS)
    return el


@dataclass(frozen=True)
class OperationParams:
    """What was posted to a blocking task's action: the message, and for ``updateProgress``
    the new timeout in milliseconds."""

    message: str
    timeout_ms: int | None = None


def read_operation_params(body: Body) -> OperationParams:
    """``BlockingTaskOperationParams`` or ``BlockingTaskUpdateProgressParams``."""
    el = body if isinstance(body, etree._Element) else parse(body)
    name = etree.QName(el).localname
    if name == "BlockingTaskUpdateProgressParams":
        expect(el, VMEXT_NS, name)
        timeout = strict_integer(
            text(el, "TimeoutValueInMilliseconds"), "TimeoutValueInMilliseconds", 0, 2**62
        )
        return OperationParams(text(el, "Message", required=True) or "", timeout)
    expect(el, VMEXT_NS, "BlockingTaskOperationParams")
    return OperationParams(text(el, "Message", required=True) or "")


@dataclass(frozen=True)
class BlockingTaskSettings:
    """``vmext:BlockingTaskSettings``: the default action at the timeout, the operations that
    block, and the timeout."""

    timeout_action: str
    operations: tuple[str, ...]
    timeout_ms: int


def write_blocking_task_settings(s: BlockingTaskSettings, *, href: str = "") -> etree._Element:
    el = root(VMEXT_NS, "BlockingTaskSettings", href=href or None, type=BLOCKING_TASK_SETTINGS)
    sub(el, "TimeoutAction", s.timeout_action, ns=VMEXT_NS)
    ops = sub(el, "BlockingTaskOperations", ns=VMEXT_NS)
    for op in s.operations:
        sub(ops, "Operation", op)
    sub(el, "TimeoutInMilliseconds", str(s.timeout_ms), ns=VMEXT_NS)
    return el


def read_blocking_task_settings(body: Body) -> BlockingTaskSettings:
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VMEXT_NS, "BlockingTaskSettings")
    action = text(el, "TimeoutAction", required=True) or ""
    ops = find(el, "BlockingTaskOperations")
    if ops is None:
        raise BadRequest("vmext:BlockingTaskOperations is required in BlockingTaskSettings")
    timeout = strict_integer(
        text(el, "TimeoutInMilliseconds", required=True), "TimeoutInMilliseconds", 0, 2**62
    )
    return BlockingTaskSettings(action, _operations(ops), timeout or 0)


def _operations(el: etree._Element) -> tuple[str, ...]:
    return tuple(
        (o.text or "").strip() for o in el.findall(v("Operation")) if (o.text or "").strip()
    )


def write_blocking_operations(operations: tuple[str, ...] | list[str]) -> etree._Element:
    """``vmext:BlockingTaskOperations`` (the body of ``PUT …/settings/blockingTask/operations``)."""
    el = root(VMEXT_NS, "BlockingTaskOperations", type=TASK_OPERATION_LIST)
    for op in operations:
        sub(el, "Operation", op)
    return el


def read_blocking_operations(body: Body) -> tuple[str, ...]:
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VMEXT_NS, "BlockingTaskOperations")
    return _operations(el)


def write_notifications_settings(enabled: bool, *, href: str = "") -> etree._Element:
    el = root(VMEXT_NS, "NotificationsSettings", href=href or None, type=NOTIFICATIONS_SETTINGS)
    sub(el, "EnableNotifications", xs_boolean(enabled), ns=VMEXT_NS)
    return el


def read_notifications_settings(body: Body) -> bool:
    """Whether ``EnableNotifications`` is true."""
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VMEXT_NS, "NotificationsSettings")
    return strict_boolean(text(el, "EnableNotifications", required=True), "EnableNotifications")


def write_blocking_task_references(refs: list[Reference], *, href: str = "") -> etree._Element:
    """``vmext:BlockingTaskReferences`` (``GET /api/admin/extension/blockingTasks``)."""
    el = root(VMEXT_NS, "BlockingTaskReferences", href=href or None, type=BLOCKING_TASK_LIST)
    for ref in refs:
        write_reference(el, "Reference", ref)
    return el


__all__ = [
    "BLOCKING_ACTIONS",
    "BLOCKING_TASK_CREATE",
    "BlockingAction",
    "BlockingTask",
    "BlockingTaskSettings",
    "EntityLink",
    "Notification",
    "OperationParams",
    "binding_key",
    "check_type",
    "notification_headers",
    "notification_json",
    "read_blocking_operations",
    "read_blocking_task",
    "read_blocking_task_settings",
    "read_notification",
    "read_notifications_settings",
    "read_operation_params",
    "routing_key",
    "write_blocking_operations",
    "write_blocking_task",
    "write_blocking_task_references",
    "write_blocking_task_settings",
    "write_notification",
    "write_notifications_settings",
    "write_operation_params",
]
