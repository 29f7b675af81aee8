"""Binding plugin declarations into services, checking conflicts, then freezing.

Each plugin gets its own :class:`Registrar` during the ``vcdext_register`` hook. When every
plugin has registered, :func:`build_registry` checks the declarations against each other and
returns an immutable :class:`Registry`; registrars refuse further calls from then on.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .acl import ResourceClass
from .context import PluginState
from .errors import DeclarationConflict, PluginError
from .notifications import (
    BlockingDeclaration,
    BlockingHandler,
    NotificationDeclaration,
    NotificationHandler,
    make_blocking,
    make_notification,
)
from .operations import (
    Handler,
    HTTPMethod,
    Operation,
    Right,
    ServiceLink,
    declared_operations,
    make_operation,
    signature_problem,
)

if TYPE_CHECKING:
    from .service import Service as ServiceDeclaration

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


@dataclass(frozen=True)
class RegisteredService:
    """One vCD extension service, as a plugin declared it (after config overrides), frozen.

    (What a plugin builds is a :class:`vcdext.Service`; this is what the runtime made of it.)
    """

    plugin: str
    name: str
    namespace: str
    routing_key: str
    vendor: str = ""
    description: str = ""
    priority: int = 50
    operations: tuple[Operation, ...] = ()
    links: tuple[ServiceLink, ...] = ()
    rights: tuple[Right, ...] = ()
    #: vCD authorization framework resource classes (ACL principals as full right names).
    resource_classes: tuple[ResourceClass, ...] = ()

    @property
    def api_filters(self) -> tuple[str, ...]:
        """The ``UrlPattern`` of each API filter, one per distinct path template, sorted."""
        return tuple(sorted({op.path.url_pattern for op in self.operations}))


#: Kept for the modules that name the frozen record by its old name.
Service = RegisteredService


class Registrar:
    """What a plugin uses to declare its service inside ``vcdext_register``.

    Hand it a :class:`vcdext.Service` with :meth:`add_service`, or declare step by step: the
    service first with :meth:`service`, then its operations, links and rights.
    ``registrar.config`` is the plugin's ``[plugins.<name>]`` table; ``registrar.state`` its
    :class:`vcdext.PluginState` for this runtime (handlers see both on ``vcdext.current()``).
    """

    def __init__(self, plugin: str, config: Mapping[str, Any]) -> None:
        self.plugin = plugin
        self.config: Mapping[str, Any] = MappingProxyType(dict(config))
        self.state = PluginState()
        self._service: dict[str, Any] | None = None
        self._operations: list[Operation] = []
        self._links: list[ServiceLink] = []
        self._rights: dict[str, Right] = {}
        self._resource_classes: list[ResourceClass] = []
        self._notifications: list[NotificationDeclaration] = []
        self._blocking: list[BlockingDeclaration] = []
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise PluginError(self.plugin, "declarations are closed once the runtime has started")

    def _fail(self, problem: str) -> PluginError:
        return PluginError(self.plugin, problem)

    def _namespace(self) -> str:
        if self._service is None:
            raise self._fail("call registrar.service(...) before declaring anything else")
        namespace: str = self._service["namespace"]
        return namespace

    def service(
        self,
        *,
        name: str,
        namespace: str,
        vendor: str = "",
        description: str = "",
        priority: int = 50,
        routing_key: str | None = None,
    ) -> None:
        """Declare the vCD extension service this plugin is.

        :param name: the service name shown in vCD.
        :param namespace: unique across vCD (reverse-DNS style); it prefixes the rights and
            names the localization bundle. It cannot change once registered.
        :param routing_key: AMQP routing key; defaults to the namespace and can be overridden
            by the operator with ``[plugins.<name>] routing_key``.
        :param priority: vCD's priority, 0-100 (50 is neutral).
        """
        self._check_open()
        if self._service is not None:
            raise self._fail("registrar.service(...) may be called only once")
        if not name.strip():
            raise self._fail("the service needs a name")
        if not _NAMESPACE.fullmatch(namespace) or namespace.startswith("com.vmware.vcloud"):
            raise self._fail(
                f"namespace {namespace!r} must be 1-128 letters, digits, '.', '_' or '-' "
                "and must not start with com.vmware.vcloud"
            )
        if not 0 <= priority <= 100:
            raise self._fail(f"priority must be between 0 and 100, got {priority}")
        key = self.config.get("routing_key", routing_key or namespace)
        if not isinstance(key, str) or not key:
            raise self._fail(f"[plugins.{self.plugin}] routing_key must be a non-empty string")
        self._service = {
            "name": name,
            "namespace": namespace,
            "vendor": vendor,
            "description": description,
            "priority": priority,
            "routing_key": key,
        }

    def add_service(self, service: ServiceDeclaration) -> None:
        """Declare the service, rights, operations and links a :class:`vcdext.Service` recorded."""
        self._check_open()
        service._replay(
            self.service,
            self.add_right,
            self._add_declared,
            self.add_link,
            self.add_resource_class,
        )
        self._notifications.extend(replace(d, plugin=self.plugin) for d in service._notifications)
        for declared in service._blocking:
            self._add_blocking(declared)

    def add_notification(
        self, type: str, handler: NotificationHandler, *, success: bool | None = None
    ) -> None:
        """Handle notifications of ``type`` (see :meth:`vcdext.Service.notification`)."""
        self._check_open()
        try:
            declared = make_notification(type, handler, success=success)
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        self._notifications.append(replace(declared, plugin=self.plugin))

    def add_blocking_task(self, operation: str, handler: BlockingHandler) -> None:
        """Decide blocked tasks of ``operation`` (see :meth:`vcdext.Service.blocking_task`)."""
        self._check_open()
        try:
            declared = make_blocking(operation, handler)
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        self._add_blocking(declared)

    def _add_blocking(self, declared: BlockingDeclaration) -> None:
        if any(b.operation == declared.operation for b in self._blocking):
            raise self._fail(f"blocking task {declared.operation!r} is declared twice")
        self._blocking.append(replace(declared, plugin=self.plugin))

    def add_operations(self, *sources: Any) -> None:
        """Add every ``@operation``-decorated function among ``sources``.

        A source is a decorated function, or a module/class/object whose attributes are
        scanned. Of a module, only the functions it defines count, not ones it imported.
        """
        self._check_open()
        self._namespace()
        found = 0
        for source in sources:
            if callable(source) and declared_operations(source):
                candidates: Iterable[Any] = [source]
            else:
                names = sorted(n for n in dir(source) if not n.startswith("_"))
                candidates = [getattr(source, n) for n in names]
                if inspect.ismodule(source):
                    candidates = [
                        c for c in candidates if getattr(c, "__module__", None) == source.__name__
                    ]
            for obj in candidates:
                for op in declared_operations(obj):
                    self._add_declared(op)
                    found += 1
        if sources and not found:
            raise self._fail("add_operations() found no @operation-decorated function")

    def add_operation(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        rights: tuple[str, ...] | list[str] = (),
        consumes: tuple[str, ...] | list[str] = (),
        produces: tuple[str, ...] | list[str] = ("application/xml",),
        name: str | None = None,
        same_org: str | None = None,
        admin_only: bool = False,
        idempotent: bool | None = None,
        inline: bool = False,
    ) -> None:
        """Add one operation without the decorator (same arguments as ``@operation``)."""
        self._check_open()
        self._namespace()
        try:
            op = make_operation(
                method,
                path,
                handler=handler,
                rights=rights,
                consumes=consumes,
                produces=produces,
                name=name,
                same_org=same_org,
                admin_only=admin_only,
                idempotent=idempotent,
                inline=inline,
            )
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        self._add_declared(op)

    def _add_declared(self, op: Operation) -> None:
        self._namespace()
        problem = signature_problem(op)
        if problem is not None:
            raise self._fail(f"operation {op}: {problem}")
        for other in self._operations:
            if other.method == op.method and other.path.shape == op.path.shape:
                raise self._fail(f"operation {op} is declared twice")
        self._operations.append(replace(op, plugin=self.plugin))

    def add_link(
        self,
        *,
        rel: str,
        href: str,
        mime_type: str,
        resource_type: str,
        resource_id: str | None = None,
        external_id: str | None = None,
    ) -> None:
        """Ask vCD to add a link to representations of ``resource_type``.

        ``href`` may use ``{baseUri}`` and ``{resourceId}``.
        """
        self._check_open()
        self._namespace()
        for value, what in (
            (rel, "rel"),
            (href, "href"),
            (mime_type, "mime_type"),
            (resource_type, "resource_type"),
        ):
            if not value or len(value) > 255:
                raise self._fail(f"service link {what} must be 1-255 characters")
        link = ServiceLink(
            rel, href, mime_type, resource_type, resource_id, external_id, plugin=self.plugin
        )
        if link in self._links:
            raise self._fail(f"service link {rel} → {href} is declared twice")
        self._links.append(link)

    def add_right(
        self, name: str, *, description: str = "", category: str = "", bundle_key: str = ""
    ) -> str:
        """Declare a right; returns its full vCD name ``{namespace}:name``."""
        self._check_open()
        namespace = self._namespace()
        if not name.strip() or ":" in name:
            raise self._fail(f"right name {name!r} must be non-empty and contain no ':'")
        if name in self._rights:
            raise self._fail(f"right {name!r} is declared twice")
        right = Right(name, namespace, description, category, bundle_key)
        self._rights[name] = right
        return right.full_name

    def add_resource_class(self, resource_class: ResourceClass) -> None:
        """Declare a resource class of vCD's authorization framework (:mod:`vcdext.acl`).

        An ACL rule's principal right given short must be one this plugin declares."""
        self._check_open()
        self._namespace()
        if any(c.name == resource_class.name for c in self._resource_classes):
            raise self._fail(f"resource class {resource_class.name!r} is declared twice")
        self._resource_classes.append(resource_class)

    def _build(self) -> RegisteredService | None:
        self._closed = True
        if self._service is None:
            if self._operations or self._links or self._rights or self._resource_classes:
                raise self._fail("declares operations but no service")
            return None
        operations = tuple(
            replace(op, rights=tuple(self._full_right(op, r) for r in op.rights))
            for op in self._operations
        )
        return RegisteredService(
            plugin=self.plugin,
            operations=operations,
            links=tuple(self._links),
            rights=tuple(self._rights.values()),
            resource_classes=tuple(
                c.expand_rights(self._acl_right) for c in self._resource_classes
            ),
            **self._service,
        )

    def _acl_right(self, right: str) -> str:
        if right in self._rights:
            return self._rights[right].full_name
        if ":" in right:
            return right
        declared = ", ".join(repr(r) for r in self._rights) or "none"
        raise self._fail(
            f"an ACL rule names right {right!r}, which this plugin does not declare "
            f"(declared: {declared}); declare it or give its full name '{{namespace}}:Name'"
        )

    def _full_right(self, op: Operation, right: str) -> str:
        if right in self._rights:
            return self._rights[right].full_name
        if ":" in right:  # {namespace}:Name of another service, vCD's "vApp: View", a URN
            return right
        declared = ", ".join(repr(r) for r in self._rights) or "none"
        raise self._fail(
            f"operation {op} requires right {right!r}, which this plugin does not declare "
            f"(declared: {declared}); declare it (add_right / service.right) or give another "
            "service's right by its full name '{namespace}:Name'"
        )


@dataclass(frozen=True)
class Registry:
    """Every enabled service, frozen. ``services`` maps plugin name → its
    :class:`RegisteredService`; ``states`` and ``configs`` each plugin's :class:`PluginState`
    and ``[plugins.<name>]`` table."""

    services: Mapping[str, RegisteredService] = field(default_factory=dict)
    states: Mapping[str, PluginState] = field(default_factory=dict)
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Every plugin's notification and blocking-task handlers, in load order.
    notifications: tuple[NotificationDeclaration, ...] = ()
    blocking_tasks: tuple[BlockingDeclaration, ...] = ()

    def state_of(self, plugin: str) -> PluginState:
        """The plugin's state for this runtime (for lifecycle hooks); KeyError if unknown."""
        return self.states[plugin]


def build_registry(
    plugins: Iterable[tuple[str, Callable[[Registrar], None]]],
    options: Callable[[str], Mapping[str, Any]],
    *,
    on_error: Callable[[str, PluginError], None] | None = None,
) -> Registry:
    """Run each plugin's registration and check the services against each other.

    :param plugins: ``(plugin name, callable taking its Registrar)`` in load order.
    :param options: returns the ``[plugins.<name>]`` table of a plugin.
    :param on_error: called with a plugin whose own declarations are invalid (it is then left
        out); it may raise to stop start-up. ``None``: raise. Conflicts between two plugins
        always raise :class:`DeclarationConflict`.
    """
    services: dict[str, RegisteredService] = {}
    states: dict[str, PluginState] = {}
    configs: dict[str, Mapping[str, Any]] = {}
    notifications: list[NotificationDeclaration] = []
    blocking: dict[str, BlockingDeclaration] = {}
    for plugin, register in plugins:
        registrar = Registrar(plugin, options(plugin))
        try:
            try:
                register(registrar)
            except PluginError:
                raise
            except Exception as exc:  # a plugin bug: name the plugin, keep the cause
                raise PluginError(plugin, f"vcdext_register failed: {exc!r}") from exc
            service = registrar._build()
        except PluginError as exc:
            registrar._closed = True
            if on_error is None:
                raise
            on_error(plugin, exc)
            continue
        states[plugin], configs[plugin] = registrar.state, registrar.config
        if service is not None:
            _check_conflicts(service, services.values())
            services[plugin] = service
        notifications.extend(registrar._notifications)
        for declared in registrar._blocking:
            other = blocking.get(declared.operation)
            if other is not None:
                raise DeclarationConflict(
                    plugin, other.plugin, f"blocking task {declared.operation!r}"
                )
            blocking[declared.operation] = declared
    return Registry(
        types.MappingProxyType(services),
        types.MappingProxyType(states),
        types.MappingProxyType(configs),
        tuple(notifications),
        tuple(blocking.values()),
    )


def _check_conflicts(new: RegisteredService, existing: Iterable[RegisteredService]) -> None:
    for old in existing:
        if old.namespace == new.namespace:
            raise DeclarationConflict(new.plugin, old.plugin, f"namespace {new.namespace!r}")
        if old.name == new.name:
            raise DeclarationConflict(new.plugin, old.plugin, f"service name {new.name!r}")
        if old.routing_key == new.routing_key:
            raise DeclarationConflict(new.plugin, old.plugin, f"routing key {new.routing_key!r}")
        for op in new.operations:
            for other in old.operations:
                if op.method == other.method and op.path.shape == other.path.shape:
                    raise DeclarationConflict(new.plugin, old.plugin, f"operation {op}")
        for link in new.links:
            if any(
                (link.rel, link.resource_type, link.resource_id)
                == (o.rel, o.resource_type, o.resource_id)
                for o in old.links
            ):
                raise DeclarationConflict(
                    new.plugin, old.plugin, f"service link rel={link.rel!r} on {link.resource_type}"
                )


__all__ = [
    "HTTPMethod",
    "RegisteredService",
    "Registrar",
    "Registry",
    "Service",
    "build_registry",
]
