"""The records the cell keeps: registered services and their parts, sessions, tasks, events.

A registered object is what vCD holds (:mod:`vcdext.vcloud.model`) plus the cell's own fields
(its id, its service's id). Every record is a frozen dataclass. The store (:mod:`.state`)
replaces a record to change it, so a record handed out is a consistent snapshot that can be
rendered without holding a lock.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from vcdext.vcloud import model as held

from .seed import Org, User


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


R = TypeVar("R")


def stored(cls: type[R], value: object, **extra: object) -> R:
    """The cell's record of class ``cls`` for a held ``value`` (a :mod:`vcdext.vcloud.model`
    dataclass), with the cell-only fields ``extra``."""
    values = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    return cls(**values, **extra)


@dataclass(frozen=True)
class Service(held.Service):
    """A registered extension service, with the cell's id and registration order."""

    id: str = ""
    #: Registration order; the tie-breaker when two services' filters match a path.
    order: int = 0

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:externalService:{self.id}"


@dataclass(frozen=True)
class ApiFilter(held.ApiFilter):
    """An API filter of the service ``service_id``."""

    id: str = ""
    service_id: str = ""
    #: The pattern compiled for Python's ``re`` (``None`` for response filters).
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:apiFilter:{self.id}"


@dataclass(frozen=True)
class ServiceLink(held.ServiceLink):
    """A service link of the service ``service_id``."""

    id: str = ""
    service_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:serviceLink:{self.id}"


@dataclass(frozen=True)
class ApiDefinition(held.ApiDefinition):
    """An API definition of the service ``service_id``."""

    id: str = ""
    service_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:apiDefinition:{self.id}"


@dataclass(frozen=True)
class Right(held.Right):
    """A right: registered by a service (``{namespace}:Name``) or named in the seed.

    A right outlives its service (as in vCD, roles keep referring to it); a service that
    registers a right of the same name again adopts it and keeps its URN.
    """

    id: str = ""
    service_id: str | None = None

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:right:{self.id}"


@dataclass(frozen=True)
class ResourceClass(held.ResourceClass):
    """A resource class of the service ``service_id``."""

    id: str = ""
    service_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:resourceClass:{self.id}"


@dataclass(frozen=True)
class ResourceClassAction(held.ResourceClassAction):
    """An action of the resource class ``class_id``, its pattern compiled for Python."""

    id: str = ""
    class_id: str = ""
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:resourceClassAction:{self.id}"


@dataclass(frozen=True)
class AclRule(held.AclRule):
    """An ACL rule of the action ``action_id``."""

    id: str = ""
    action_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:aclRule:{self.id}"


@dataclass(frozen=True)
class ServiceResource(held.ServiceResource):
    """A service resource of the resource class ``class_id``."""

    id: str = ""
    class_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:serviceResource:{self.id}"


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
class Task(held.Task):
    """A task created through ``POST /api/tasksList/{org}``, in the org ``org_id``."""

    id: str = ""
    org_id: str = ""
    #: The id of the user who created it (the task's ``User`` unless the client named one).
    creator_id: str = ""

    @property
    def urn(self) -> str:
        """The object's vCloud URN."""
        return f"urn:vcloud:task:{self.id}"


@dataclass(frozen=True)
class Event(held.Event):
    """An event posted to ``POST /api/admin/org/{id}/events``."""

    org_id: str = ""
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
