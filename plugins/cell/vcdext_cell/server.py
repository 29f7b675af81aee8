"""The cell's HTTP server and the order in which it routes a request, as vCD does.

For a path under ``/api/``:

1. ``/api/versions`` is answered without a version or a session.
2. Every other request needs ``Accept`` with a supported ``version=`` (406 otherwise).
3. ``POST /api/sessions`` logs in; everything else needs a session (401 otherwise), given as
   ``x-vcloud-authorization: <token>`` or ``Authorization: Bearer <token>``.
4. Unless the path is one of the cell's built-ins that always win (``/api/session``,
   ``/api/admin/extension...``), a path matched by the ``UrlPattern`` of an *enabled* service
   (Python's ``re.fullmatch`` on the path without query string, like Java's ``matches()``) is
   forwarded to that service over AMQP.
5. Otherwise the cell's own resources answer; an unknown path is vCD's 404 ``Error``.

``/cloudapi/1.0.0/sessions[/provider]`` log in for API 33.0 and later; ``/transfer/...`` takes
bundle uploads; ``/cell/...`` are unauthenticated JSON debug endpoints.

The HTTP server is the standard library's (one thread per connection), hardened where it is
lax: request bodies are read strictly (``Content-Length`` digits only, chunk sizes hex only,
both within the body limit, a short body is a 400); the listen backlog is
:data:`LISTEN_BACKLOG`; a connection silent for :data:`IDLE_TIMEOUT` seconds is closed; at most
:data:`MAX_CONNECTIONS` are served at once and the next ones get a 503 at once.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from vcdext.errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from vcdext.protocol import Headers

from .acl import Caller, is_authorized
from .cloudext import CloudExtensions
from .forwarder import Forwarder
from .http import Answer, Call, Router, base_url, error_answer, requested_version
from .model import Session
from .proxy import forward
from .reactions import ReactionRoutes
from .routes_authorization import AuthorizationRoutes
from .routes_extension import ExtensionRoutes
from .routes_tenant import ApiRoutes, unauthorized
from .state import State
from .views import Urls

log = logging.getLogger(__name__)

#: vCD's limit on API request bodies; bundle uploads may be larger.
MAX_API_BODY = 512 * 1024
MAX_UPLOAD_BODY = 60 * 1024 * 1024
#: Connections the kernel queues while the server is busy accepting (socketserver's is 5).
LISTEN_BACKLOG = 128
#: Seconds a connection may stay silent (between requests, or within one) before it is closed.
IDLE_TIMEOUT = 30.0
#: Connections served at once (one thread each); beyond that a connection gets a 503 at once.
MAX_CONNECTIONS = 1024
#: Trailer lines read after the last chunk of a chunked body.
_MAX_TRAILERS = 64

_DIGITS = re.compile(rb"[0-9]+")
# Hex digits only (no sign, no 0x, no _): int(x, 16) alone accepts all three. The 1 KB line
# bounds its length; a size past the body limit is a 413 before any of the chunk is read.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")

_VERSIONS = re.compile(r"/api/versions/?")
_LOGIN = re.compile(r"/api/sessions/?")
_BUILTIN = re.compile(r"/api/session/?|/api/admin/extension(/.*)?")
_CLOUDAPI_LOGIN = re.compile(r"/cloudapi/1\.0\.0/sessions(?P<provider>/provider)?/?")
_TRANSFER = re.compile(r"/transfer/(?P<transfer>[0-9a-f-]{36})/file")


class App:
    """Answers one :class:`Call`; every failure becomes a vCD ``Error`` (JSON on /cloudapi)."""

    def __init__(
        self,
        state: State,
        forwarder: Forwarder,
        *,
        timeout: float,
        rights_format: str,
        allow_remote: bool = False,
        extensions: CloudExtensions | None = None,
        reactions: ReactionRoutes | None = None,
    ) -> None:
        self.allow_remote = allow_remote
        #: MQTT API extensions (cloudapi) and their forwarder.
        self.extensions = extensions or CloudExtensions(state, None)
        self.state = state
        self.forwarder = forwarder
        self.timeout = timeout
        self.rights_format = rights_format
        self.router = Router()
        self.api = ApiRoutes(state)
        self.extension = ExtensionRoutes(state)
        self.authorization = AuthorizationRoutes(state)
        self.api.register(self.router)
        self.authorization.register(self.router)
        self.extension.register(self.router)
        if reactions is not None:  # notifications, blocking tasks, the mutable inventory
            reactions.register(self.router)
            self.api.on_task = reactions.on_task

    def handle(self, call: Call) -> Answer:
        """The answer to ``call``; never raises."""
        try:
            return self._route(call)
        except HTTPError as exc:
            return error_answer(
                exc,
                as_json=call.path.startswith("/cloudapi/"),
                accept=call.headers.get("Accept", ""),
            )
        except Exception:  # a cell bug: a 500 for the client, the traceback for the log
            log.exception("request %s (%s %s) failed", call.request_id, call.method, call.path)
            message = f"Internal error in the local cell; request id {call.request_id}"
            return error_answer(InternalServerError(message))

    def _route(self, call: Call) -> Answer:
        host = call.headers.get("Host")
        if not self.allow_remote and host and not is_loopback(urlsplit(f"//{host}").hostname):
            # A page in the developer's browser can point its own host name at 127.0.0.1
            # (DNS rebinding); the cell has demo passwords and unauthenticated debug pages.
            raise Forbidden(
                "The local cell answers only requests addressed to a loopback host; "
                "start it with --allow-remote to serve other names"
            )
        path = call.path
        if path == "/api" or path.startswith("/api/"):
            return self._api(call)
        m = _CLOUDAPI_LOGIN.fullmatch(path)
        if m is not None:
            if call.method != "POST":
                raise MethodNotAllowed("Use POST to log in", headers={"Allow": "POST"})
            call.version = requested_version(call.headers.get("Accept", ""))
            return self.api.cloudapi_login(call, provider=bool(m.group("provider")))
        if self.extensions.handles(path):
            call.version = requested_version(call.headers.get("Accept", ""))
            call.session = self._authenticate(call)
            if call.session is None:
                raise unauthorized("This request needs a session (log in with POST /api/sessions)")
            return self.extensions.answer(call)
        m = _TRANSFER.fullmatch(path)
        if m is not None:
            if call.method != "PUT":
                raise MethodNotAllowed("Upload with PUT", headers={"Allow": "PUT"})
            return self.extension.receive_transfer(call, m.group("transfer"))
        if path == "/cell" or path.startswith("/cell/"):
            return self._local(call)
        raise NotFound(f"Resource not found: {path}")

    def _api(self, call: Call) -> Answer:
        path = call.path
        if _VERSIONS.fullmatch(path):
            return self._local(call)
        call.version = requested_version(call.headers.get("Accept", ""))
        if _LOGIN.fullmatch(path):
            return self._local(call)
        call.session = self._authenticate(call)
        if call.session is None:
            raise unauthorized("This request needs a session (log in with POST /api/sessions)")
        service = None if _BUILTIN.fullmatch(path) else self.state.match(path)
        extension = (
            self.extensions.match(path)
            if service is None and not _BUILTIN.fullmatch(path)
            else None
        )
        # A legacy filter of an MQTT extension's admin service routes to the extension.
        if service is not None and (owner := self.extensions.owner_of(service.id)) is not None:
            service, extension = None, owner
        if extension is not None:
            return self.extensions.forward(
                call, extension, timeout=self.timeout, rights_format=self.rights_format
            )
        if service is not None:
            if service.authorization_enabled and not is_authorized(
                self.state, [service.id], Caller.of(call.session.user), call.method, path
            ):
                raise Forbidden("No ACL rule of the service allows this request")
            return forward(
                call,
                service,
                state=self.state,
                forwarder=self.forwarder,
                timeout=self.timeout,
                rights_format=self.rights_format,
            )
        return self._local(call)

    def _local(self, call: Call) -> Answer:
        handler, params = self.router.resolve(call.method, call.path)
        return handler(call, **params)

    def _authenticate(self, call: Call) -> Session | None:
        token = call.headers.get("x-vcloud-authorization", "").strip()
        if not token:
            scheme, _, value = call.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        return self.state.session(token) if token else None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or address) can only mean this machine."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    """Reads the request, hands it to the :class:`App`, writes the answer."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle on, keep-alive clients wait ~40 ms.
    disable_nagle_algorithm = True
    server: CellHTTPServer

    def do_GET(self) -> None:
        """Every method goes through :meth:`_serve`."""
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def setup(self) -> None:
        """Every read and write on the connection times out after the server's idle timeout."""
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        parts = urlsplit(self.path)
        path = parts.path or "/"
        headers = Headers()
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        call = Call(
            method=self.command,
            path=path,
            query_string=parts.query,
            headers=headers,
            body=b"",
            urls=Urls(base_url(headers.get("Host"), self.server.url)),
            client=(str(self.client_address[0]), int(self.client_address[1])),
            local=_address(self.connection.getsockname()),
            request_id=request_id,
        )
        try:
            call.body = self._read_body(
                MAX_UPLOAD_BODY if path.startswith("/transfer/") else MAX_API_BODY
            )
        except HTTPError as exc:
            self.close_connection = True
            self._write(error_answer(exc), call)
            return
        self._write(self.server.app.handle(call), call)

    def _read_body(self, limit: int) -> bytes:
        """The request body, at most ``limit`` bytes (413 above; 400 when malformed)."""
        codings = self.headers.get("Transfer-Encoding")
        if codings is not None:
            # RFC 9112 6.1: a request body with a transfer coding must end in chunked.
            if codings.rsplit(",", 1)[-1].strip().lower() != "chunked":
                raise BadRequest("Unsupported Transfer-Encoding; send chunked or Content-Length")
            return self._read_chunked(limit)
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return b""
        text = lengths.pop()
        if lengths or not _DIGITS.fullmatch(text.encode()):  # two values, or not digits
            raise BadRequest("Malformed Content-Length")
        length = int(text)
        if length > limit:
            # Read what was sent (up to a point) so the client sees the answer, not a reset.
            remaining = min(length, 2 * MAX_UPLOAD_BODY)
            while remaining > 0:
                got = self.rfile.read(min(remaining, 65536))
                if not got:
                    break
                remaining -= len(got)
            raise _too_large(limit)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != length:
            raise BadRequest("The request body is shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                raise BadRequest("Malformed chunked request body")
            length = int(size_text, 16)
            if length == 0:
                for _ in range(_MAX_TRAILERS):
                    if not self.rfile.readline(1024).strip():
                        return b"".join(chunks)
                raise BadRequest("Too many trailer lines in a chunked request body")
            size += length
            if size > limit:
                raise _too_large(limit)
            chunk = self.rfile.read(length)
            if len(chunk) != length or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("Malformed chunked request body")
            chunks.append(chunk)

    def _write(self, answer: Answer, call: Call) -> None:
        content_type = answer.content_type
        if content_type and answer.versioned and call.version:
            content_type = f"{content_type};version={call.version}"
        self.send_response(answer.status)
        if content_type and (answer.body or answer.status != 204):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("X-VMWARE-VCLOUD-REQUEST-ID", call.request_id)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if answer.body and self.command != "HEAD":
            self.wfile.write(answer.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by the stdlib itself (bad request line, unknown method) as vCD
        ``Error`` documents too."""
        minor = {400: "BAD_REQUEST", 404: "RESOURCE_NOT_FOUND", 501: "NOT_IMPLEMENTED"}
        text = message or self.responses.get(code, ("Error",))[0]
        error = HTTPError(text, status=code, minor_code=minor.get(code, "BAD_REQUEST"))
        self.close_connection = True
        call = Call("", "", "", Headers(), b"", Urls(self.server.url), request_id=str(uuid.uuid4()))
        self._write(error_answer(error), call)

    def log_message(self, format: str, *args: Any) -> None:
        """The stdlib's access log, at debug level (it never holds secrets)."""
        log.debug("%s %s", self.client_address[0], format % args)


def _address(sockname: Any) -> tuple[str, int]:
    return str(sockname[0]), int(sockname[1])


def _too_large(limit: int) -> HTTPError:
    return HTTPError(
        f"The request body is larger than {limit} bytes", status=413, minor_code="BAD_REQUEST"
    )


class CellHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its :class:`App` and its own base URL.

    :param idle_timeout: seconds a connection may stay silent before it is closed.
    :param max_connections: connections served at once; the next ones are answered 503.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)
        self.host = str(self.server_address[0])
        self.port = int(self.server_address[1])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):  # noqa: S104 - only formatting a URL
            shown = "127.0.0.1"
        self.url = f"http://{shown}:{self.port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, or refuse it when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """The connection's thread; its slot is free again when it ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """A 503 ``Error`` written straight from the accepting thread, then close."""
        error = ServiceUnavailable("The local cell is serving too many connections; retry later")
        answer = error_answer(error)
        head = (
            f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {answer.content_type}\r\n"
            f"Content-Length: {len(answer.body)}\r\nX-VMWARE-VCLOUD-REQUEST-ID: {uuid.uuid4()}\r\n"
            "Retry-After: 1\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode("ascii") + answer.body)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine (debug log); anything else is a cell bug."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
        else:
            log.exception("unexpected error serving %s", client_address)
