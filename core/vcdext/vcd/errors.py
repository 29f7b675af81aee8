"""Errors of the vCD REST client; all derive from :class:`vcdext.VcdExtError`.

::

    VcdError
    ├── VcdApiError          vCD answered with an error status (its ``Error`` body, parsed)
    ├── VcdConnectionError   no answer: connection refused, DNS, TLS, timeout
    ├── VcdLoginError        cannot log in (names the URL and user, never the password)
    └── VcdVersionError      no vCloud API version both sides support

Messages are one line and never contain a password or a token.
"""

from __future__ import annotations

from ..errors import VcdExtError


class VcdError(VcdExtError):
    """Root of the vCD client's errors."""


class VcdApiError(VcdError):
    """vCD answered ``method url`` with an error status.

    :ivar status: the HTTP status (vCD's ``majorErrorCode``).
    :ivar minor_code: vCD's ``minorErrorCode`` (e.g. ``BAD_REQUEST``), ``""`` without a body.
    :ivar message: vCD's ``message``, else the HTTP reason phrase.
    :ivar request_id: the ``X-VMWARE-VCLOUD-REQUEST-ID`` header, to grep vCD's logs with.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status: int,
        minor_code: str = "",
        message: str = "",
        request_id: str = "",
    ) -> None:
        self.method, self.url, self.status = method, url, status
        self.minor_code, self.message, self.request_id = minor_code, message, request_id
        text = f"{method} {url}: {status}"
        if minor_code:
            text += f" {minor_code}"
        if message:
            text += f": {message}"
        if request_id:
            text += f" (vCD request id {request_id})"
        super().__init__(text)


class VcdConnectionError(VcdError):
    """No HTTP answer from vCD (refused, unresolvable, TLS failure, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"cannot reach {url}: {reason}")


class VcdLoginError(VcdError):
    """Login failed: ``cannot log in to <url> as <user>@<org>: <reason>``."""

    def __init__(self, url: str, user: str, reason: str) -> None:
        self.url, self.user, self.reason = url, user, reason
        super().__init__(f"cannot log in to {url} as {user}: {reason}")


class VcdVersionError(VcdError):
    """The server and vcdext have no vCloud API version in common (or the server is too old)."""


__all__ = ["VcdApiError", "VcdConnectionError", "VcdError", "VcdLoginError", "VcdVersionError"]
