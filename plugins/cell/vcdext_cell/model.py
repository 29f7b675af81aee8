"""The records the cell keeps: registered services and their parts, sessions, tasks, events.

Every record is a frozen dataclass. The store (:mod:`.state`) replaces a record to change it,
so a record handed out is a consistent snapshot that can be rendered without holding a lock.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .seed import Org, User

#: Task statuses of vcloud:TaskType (task.xsd).
TASK_STATUSES = ("queued", "preRunning", "running", "success", "error", "canceled", "aborted")
#: Statuses after which a task does not change on its own any more.
FINAL_STATUSES = ("success", "error", "canceled", "aborted")


def new_id() -> str:
    """A fresh UUID (the id part of every URN the cell hands out)."""
    return str(uuid.uuid4())


def now() -> str:
    """The current time as an ``xs:dateTime`` with milliseconds, in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uuid_of(value: str) -> str:
    """The UUID part of a URN (``urn:vcloud:org:<uuid>``), an href, or a bare id."""
    tail = value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removeprefix("vapp-").lower()


@dataclass(frozen=True)
class Ref:
    """A vcloud ``ReferenceType`` as a client sent it (``href`` is required)."""

    href: str
    type: str = ""
    name: str = ""
    id: str = ""


@dataclass(frozen=True)
class Service:
    """A registered extension service (vmext:Service)."""

    id: str
    name: str
    namespace: str
    routing_key: str
    exchange: str
    enabled: bool = False
    authorization_enabled: bool = False
    priority: int = 50
    vendor: str = ""
    description: str = ""
    #: Registration order; the tie-breaker when two services' filters match a path.
    order: int = 0

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:externalService:{self.id}"


@dataclass(frozen=True)
class ApiFilter:
    """One API filter: a ``UrlPattern`` or a ``ResponseContentType`` (never both)."""

    id: str
    service_id: str
    url_pattern: str | None = None
    response_content_type: str | None = None
    #: The pattern compiled for Python's ``re`` (``None`` for response filters).
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:apiFilter:{self.id}"


@dataclass(frozen=True)
class ServiceLink:
    """A link vCD adds to representations of ``resource_type``."""

    id: str
    service_id: str
    link_href: str
    mime_type: str
    rel: str
    resource_type: str
    resource_id: str | None = None
    external_resource_id: str | None = None

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:serviceLink:{self.id}"


@dataclass(frozen=True)
class FileDescriptor:
    """A file of an API definition (its ``File`` reference and description)."""

    href: str
    description: str = ""
    type: str = ""
    name: str = ""


@dataclass(frozen=True)
class ApiDefinition:
    """An API definition a service registered (vmext:ApiDefinition)."""

    id: str
    service_id: str
    name: str
    description: str = ""
    entry_point: str = ""
    namespace: str = ""
    api_vendor: str = ""
    versions: tuple[str, ...] = ()
    files: tuple[FileDescriptor, ...] = ()

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:apiDefinition:{self.id}"


@dataclass(frozen=True)
class Right:
    """A right: registered by a service (``{namespace}:Name``) or named in the seed.

    A right outlives its service (as in vCD, roles keep referring to it); a service that
    registers a right of the same name again adopts it and keeps its URN.
    """

    id: str
    name: str
    category: str = ""
    description: str = ""
    bundle_key: str = ""
    service_namespace: str = ""
    service_id: str | None = None

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:right:{self.id}"


@dataclass(frozen=True)
class Session:
    """A logged-in user; both tokens name the same session."""

    token: str
    bearer: str
    user: User
    org: Org
    created: str
    id: str = field(default_factory=new_id)

    @property
    def is_sysadmin(self) -> bool:
        """Whether the user belongs to the ``System`` org."""
        return self.org.is_system

    @property
    def user_urn(self) -> str:
        """``urn:vcloud:user:<uuid>`` (the security context's ``user``)."""
        return f"urn:vcloud:user:{self.user.id}"

    @property
    def org_urn(self) -> str:
        """``urn:vcloud:org:<uuid>`` (the security context's ``org``)."""
        return f"urn:vcloud:org:{self.org.id}"

    def __repr__(self) -> str:  # never show the tokens
        return f"Session(user={self.user.name!r}, org={self.org.name!r})"


@dataclass(frozen=True)
class TaskError:
    """The ``Error`` of a failed task."""

    message: str
    major: int = 500
    minor: str = "INTERNAL_SERVER_ERROR"
    stack_trace: str | None = None


@dataclass(frozen=True)
class Task:
    """A task created through ``POST /api/tasksList/{org}``."""

    id: str
    org_id: str
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
    owner: Ref | None = None
    error: TaskError | None = None
    #: The ``User`` the client named; ``None`` means the creator.
    user: Ref | None = None
    creator_id: str = ""
    progress: int | None = None
    #: The ``Params`` element as XML bytes (``xs:anyType``), kept as sent.
    params: bytes | None = None
    details: str | None = None

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:task:{self.id}"

    @property
    def finished(self) -> bool:
        """Whether the status is final (success, error, canceled, aborted)."""
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Event:
    """An event posted to ``POST /api/admin/org/{id}/events``."""

    org_id: str
    type: str
    service_namespace: str
    success: bool | None = None
    type_full: str = ""
    owner: Ref | None = None
    user: Ref | None = None
    properties: tuple[tuple[str, str], ...] = ()
    #: The id of the user who posted it, and when.
    posted_by: str = ""
    timestamp: str = ""
    #: The document exactly as posted.
    xml: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Forwarded:
    """One request the cell forwarded over AMQP, and how it ended (for tests and logs)."""

    method: str
    path: str
    service: str
    status: int
    user: str
    seconds: float
