"""HTTP plumbing of the cell: the request/answer objects, routing table, Accept negotiation.

Nothing here knows vCD resources; :mod:`.server` wires the routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from vcdext import xml as _xml
from vcdext.errors import HTTPError, MethodNotAllowed, NotAcceptable, NotFound
from vcdext.paths import PathTemplate, parse_template
from vcdext.protocol import Headers
from vcdext.vcloud.accept import preferred_family
from vcdext.vcloud.error import cloudapi_error_json, error_document
from vcdext.vcloud.versions import SUPPORTED_VERSIONS, accept_versions, supported

from .model import Session
from .views import Urls

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


@dataclass
class Call:
    """One HTTP request as the routes see it."""

    method: str
    path: str
    query_string: str
    headers: Headers
    body: bytes
    urls: Urls
    client: tuple[str, int] = ("127.0.0.1", 0)
    local: tuple[str, int] = ("127.0.0.1", 0)
    #: The API version the client asked for in ``Accept`` (``""`` before negotiation).
    version: str = ""
    session: Session | None = None
    request_id: str = ""

    @property
    def content_type(self) -> str:
        """The request's media type without parameters, lower-case."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


@dataclass
class Answer:
    """What the cell sends back. ``content_type`` is a bare media type; the negotiated
    ``version`` parameter is appended when the answer is written."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Append ``;version=`` to the content type (off for forwarded replies).
    versioned: bool = True


def xml_answer(element: etree._Element, mime: str, status: int = 200) -> Answer:
    """An answer carrying ``element`` as an XML document of media type ``mime``."""
    return Answer(status, _xml.tostring(element), mime)


def json_answer(doc: Any, status: int = 200, mime: str = "application/json") -> Answer:
    """An answer carrying ``doc`` as JSON."""
    return Answer(status, json.dumps(doc).encode("utf-8"), mime)


def error_answer(exc: HTTPError, *, as_json: bool = False, accept: str = "") -> Answer:
    """A vCD ``Error`` document for ``exc``: the cloudapi's JSON error with ``as_json``, else
    the ``/api`` Error in the family the client prefers (``accept``): JSON for
    ``application/*+json`` clients, XML otherwise, as vCD answers."""
    if as_json:
        answer = json_answer(cloudapi_error_json(exc.minor_code, exc.message), exc.status)
    else:
        json_family = preferred_family(accept) == "json"
        ctype, body = error_document(exc.status, exc.minor_code, exc.message, as_json=json_family)
        answer = Answer(exc.status, body, ctype)
    answer.headers.update(exc.headers)
    return answer


def requested_version(accept: str) -> str:
    """The ``version`` parameter of the ``Accept`` header; 406 if missing or unsupported.

    Any media range is accepted (``application/*+xml``, an exact vCD type, JSON): only the
    version matters, as in vCD.
    """
    versions = accept_versions(accept)
    if not versions:
        raise NotAcceptable(
            "The request has invalid accept header: no API version; send for example "
            f"'Accept: application/*+xml;version={SUPPORTED_VERSIONS[-1]}'"
        )
    for version in versions:
        listed = supported(version)
        if listed is not None:
            return listed
    raise NotAcceptable(
        f"The request has invalid accept header: API version {versions[0]} is not supported "
        f"(supported: {', '.join(SUPPORTED_VERSIONS)})"
    )


def base_url(host_header: str | None, fallback: str) -> str:
    """The base URL hrefs are built on: the client's ``Host`` if well formed, else ours."""
    if host_header and _HOST.fullmatch(host_header.strip()):
        return f"http://{host_header.strip()}"
    return fallback


Handler = Callable[..., Answer]


class Router:
    """Method + path template → handler, in the runtime's template syntax
    (:mod:`vcdext.paths`: ``/api/org/{id}``, ``/api/vApp/vapp-{id}``).

    A trailing ``/`` on a request path is ignored, as vCD ignores it. Routes are tried in the
    order they were added; the first template that matches wins.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[PathTemplate, dict[str, Handler]]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        """Route ``method`` on paths matching ``template`` to ``handler``."""
        for known, methods in self._routes:
            if known.template == template:
                methods[method] = handler
                return
        self._routes.append((parse_template(template), {method: handler}))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters; 405 (with ``Allow``) or 404 otherwise."""
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        allowed: set[str] = set()
        for template, methods in self._routes:
            params = template.match(path)
            if params is None:
                continue
            if method in methods:
                return methods[method], params
            allowed.update(methods)
        if allowed:
            raise MethodNotAllowed(
                f"Method {method} is not allowed on this resource",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise NotFound(f"Resource not found: {path}")
