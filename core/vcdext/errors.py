"""Every error vcdext raises, under one root.

::

    VcdExtError
    ├── HTTPError                      becomes a vCD ``Error`` reply with its status
    │   ├── BadRequest                 400 BAD_REQUEST
    │   ├── Forbidden                  403 ACCESS_TO_RESOURCE_IS_FORBIDDEN
    │   ├── NotFound                   404 RESOURCE_NOT_FOUND
    │   ├── MethodNotAllowed           405 METHOD_NOT_ALLOWED
    │   ├── NotAcceptable              406 NOT_ACCEPTABLE
    │   ├── Conflict                   409 DUPLICATE_NAME
    │   ├── UnsupportedMediaType       415 UNSUPPORTED_MEDIA_TYPE
    │   ├── InternalServerError        500 INTERNAL_SERVER_ERROR
    │   ├── NotImplementedHTTP         501 NOT_IMPLEMENTED
    │   └── ServiceUnavailable         503 SERVICE_UNAVAILABLE
    ├── ConfigError                    a bad setting; names the key and where it came from
    ├── PluginError                    a plugin could not be loaded or declared something invalid
    │   └── DeclarationConflict        two plugins declared the same thing
    └── ProtocolError                  a message that is not a vCD extension request

Handlers raise :class:`HTTPError` subclasses to answer with an error; any other exception
becomes a 500 whose message carries the request id, with the traceback in the log only.
"""

from __future__ import annotations

from collections.abc import Mapping


class VcdExtError(Exception):
    """Root of every error raised by vcdext."""


class HTTPError(VcdExtError):
    """An error answer to a request: an HTTP status and a vCD ``minorErrorCode``.

    :param message: one line for the client (never a secret, never a traceback).
    :param headers: extra reply headers (for example ``Allow`` on a 405).
    """

    status: int = 500
    minor_code: str = "INTERNAL_SERVER_ERROR"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        minor_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if minor_code is not None:
            self.minor_code = minor_code
        self.message = message or self.default_message()
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    def default_message(self) -> str:
        return self.minor_code.replace("_", " ").capitalize()


class BadRequest(HTTPError):
    status, minor_code = 400, "BAD_REQUEST"


class Forbidden(HTTPError):
    status, minor_code = 403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN"


class NotFound(HTTPError):
    status, minor_code = 404, "RESOURCE_NOT_FOUND"


class MethodNotAllowed(HTTPError):
    status, minor_code = 405, "METHOD_NOT_ALLOWED"


class NotAcceptable(HTTPError):
    status, minor_code = 406, "NOT_ACCEPTABLE"


class Conflict(HTTPError):
    status, minor_code = 409, "DUPLICATE_NAME"


class PayloadTooLarge(HTTPError):
    status, minor_code = 413, "REQUEST_ENTITY_TOO_LARGE"


class UnsupportedMediaType(HTTPError):
    status, minor_code = 415, "UNSUPPORTED_MEDIA_TYPE"


class InternalServerError(HTTPError):
    status, minor_code = 500, "INTERNAL_SERVER_ERROR"


class NotImplementedHTTP(HTTPError):
    status, minor_code = 501, "NOT_IMPLEMENTED"


class ServiceUnavailable(HTTPError):
    status, minor_code = 503, "SERVICE_UNAVAILABLE"


class ConfigError(VcdExtError):
    """A setting is missing, unknown or of the wrong type.

    The message always names the key and its source (a file path or an environment variable).
    """

    def __init__(self, key: str, source: str, problem: str) -> None:
        self.key, self.source, self.problem = key, source, problem
        super().__init__(f"{source}: {key}: {problem}")


class PluginError(VcdExtError):
    """A plugin failed to load or declared something invalid; names the plugin."""

    def __init__(self, plugin: str, problem: str) -> None:
        self.plugin, self.problem = plugin, problem
        super().__init__(f"plugin {plugin!r}: {problem}")


class DeclarationConflict(PluginError):
    """Two plugins declared the same operation, namespace or routing key."""

    def __init__(self, plugin: str, other: str, what: str) -> None:
        self.other = other
        super().__init__(plugin, f"{what} is already declared by plugin {other!r}")


class ProtocolError(VcdExtError):
    """A message that cannot be read as a vCD extension request."""
