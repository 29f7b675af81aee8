"""What vCD holds, as plain values: one dataclass per concept, shared by the vCD client and the
local cell.

The line between the two sides of registration: a plugin *declares* its service, operations,
rights and links (:mod:`vcdext.registry`); vCD *holds* the objects below. The vCD client reads
them from vCD (and writes what it wants vCD to hold); the local cell stores them (its records
add cell-only fields such as ids and registration order). :class:`Held` is a value as a vCD
document carries it: with its ``href``, URN, media type and links.

Nothing here does I/O or knows XML; :mod:`vcdext.vcloud.extension`, :mod:`.query` and
:mod:`.task` read and write these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .accept import bare

T = TypeVar("T", covariant=True)


@dataclass(frozen=True)
class Link:
    """A ``vcloud:Link`` of a document."""

    rel: str
    href: str
    type: str = ""
    name: str = ""
    id: str = ""


def find_link(links: Iterable[Link], rel: str, media_type: str | None = None) -> str | None:
    """The href of the first link with ``rel`` (and ``media_type``, compared without params)."""
    for link in links:
        if link.rel != rel:
            continue
        if media_type is None or bare(link.type) == bare(media_type):
            return link.href
    return None


@dataclass(frozen=True)
class Reference:
    """A vcloud ``ReferenceType`` (``href`` is required)."""

    href: str
    type: str = ""
    name: str = ""
    id: str = ""


@dataclass(frozen=True)
class Held(Generic[T]):
    """A value as vCD holds it: where it is (``href``), its URN (``id``), its media type and
    the links of its document."""

    value: T
    href: str = ""
    id: str = ""
    type: str = ""
    links: tuple[Link, ...] = field(default=(), repr=False)

    def link(self, rel: str, media_type: str | None = None) -> str | None:
        """The href of the document's first link with ``rel`` (and ``media_type``)."""
        return find_link(self.links, rel, media_type)


# -- extension services ---------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """An extension service (``vmext:Service``) without its parts."""

    name: str
    namespace: str
    routing_key: str = ""
    exchange: str = ""
    enabled: bool = False
    authorization_enabled: bool = False
    priority: int = 50
    vendor: str = ""
    description: str = ""


@dataclass(frozen=True)
class ApiFilter:
    """An API filter: a ``UrlPattern`` or a ``ResponseContentType`` (never both)."""

    url_pattern: str | None = None
    response_content_type: str | None = None


@dataclass(frozen=True)
class ServiceLink:
    """A link vCD adds to representations of ``resource_type`` (``ServiceLink``)."""

    rel: str
    #: ``LinkHref``: may hold ``{baseUri}`` and ``{resourceId}``.
    href: str
    mime_type: str
    resource_type: str
    #: ``""`` when the link is on every object of ``resource_type``.
    resource_id: str = ""
    #: ``ExternalResourceId``; vCD's link records do not carry it, so it is not compared.
    external_id: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a link when comparing with vCD's records."""
        return (self.rel, self.href, self.mime_type, self.resource_type, self.resource_id)


@dataclass(frozen=True)
class FileDescriptor:
    """A file of an API definition (its ``File`` reference and description)."""

    href: str
    description: str = ""
    type: str = ""
    name: str = ""


@dataclass(frozen=True)
class ApiDefinition:
    """An API definition (compared by name, entry point, namespace and vendor)."""

    name: str
    entry_point: str = ""
    namespace: str = ""
    api_vendor: str = ""
    description: str = field(default="", compare=False)
    versions: tuple[str, ...] = field(default=(), compare=False)
    files: tuple[FileDescriptor, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a definition when comparing with vCD's records."""
        return (self.name, self.entry_point, self.namespace, self.api_vendor)


@dataclass(frozen=True)
class Right:
    """A right; a service's rights are named ``{namespace}:Name`` by vCD."""

    name: str
    category: str = ""
    description: str = ""
    bundle_key: str = ""
    service_namespace: str = ""


def right_urn(href: str) -> str:
    """``.../api/admin/right/<uuid>`` → ``urn:vcloud:right:<uuid>``."""
    tail = href.rstrip("/").rsplit("/", 1)[-1]
    return f"urn:vcloud:right:{tail}" if tail else ""


# -- authorization: resource classes, actions, ACL rules, service resources -----------------

#: The values of an ACL rule's ``Access``.
ACL_ACCESS = ("Shared", "Published", "Entity")
#: The methods a resource class action may name.
ACTION_METHODS = ("GET", "PUT", "POST", "DELETE")


@dataclass(frozen=True)
class AclAccess:
    """One part of an ACL rule: ``Shared``, ``Published`` or ``Entity`` (with its entity)."""

    access: str
    entity: Reference | None = None


@dataclass(frozen=True)
class AclRule:
    """An ACL rule of a resource class action; a missing part restricts nothing."""

    name: str
    service_resource: AclAccess | None = None
    organization: AclAccess | None = None
    principal: AclAccess | None = None
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class ResourceClassAction:
    """An action on a resource class: an HTTP method on a URL pattern (``(?<id>…)`` names
    the resource)."""

    name: str
    http_method: str
    url_pattern: str


@dataclass(frozen=True)
class ResourceClass:
    """A resource class an extension service defines."""

    name: str
    mime_type: str = ""
    url_template: str = ""
    nid: str = ""
    urn_pattern: str = ""


@dataclass(frozen=True)
class ServiceResource:
    """An instance of a resource class, owned by an organization."""

    name: str
    org: Reference | None = None
    external_object_id: str = ""


@dataclass(frozen=True)
class AuthorizationCheck:
    """``AuthorizationCheckParams``: may ``user`` send ``http_method`` to ``url``?"""

    user: Reference | None
    http_method: str
    url: str


# -- tasks and events -------------------------------------------------------------------------

#: Task statuses of ``vcloud:TaskType`` (``task.xsd``).
TASK_STATUSES = ("queued", "preRunning", "running", "success", "error", "canceled", "aborted")
#: Statuses after which a task does not change on its own any more.
FINAL_STATUSES = ("success", "error", "canceled", "aborted")


@dataclass(frozen=True)
class TaskError:
    """The ``Error`` of a failed task."""

    message: str
    major: int = 500
    minor: str = "INTERNAL_SERVER_ERROR"
    stack_trace: str | None = None


@dataclass(frozen=True)
class Task:
    """A task (``vcloud:Task``); times are ``xs:dateTime`` text."""

    status: str
    service_namespace: str
    name: str = "task"
    operation: str = ""
    operation_name: str = ""
    description: str = ""
    start_time: str = ""
    end_time: str | None = None
    expiry_time: str | None = None
    cancel_requested: bool = False
    owner: Reference | None = None
    error: TaskError | None = None
    user: Reference | None = None
    organization: Reference | None = None
    progress: int | None = None
    #: The ``Params`` element as XML bytes (``xs:anyType``), kept as sent.
    params: bytes | None = field(default=None, repr=False)
    details: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the status is final (success, error, canceled, aborted)."""
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Event:
    """An event an extension posts to an organization (``vcloud:Event``)."""

    type: str
    service_namespace: str
    success: bool | None = None
    type_full: str = ""
    owner: Reference | None = None
    #: The user the event belongs to (required when posting).
    user: Reference | None = None
    properties: tuple[tuple[str, str], ...] = ()
