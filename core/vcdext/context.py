"""Per-request context, available to handlers and the code they call, and per-plugin state."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any, Protocol

from .errors import ServiceUnavailable
from .i18n import Localized, Translator, english
from .protocol import Request, SecurityContext
from .tasks import RunningTask, TaskRunner, VcdApi, Work
from .vcloud.model import Reference

#: The id of vCD's ``System`` organization: the same in every vCD installation. Its users are
#: System administrators.
SYSTEM_ORG_ID = "a93c9db9-7471-3192-8d09-a8f7eeda85f9"


class PluginState(SimpleNamespace):
    """A plugin's own attributes for one runtime, shared by its hooks and its handlers.

    Set attributes on it in ``vcdext_register`` (``registrar.state``) or in a lifecycle hook
    (``runtime.registry.state_of(name)``); handlers read it as ``vcdext.current().state``.
    One object per plugin per runtime, so two runtimes in one process (tests) never share it.
    """


def org_id(value: str) -> str:
    """The bare id of an organization given as a URN (``urn:vcloud:org:<id>``) or an id."""
    return value.strip().rsplit(":", 1)[-1].lower()


def is_system_admin(security: SecurityContext) -> bool:
    """Whether the caller belongs to vCD's ``System`` organization."""
    return org_id(security.org) == SYSTEM_ORG_ID


class Authorizer(Protocol):
    """vCD's authorization framework as handlers reach it (:mod:`vcdext.vcd.authorization`
    implements it against vCD once the runtime has registered)."""

    def is_authorized(self, plugin: str, user: str, method: str, url: str) -> bool:
        """vCD's authorization check for ``user`` (URN) sending ``method url``."""
        ...  # pragma: no cover - a protocol

    def add_resource(
        self, plugin: str, resource_class: str, name: str, *, org: str, external_id: str
    ) -> str:
        """Register a service resource of the plugin's ``resource_class``; its href."""
        ...  # pragma: no cover - a protocol


@dataclass(frozen=True)
class RequestContext(Localized):
    """What vcdext knows about the request being handled; ``gettext``, ``ngettext``,
    ``pgettext``, ``format_date``/``format_number`` and ``render`` work in :attr:`locale`."""

    request: Request
    #: Service (plugin) name the request was routed to.
    plugin: str
    #: Preferred locales from ``Accept-Language``, best first (never the process locale).
    locales: tuple[str, ...] = ()
    #: The plugin's catalog in the locale negotiated from :attr:`locales` (vcdext.i18n).
    translator: Translator = field(default_factory=english)
    #: ``time.monotonic()`` after which vCD has given up waiting (its extensibility.timeout).
    deadline: float = field(default_factory=lambda: time.monotonic() + 10.0)
    #: The media type negotiated from the operation's ``produces`` and the ``Accept`` header
    #: (the reply's default ``Content-Type``; ``*/*`` when the operation produces anything).
    content_type: str = ""
    #: The API version the client asked for (``version=`` in ``Accept``), or ``""``.
    api_version: str = ""
    #: The plugin's :class:`PluginState` for this runtime.
    state: PluginState = field(default_factory=PluginState)
    #: The plugin's ``[plugins.<name>]`` config table (read-only).
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: vCD's authorization framework (``None`` until the runtime registered with vCD).
    authorizer: Authorizer | None = field(default=None, repr=False, compare=False)
    #: The namespace of the service the request was routed to (its tasks' and events').
    namespace: str = ""
    #: The runtime's task runner (``None``: this context cannot start tasks).
    tasks: TaskRunner | None = field(default=None, repr=False)
    #: Tasks started while handling this request; the dispatcher launches them.
    started: list[RunningTask] = field(default_factory=list, repr=False)

    @property
    def wants_json(self) -> bool:
        """Whether the negotiated type is JSON (``application/json`` or ``…+json``)."""
        sub = self.content_type.split(";", 1)[0].strip().lower().rpartition("/")[2]
        return sub == "json" or sub.endswith("+json")

    @property
    def user(self) -> str:
        """The caller's user URN (``urn:vcloud:user:<uuid>``), as vCD sent it."""
        return self.request.security.user

    @property
    def org(self) -> str:
        """The caller's organization URN (``urn:vcloud:org:<uuid>``), as vCD sent it."""
        return self.request.security.org

    @property
    def rights(self) -> frozenset[str]:
        """The caller's rights as vCD listed them (right URNs or full names)."""
        return self.request.security.rights

    @property
    def is_system_admin(self) -> bool:
        """Whether the caller is a System administrator (a user of the ``System`` org)."""
        return is_system_admin(self.request.security)

    def _authorizer(self) -> Authorizer:
        if self.authorizer is None:
            raise ServiceUnavailable(
                "vCD's authorization framework is not available (the runtime has not "
                "registered with vCD)"
            )
        return self.authorizer

    def authorize(self, method: str, url: str) -> bool:
        """Whether vCD's authorization check lets the caller send ``method`` to ``url`` (a
        path such as ``/api/backup/42``), by the ACL rules of the plugin's resource classes.
        Answers are cached for a few seconds; 503 when vCD cannot be asked."""
        return self._authorizer().is_authorized(self.plugin, self.user, method.upper(), url)

    def add_service_resource(
        self, resource_class: str, name: str, *, external_id: str = "", org: str = ""
    ) -> str:
        """Register a service resource of the plugin's ``resource_class`` (owned by ``org``,
        default the caller's org; ``external_id`` is what the action patterns' ``(?<id>…)``
        captures, default ``name``). Returns its href."""
        return self._authorizer().add_resource(
            self.plugin,
            resource_class,
            name,
            org=org or self.org,
            external_id=external_id or name,
        )

    @property
    def remaining(self) -> float:
        """Seconds left before vCD stops waiting for the reply (may be negative)."""
        return self.deadline - time.monotonic()

    # -- vCD: tasks, events, reading ------------------------------------------------------

    def _runner(self) -> TaskRunner:
        if self.tasks is None:
            raise ServiceUnavailable("This runtime has no task runner (no vCD client)")
        return self.tasks

    @property
    def vcd(self) -> VcdApi:
        """The runtime's vCD client (logged in as ``[vcd]``'s user); 503 without ``vcd.url``."""
        return self._runner().vcd_api

    @property
    def caller_org_id(self) -> str:
        """The caller's organization id (without ``urn:vcloud:org:``)."""
        return org_id(self.request.security.org)

    def start_task(
        self,
        work: Work,
        *,
        operation_name: str,
        operation: str = "",
        owner: Reference | None = None,
        details: str | None = None,
        description: str = "",
        org: str | None = None,
        event: str | None = None,
        event_properties: Mapping[str, str] | None = None,
    ) -> RunningTask:
        """Create a vCD task for long work; return it from the handler (the reply is ``202``
        with the Task) and ``work(task)`` runs in the runtime's task pool once the handler has
        returned (see :mod:`vcdext.tasks`).

        :param operation_name: a short name, the localization key (``backupVApp``; vCD shows
            the ``backupVApp_PROGRESS`` text while the task runs).
        :param operation: free text shown as is.
        :param owner: the object the task is about (a vApp, say).
        :param org: the org whose task list gets the task (id or URN); the caller's by default.
        :param event: post this event when the task ends: ``event`` on success, ``FAILED.``
            + ``event`` otherwise (properties: ``event_properties``, ``taskId``, ``status``).
        :raises ServiceUnavailable: no ``vcd.url`` configured, or vCD did not create the task.
        """
        task = self._runner().start(
            work,
            namespace=self.namespace,
            org_id=org_id(org or self.request.security.org),
            user=self.request.security.user,
            operation_name=operation_name,
            operation=operation,
            owner=owner,
            details=details,
            description=description,
            event=event,
            event_properties=event_properties,
        )
        self.started.append(task)
        return task

    def post_event(
        self,
        *,
        type: str,
        success: bool = True,
        owner: Reference | None = None,
        properties: Mapping[str, str] | None = None,
        org: str | None = None,
    ) -> None:
        """``POST`` a vCD ``Event`` (of this service's namespace, belonging to the caller) to
        the org's events (the caller's org by default).

        :param type: the event type, a localization key (``backupComplete``).
        :raises ServiceUnavailable: no ``vcd.url`` configured, or vCD did not take it.
        """
        self._runner().post_event(
            namespace=self.namespace,
            org_id=org_id(org or self.request.security.org),
            user=self.request.security.user,
            type=type,
            success=success,
            owner=owner,
            properties=properties,
        )


_current: ContextVar[RequestContext] = ContextVar("vcdext_request_context")


def current() -> RequestContext:
    """The context of the request being handled; raises :class:`RuntimeError` outside one."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no vcdext request is being handled in this context") from None


def parse_accept_language(value: str) -> tuple[str, ...]:
    """Locale tags from an ``Accept-Language`` header, by descending quality (remembered per
    distinct header, in a bounded cache)."""
    if len(value) > 256:  # long headers are not kept: the cache stays small
        return _parse_accept_language.__wrapped__(value)
    return _parse_accept_language(value)


@functools.lru_cache(maxsize=512)
def _parse_accept_language(value: str) -> tuple[str, ...]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag.replace("-", "_")))
    return tuple(tag for _, _, tag in sorted(weighted))
