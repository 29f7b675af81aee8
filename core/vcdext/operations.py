"""Declarations a plugin makes: operations, service links and rights.

``@operation`` only records metadata on the function and returns it unchanged; the core binds
the declarations when the plugin registers (see :class:`vcdext.Registrar`).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .paths import PathTemplate, parse_template

#: Attribute under which ``@operation`` stores its declarations on a function.
_ATTR = "__vcdext_operations__"

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[..., Any]


class HTTPMethod(enum.StrEnum):
    """The methods vCD forwards to extension services."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


@dataclass(frozen=True)
class Operation:
    """One operation: a method and path template answered by a handler.

    ``rights`` are all required (deny by default). A name declared by the same plugin with
    :meth:`Registrar.add_right` may be given short (``"View Backups"``); it is expanded to
    vCD's full right name ``{namespace}:View Backups`` when the plugin registers. A name with
    a ``:`` is kept as written (another service's ``{namespace}:Name``, vCD's ``vApp: View``);
    a short name the plugin does not declare makes the plugin fail to load.

    ``same_org`` names a path parameter that must be the caller's own organization (its id or
    URN); anyone else but a System administrator is refused 403 before the handler runs.
    ``admin_only`` refuses (403) every caller outside vCD's ``System`` organization.
    """

    method: HTTPMethod
    path: PathTemplate
    handler: Handler | None = field(default=None, compare=False)
    rights: tuple[str, ...] = ()
    #: Media types accepted in a request body (empty: any).
    consumes: tuple[str, ...] = ()
    #: Media types of the response, negotiated against ``Accept``; the client's preferred one
    #: is the default ``Content-Type``. ``*/*``: any (the handler sets the type).
    produces: tuple[str, ...] = ("application/xml",)
    name: str = ""
    #: Path parameter that must name the caller's organization (tenant isolation).
    same_org: str | None = None
    #: Only System administrators (callers of vCD's ``System`` org) may call it.
    admin_only: bool = False
    #: Running it twice does no harm, so a redelivered request simply runs again (its reply
    #: is not kept for reuse). Default: ``True`` for GET and HEAD, ``False`` otherwise.
    idempotent: bool = False
    #: The handler only computes (no I/O, no sleeping, no call to vCD) and returns within a
    #: millisecond or so: the AMQP transport runs it on its consumer thread instead of handing
    #: it to a worker thread and back. A handler that blocks stalls every request of the process
    #: and its heartbeats while it runs; the transport logs a warning when one takes long.
    inline: bool = False
    #: Name of the plugin that declared it (set on registration).
    plugin: str = ""

    def __str__(self) -> str:
        return f"{self.method} {self.path.template}"

    @property
    def is_open(self) -> bool:
        """Whether any authenticated caller may call it (no right, no scope required)."""
        return not self.rights and not self.admin_only and self.same_org is None


def make_operation(
    method: str,
    path: str,
    *,
    handler: Handler | None = None,
    rights: tuple[str, ...] | list[str] = (),
    consumes: tuple[str, ...] | list[str] = (),
    produces: tuple[str, ...] | list[str] = ("application/xml",),
    name: str | None = None,
    same_org: str | None = None,
    admin_only: bool = False,
    idempotent: bool | None = None,
    inline: bool = False,
) -> Operation:
    """Validate the parts of an operation; raises :class:`ValueError` naming the problem."""
    try:
        verb = HTTPMethod(method.upper())
    except ValueError:
        allowed = ", ".join(m.value for m in HTTPMethod)
        raise ValueError(f"unknown HTTP method {method!r} (allowed: {allowed})") from None
    for media in (*consumes, *produces):
        if "/" not in media:
            raise ValueError(f"{media!r} is not a media type (type/subtype)")
    if isinstance(rights, str):
        raise ValueError("rights must be a list of right names, not a string")
    if not produces:
        raise ValueError("produces needs at least one media type ('*/*' for any)")
    if not path.startswith("/api/") and path != "/api":
        raise ValueError(f"path {path!r} must start with /api/ (vCD forwards only /api/...)")
    template = parse_template(path)
    if same_org is not None and same_org not in template.params:
        raise ValueError(
            f"same_org={same_org!r} is not a parameter of {path!r} "
            f"(parameters: {', '.join(template.params) or 'none'})"
        )
    default_name = getattr(handler, "__name__", "") if handler is not None else ""
    return Operation(
        method=verb,
        path=template,
        handler=handler,
        rights=tuple(rights),
        consumes=tuple(c.lower() for c in consumes),
        produces=tuple(produces),
        name=name or default_name,
        same_org=same_org,
        admin_only=bool(admin_only),
        idempotent=verb in (HTTPMethod.GET, HTTPMethod.HEAD) if idempotent is None else idempotent,
        inline=bool(inline),
    )


def signature_problem(op: Operation) -> str | None:
    """Why ``op.handler(request, **path_params)`` can never be called, or ``None``.

    Checked when the plugin registers, so a handler whose arguments do not match its path
    template fails the plugin at load instead of answering 500 to every call.
    """
    if op.handler is None:
        return None
    try:
        signature = inspect.signature(op.handler)
    except (TypeError, ValueError):  # builtins and some callables cannot be inspected
        return None
    try:
        signature.bind(None, **dict.fromkeys(op.path.params, ""))
    except TypeError:
        pass
    else:
        return None
    params = signature.parameters
    shown = "{}({})".format(
        getattr(op.handler, "__name__", "handler"),
        ", ".join(
            {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(p.kind.name, "") + p.name
            for p in params.values()
        ),
    )
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [n for n in op.path.params if n not in params and not takes_kwargs]
    if unknown:
        return (
            f"handler {shown} does not take the path parameter(s) {', '.join(unknown)}; "
            "path parameters are passed as keyword arguments: name the handler's arguments "
            "after them (or rename the {…} in the path)"
        )
    return (
        f"handler {shown} cannot be called as handler(request, "
        f"{', '.join(f'{n}=…' for n in op.path.params)}): its other arguments need defaults"
    )


def operation(
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
    """Declare that the decorated function answers ``method path`` (the explicit form: list
    it in ``registrar.add_operations``; :meth:`vcdext.Service.operation` declares and binds in
    one step).

    The handler is called as ``handler(request, **path_params)`` and returns a
    :class:`vcdext.Response`, an lxml element, ``str``/``bytes``, a ``dict``/``list`` or a
    dataclass (JSON), or ``None`` (204). Decorators stack, so one function may answer several
    operations. Invalid arguments raise :class:`ValueError` at import time, so a broken plugin
    is reported when it loads.
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
        ops = list(getattr(func, _ATTR, ()))
        ops.append(declared)
        setattr(func, _ATTR, tuple(ops))
        return func

    return decorate


def declared_operations(obj: Any) -> tuple[Operation, ...]:
    """The operations recorded on ``obj`` by ``@operation``, bound to it as handler."""
    ops: tuple[Operation, ...] = getattr(obj, _ATTR, ())
    return tuple(replace(op, handler=obj, name=op.name or obj.__name__) for op in ops)


@dataclass(frozen=True)
class ServiceLink:
    """A link vCD adds to representations of ``resource_type`` (a vCD media type).

    ``href`` may contain ``{baseUri}`` and ``{resourceId}``, which vCD expands.
    """

    rel: str
    href: str
    mime_type: str
    resource_type: str
    resource_id: str | None = None
    external_id: str | None = None
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class Right:
    """A right the service registers with vCD; its full name is ``{namespace}:name``."""

    name: str
    namespace: str
    description: str = ""
    category: str = ""
    bundle_key: str = ""

    @property
    def full_name(self) -> str:
        return f"{{{self.namespace}}}:{self.name}"
