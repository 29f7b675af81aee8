"""The one-step way to declare a service: a :class:`Service` whose decorator records each
operation once (as Flask blueprints and nameko services do).

::

    service = Service("hello", namespace="io.example.hello", vendor="Example")

    @service.operation("GET", "/api/hello")
    def hello(request: Request) -> str:
        return "<Hello/>"

    @hookimpl
    def vcdext_register(registrar: Registrar) -> None:
        registrar.add_service(service)

The object only records; nothing is bound until a runtime's registrar replays it, so one
module-level ``Service`` serves any number of runtimes. Invalid arguments raise
:class:`ValueError` when the module is imported, so the plugin is reported as failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .acl import ResourceAction, ResourceClass
from .notifications import (
    BlockingDeclaration,
    NotificationDeclaration,
    check_operation,
    make_blocking,
    make_notification,
)
from .operations import Operation, Right, make_operation
from .vcloud.notification import check_type

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Info:
    name: str
    namespace: str
    vendor: str
    description: str
    priority: int
    routing_key: str | None


class Service:
    """A vCD extension service and everything it declares: operations, rights, links.

    :param name: the service name shown in vCD.
    :param namespace: unique across vCD (reverse-DNS style); it prefixes the rights and
        names the localization bundle.
    The other parameters are those of :meth:`vcdext.Registrar.service`.
    """

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        vendor: str = "",
        description: str = "",
        priority: int = 50,
        routing_key: str | None = None,
    ) -> None:
        self._info = _Info(name, namespace, vendor, description, priority, routing_key)
        self._operations: list[Operation] = []
        self._rights: list[tuple[str, dict[str, str]]] = []
        self._links: list[dict[str, str | None]] = []
        self._resource_classes: list[ResourceClass] = []
        self._notifications: list[NotificationDeclaration] = []
        self._blocking: list[BlockingDeclaration] = []

    def __repr__(self) -> str:
        return f"Service({self._info.name!r}, namespace={self._info.namespace!r})"

    @property
    def name(self) -> str:
        """The service name shown in vCD."""
        return self._info.name

    @property
    def namespace(self) -> str:
        """The service's namespace (prefix of its rights)."""
        return self._info.namespace

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The operations declared so far, in order."""
        return tuple(self._operations)

    def operation(
        self,
        method: str,
        path: str,
        *,
        rights: tuple[str, ...] | list[str] = (),
        consumes: tuple[str, ...] | list[str] = (),
        produces: tuple[str, ...] | list[str] = ("application/xml",),
        name: str | None = None,
        same_org: str | None = None,
        admin_only: bool = False,
        idempotent: bool | None = None,
        inline: bool = False,
    ) -> Callable[[F], F]:
        """Declare that the decorated function answers ``method path`` for this service.

        Same arguments as :func:`vcdext.operation`; the function is returned unchanged.
        ``same_org="org_id"`` refuses (403) callers whose organization is not the one in
        the ``{org_id}`` path segment, unless they are System administrators;
        ``admin_only=True`` refuses everyone but System administrators.
        """

        declared = make_operation(
            method,
            path,
            rights=rights,
            consumes=consumes,
            produces=produces,
            name=name,
            same_org=same_org,
            admin_only=admin_only,
            idempotent=idempotent,
            inline=inline,
        )

        def decorate(func: F) -> F:
            self._operations.append(
                replace(declared, handler=func, name=declared.name or func.__name__)
            )
            return func

        return decorate

    def notification(
        self, type: str, *, success: bool | None = None, name: str | None = None
    ) -> Callable[[F], F]:
        """Declare that the decorated function handles notifications of ``type``
        (``com/vmware/vcloud/event/vapp/create``); ``success=True``/``False``: only those of
        successful/failed operations. It receives a :class:`vcdext.Notification`; the
        notification is acknowledged once it returns (at-least-once: it may see one twice)."""
        check_type(type)

        def decorate(func: F) -> F:
            self._notifications.append(
                make_notification(type, func, success=success, name=name or "")
            )
            return func

        return decorate

    def blocking_task(self, operation: str, *, name: str | None = None) -> Callable[[F], F]:
        """Declare that the decorated function decides blocked tasks of ``operation``
        (``vappDeploy``): it receives a :class:`vcdext.BlockingRequest` and returns ``None`` or
        a :class:`vcdext.Decision` (see :mod:`vcdext.notifications`)."""
        check_operation(operation)

        def decorate(func: F) -> F:
            self._blocking.append(make_blocking(operation, func, name=name or ""))
            return func

        return decorate

    def right(
        self, name: str, *, description: str = "", category: str = "", bundle_key: str = ""
    ) -> str:
        """Declare a right; returns its full vCD name ``{namespace}:name``.

        Operations may name it short (``rights=["View Backups"]``) or by the returned name.
        """
        if not name.strip() or ":" in name:
            raise ValueError(f"right name {name!r} must be non-empty and contain no ':'")
        if any(n == name for n, _ in self._rights):
            raise ValueError(f"right {name!r} is declared twice")
        options = {"description": description, "category": category, "bundle_key": bundle_key}
        self._rights.append((name, options))
        return Right(name, self._info.namespace).full_name

    def link(
        self,
        *,
        rel: str,
        href: str,
        mime_type: str,
        resource_type: str,
        resource_id: str | None = None,
        external_id: str | None = None,
    ) -> None:
        """Ask vCD to add a link to representations of ``resource_type`` (see
        :meth:`vcdext.Registrar.add_link`)."""
        self._links.append(
            {
                "rel": rel,
                "href": href,
                "mime_type": mime_type,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "external_id": external_id,
            }
        )

    def resource_class(
        self,
        name: str,
        *,
        actions: list[ResourceAction] | tuple[ResourceAction, ...],
        mime_type: str = "",
        url_template: str = "",
        nid: str = "",
        urn_pattern: str = "",
    ) -> ResourceClass:
        """Declare a resource class of vCD's authorization framework, with its actions and
        their ACL rules (see :mod:`vcdext.acl`). Registration creates it and turns the
        service's ``AuthorizationEnabled`` on."""
        declared = ResourceClass(name, mime_type, url_template, nid, urn_pattern, tuple(actions))
        if any(c.name == name for c in self._resource_classes):
            raise ValueError(f"resource class {name!r} is declared twice")
        self._resource_classes.append(declared)
        return declared

    def _replay(
        self,
        declare_service: Callable[..., None],
        add_right: Callable[..., str],
        add: Callable[[Operation], None],
        add_link: Callable[..., None],
        add_resource_class: Callable[[ResourceClass], None] | None = None,
    ) -> None:
        info = self._info
        declare_service(
            name=info.name,
            namespace=info.namespace,
            vendor=info.vendor,
            description=info.description,
            priority=info.priority,
            routing_key=info.routing_key,
        )
        for right, options in self._rights:
            add_right(right, **options)
        for op in self._operations:
            add(op)
        for link in self._links:
            add_link(**link)
        for resource_class in self._resource_classes:
            if add_resource_class is None:  # pragma: no cover - the registrar always passes it
                raise ValueError("this registrar does not take resource classes")
            add_resource_class(resource_class)


__all__ = ["Service"]
