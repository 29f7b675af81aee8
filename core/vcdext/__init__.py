"""vcdext: write VMware vCloud Director extension services as plugins.

A plugin declares its service and operations; vcdext routes vCD's forwarded requests to them::

    from vcdext import Registrar, Request, Service, hookimpl

    service = Service("hello", namespace="io.example.hello", vendor="Example")

    @service.operation("GET", "/api/hello")
    def hello(request: Request) -> str:
        return "<Hello/>"

    @hookimpl
    def vcdext_register(registrar: Registrar) -> None:
        registrar.add_service(service)

Importing this package connects to nothing and loads no plugin.
"""

from __future__ import annotations

from .acl import Acl, ResourceAction, ResourceClass
from .app import Runtime, create_runtime
from .context import PluginState, RequestContext, current
from .errors import (
    BadRequest,
    ConfigError,
    Conflict,
    DeclarationConflict,
    Forbidden,
    HTTPError,
    InternalServerError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PluginError,
    ProtocolError,
    ServiceUnavailable,
    UnsupportedMediaType,
    VcdExtError,
)
from .markers import hookimpl
from .operations import HTTPMethod, Operation, operation
from .protocol import Headers, Request, Response, SecurityContext
from .registry import Registrar, Registry
from .service import Service
from .settings import Settings, load_settings

__all__ = [
    "Acl",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "DeclarationConflict",
    "Forbidden",
    "HTTPError",
    "HTTPMethod",
    "Headers",
    "InternalServerError",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "Operation",
    "PayloadTooLarge",
    "PluginError",
    "PluginState",
    "ProtocolError",
    "Registrar",
    "Registry",
    "Request",
    "RequestContext",
    "ResourceAction",
    "ResourceClass",
    "Response",
    "Runtime",
    "SecurityContext",
    "Service",
    "ServiceUnavailable",
    "Settings",
    "UnsupportedMediaType",
    "VcdExtError",
    "create_runtime",
    "current",
    "hookimpl",
    "load_settings",
    "operation",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("vcdext")
    raise AttributeError(f"module 'vcdext' has no attribute {name!r}")
