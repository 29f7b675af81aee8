"""The transport-free request pipeline: decode → route → authorize → negotiate → handler →
reply.

Nothing here knows about AMQP: the kombu consumer, the local cell and the test client all hand
raw vCD message bodies to :meth:`Dispatcher.handle_message` and publish what it returns.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from lxml import etree

from .context import (
    Authorizer,
    PluginState,
    RequestContext,
    _current,
    is_system_admin,
    org_id,
    parse_accept_language,
)
from .errors import (
    Forbidden,
    HTTPError,
    InternalServerError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    ProtocolError,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from .i18n import N_, Localization, Translator
from .observer import NO_OBSERVER, Observer
from .operations import Operation
from .paths import PathTemplate
from .protocol import (
    JSON_TYPE,
    Reply,
    Request,
    Response,
    decode_request,
    encode_reply,
    request_id_of,
)
from .registry import RegisteredService, Registry
from .tasks import RunningTask, TaskRunner
from .vcloud.accept import negotiate, preferred_family
from .vcloud.error import error_document
from .vcloud.media import H_REQUEST_ID
from .vcloud.versions import accept_versions

log = logging.getLogger(__name__)

#: An ``inline`` handler that takes longer than this is reported (once per operation).
_INLINE_WARN_SECONDS = 0.05


class _Router:
    """Method + path → operation for a set of services; overlapping templates prefer the one
    with more literal text (``/api/x/new`` wins over ``/api/x/{id}``)."""

    def __init__(self, services: Iterable[RegisteredService]) -> None:
        table: dict[str, tuple[PathTemplate, dict[str, Operation]]] = {}
        for service in services:
            for op in service.operations:
                entry = table.setdefault(op.path.shape, (op.path, {}))
                entry[1][op.method.value] = op
        self._routes = sorted(table.values(), key=lambda e: -e[0].literal_length)

    def find(self, method: str, path: str) -> Operation | None:
        """The operation answering ``method path``, ``None`` if none does."""
        for template, methods in self._routes:
            if template.match(path) is not None:
                op = methods.get(method)
                if op is not None:
                    return op
        return None

    def route(self, method: str, path: str, tr: Translator) -> tuple[Operation, dict[str, str]]:
        op = self.find(method, path)
        if op is not None:  # same shape, but the names are those of its own template
            return op, op.path.match(path) or {}
        allowed = {m for t, methods in self._routes if t.match(path) is not None for m in methods}
        if allowed:
            raise MethodNotAllowed(
                tr.gettext("Method {method} is not allowed on {path}", method=method, path=path),
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise NotFound(tr.gettext("No resource at {path}", path=path))


def media_matches(pattern: str, media_type: str) -> bool:
    """Whether ``media_type`` (``type/subtype``) matches ``pattern`` (wildcards allowed)."""
    return fnmatch.fnmatchcase(media_type.lower(), pattern.lower())


def _api_version(request: Request) -> str:
    accept = request.headers.get("Accept", "")
    if len(accept) > 256:  # long headers are not kept: the cache stays small
        return _first_version.__wrapped__(accept)
    return _first_version(accept)


@functools.lru_cache(maxsize=512)
def _first_version(accept: str) -> str:
    versions = accept_versions(accept)
    return versions[0] if versions else ""


class Dispatcher:
    """Routes and runs requests for the services of a frozen :class:`Registry`.

    :param timeout: vCD's extensibility timeout; a request not started within it is answered
        503 without running its handler, since vCD has stopped waiting.
    :param tasks: runs the vCD tasks handlers start (``current().start_task``).
    :param observer: told of every answered request (metrics); by default nobody is.
    :param localization: the catalogs (the core's own only, by default): the core's error
        messages and each handler's ``RequestContext`` speak the ``Accept-Language`` locale.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        timeout: float = 10.0,
        tasks: TaskRunner | None = None,
        observer: Observer | None = None,
        localization: Localization | None = None,
    ) -> None:
        self.registry = registry
        self.timeout = timeout
        self.tasks = tasks
        self.observer = observer or NO_OBSERVER
        self._plugin_by_key = {s.routing_key: s.plugin for s in registry.services.values()}
        self.localization = localization or Localization()
        self._all = _Router(registry.services.values())
        self._by_key = {s.routing_key: _Router([s]) for s in registry.services.values()}
        self._namespaces = {s.plugin: s.namespace for s in registry.services.values()}
        self._lock = threading.Lock()
        self._aliases: Mapping[str, frozenset[str]] = {}
        #: vCD's authorization framework for handlers (``ctx.authorize``); set once the
        #: runtime registered with vCD.
        self.authorizer: Authorizer | None = None
        self._slow_inline: set[tuple[str, str]] = set()

    def learn_right_ids(self, aliases: Mapping[str, Iterable[str]]) -> None:
        """Accept other spellings of rights (their vCD URNs, learned at registration).

        :param aliases: full right name → identifiers that vCD may send for it.
        """
        with self._lock:
            merged = dict(self._aliases)
            for name, ids in aliases.items():
                merged[name] = frozenset(merged.get(name, frozenset()) | set(ids))
            self._aliases = merged

    def service_of(self, routing_key: str | None) -> str:
        """The plugin name of the service consuming ``routing_key`` (``""`` if none)."""
        return self._plugin_by_key.get(routing_key or "", "")

    # -- message level --------------------------------------------------------------------

    def handle_message(
        self, body: bytes, *, routing_key: str | None = None, received: float | None = None
    ) -> bytes:
        """Answer one raw vCD message body with the encoded reply.

        :param routing_key: restrict routing to the service with this key (the queue's);
            ``None`` routes across every service (the test client).
        :param received: ``time.monotonic()`` when the message arrived (deadline base).
        """
        return self.answer(body, routing_key=routing_key, received=received)[0]

    def decode(self, body: bytes) -> Request | None:
        """The request ``body`` carries; ``None`` if it is malformed (:meth:`answer` then
        answers it 400 with the reason)."""
        try:
            return decode_request(body)
        except ProtocolError:
            return None

    def runs_inline(self, request: Request, routing_key: str | None = None) -> bool:
        """Whether ``request`` may be answered on the transport's own thread: its operation
        is declared :attr:`~Operation.inline`, or no handler would run (nothing matches, and
        the answer is an error built at once)."""
        router = self._all if routing_key is None else self._by_key.get(routing_key)
        if router is None:
            return True
        op = router.find(request.method, request.path)
        return op is None or op.inline

    def answer(
        self,
        body: bytes,
        *,
        routing_key: str | None = None,
        received: float | None = None,
        request: Request | None = None,
    ) -> tuple[bytes, bool]:
        """:meth:`handle_message`, and whether a redelivery of this message should get this
        same reply rather than run again: true when a handler of an operation that is not
        ``idempotent`` ran (see :attr:`Operation.idempotent`).

        :param request: ``body`` already decoded by :meth:`decode` (it is not decoded again).
        """
        received = time.monotonic() if received is None else received
        try:
            if request is None:
                request = decode_request(body)
        except ProtocolError as exc:
            request_id = request_id_of(body)
            log.warning("undecodable request %s: %s", request_id or "(no id)", exc)
            outcome = self.error_outcome(400, "BAD_REQUEST", f"Malformed request message: {exc}")
            self.observer.request_done(
                self.service_of(routing_key), "", 400, time.monotonic() - received
            )
            return encode_reply(request_id, outcome.status, outcome.headers, outcome.body), False
        outcome, ran = self._dispatch(request, routing_key=routing_key, received=received)
        reply = encode_reply(request.id, outcome.status, outcome.headers, outcome.body)
        return reply, ran is not None and not ran.idempotent

    # -- request level --------------------------------------------------------------------

    def dispatch(
        self, request: Request, *, routing_key: str | None = None, received: float | None = None
    ) -> Reply:
        """Route, authorize and run one request; every failure becomes an ``Error`` outcome."""
        return self._dispatch(request, routing_key=routing_key, received=received)[0]

    def _dispatch(
        self, request: Request, *, routing_key: str | None, received: float | None
    ) -> tuple[Reply, Operation | None]:
        """The outcome, and the operation whose handler was called (``None``: none was)."""
        ran: Operation | None = None
        started = time.monotonic()
        received = started if received is None else received
        op: Operation | None = None
        locales = parse_accept_language(request.headers.get("Accept-Language", ""))
        tr = self.localization.translator(None, locales)  # the core's own messages
        try:
            router = self._all if routing_key is None else self._by_key.get(routing_key)
            if router is None:
                raise NotFound(
                    tr.gettext(
                        "No service is registered with routing key {key}", key=repr(routing_key)
                    )
                )
            op, params = router.route(request.method, request.path, tr)
            request.path_params = params
            self._authorize(op, request, tr)
            self._check_body(op, request, tr)
            accept = request.headers.get("Accept", "")
            chosen = negotiate(accept, op.produces)
            if chosen is None:
                raise NotAcceptable(
                    tr.gettext(
                        "None of the media types this operation produces is acceptable "
                        "(Accept: {accept}); it produces {produces}",
                        accept=_quote(accept),
                        produces=", ".join(op.produces),
                    )
                )
            context = RequestContext(
                request=request,
                plugin=op.plugin,
                locales=locales,
                translator=self.localization.translator(op.plugin, locales),
                deadline=received + self.timeout,
                content_type=chosen,
                api_version=_api_version(request),
                state=self.registry.states.get(op.plugin) or PluginState(),
                config=self.registry.configs.get(op.plugin) or MappingProxyType({}),
                authorizer=self.authorizer,
                namespace=self._namespaces.get(op.plugin, ""),
                tasks=self.tasks,
            )
            if context.remaining <= 0:
                self.observer.dropped_late(op.plugin)
                raise ServiceUnavailable(tr.gettext("The request waited longer than vCD's timeout"))
            ran = op
            outcome = self._run(op, request, context)
        except HTTPError as exc:
            outcome = self._http_error(exc, request, tr)
        except Exception:  # a handler bug: 500 for the client, traceback for the log
            log.exception(
                "request %s (%s %s) failed",
                request.id,
                request.method,
                request.path,
                extra={
                    "vcdext_request": {
                        "request_id": request.id,
                        "vcd_request_id": request.headers.get(H_REQUEST_ID, ""),
                        "service": op.plugin if op is not None else "",
                        "operation": op.name if op is not None else "",
                    }
                },
            )
            outcome = self._http_error(
                InternalServerError(
                    tr.gettext("Internal error; request id {id}", id=request.id or "(none)")
                ),
                request,
                tr,
            )
        seconds = time.monotonic() - started
        service = op.plugin if op is not None else self.service_of(routing_key)
        self.observer.request_done(service, op.name if op else "", outcome.status, seconds)
        vcd_request_id = request.headers.get(H_REQUEST_ID, "")
        if vcd_request_id:  # so that vCD's request id follows the call in both directions
            headers = {**outcome.headers, H_REQUEST_ID: vcd_request_id}
            outcome = Reply(outcome.status, headers, outcome.body)
        if log.isEnabledFor(logging.INFO):  # the access line, and its fields for JSON logs
            self._access_line(request, outcome, service, op, seconds, vcd_request_id)
        return outcome, ran

    @staticmethod
    def _access_line(
        request: Request,
        outcome: Reply,
        service: str,
        op: Operation | None,
        seconds: float,
        vcd_request_id: str,
    ) -> None:
        log.info(
            "%s %s %s → %d (%.1f ms)",
            request.id,
            request.method,
            request.path,
            outcome.status,
            seconds * 1000,
            extra={
                "vcdext_request": {
                    "request_id": request.id,
                    "vcd_request_id": vcd_request_id,
                    "service": service,
                    "operation": op.name if op else "",
                    "method": request.method,
                    "path": request.path,
                    "status": outcome.status,
                    "duration_ms": round(seconds * 1000, 3),
                    "user": request.security.user,
                    "org": request.security.org,
                }
            },
        )

    def _authorize(self, op: Operation, request: Request, tr: Translator) -> None:
        """403 unless the caller holds every right of ``op`` and is in its scope.

        A right is held when the security context lists its full name ``{namespace}:Name``
        or one of the identifiers learned for it at registration (URN, bare UUID), whichever
        vCD sends.
        """
        security = request.security
        if op.admin_only and not is_system_admin(security):
            raise Forbidden(tr.gettext("This operation is for System administrators only"))
        missing = [r for r in op.rights if not self.holds(security.rights, r)]
        if missing:
            raise Forbidden(tr.gettext("Missing right(s): {rights}", rights=", ".join(missing)))
        if op.same_org is not None and not is_system_admin(security):
            wanted = request.path_params.get(op.same_org, "")
            if not security.org or org_id(wanted) != org_id(security.org):
                raise Forbidden(
                    tr.gettext("The organization in the path is not the caller's organization")
                )

    def holds(self, held: Iterable[str], right: str) -> bool:
        """Whether the rights ``held`` (as vCD sent them) include ``right`` (a full name)."""
        held = held if isinstance(held, frozenset | set) else frozenset(held)
        if right in held:
            return True
        aliases = self._aliases.get(right)
        return aliases is not None and not aliases.isdisjoint(held)

    def _check_body(self, op: Operation, request: Request, tr: Translator) -> None:
        if op.consumes and request.body:
            ctype = request.content_type
            if not any(media_matches(p, ctype) for p in op.consumes):
                accepted = ", ".join(op.consumes)
                raise UnsupportedMediaType(
                    tr.gettext(
                        "Content-Type {type} is not accepted; use {accepted}",
                        type=ctype or "(none)",
                        accepted=accepted,
                    )
                )

    def _run(self, op: Operation, request: Request, context: RequestContext) -> Reply:
        assert op.handler is not None
        token = _current.set(context)
        started = time.monotonic() if op.inline else 0.0
        try:
            result = op.handler(request, **request.path_params)
        except BaseException:
            self._fail_tasks(context, request)
            raise
        finally:
            _current.reset(token)
            if op.inline:
                self._check_inline(op, time.monotonic() - started)
        try:
            response = self._to_response(result, op, context)
            headers = dict(response.headers)
            body = response.body_bytes
            status = response.status
            if not (
                isinstance(body, bytes)
                and isinstance(status, int)
                and not isinstance(status, bool)
                and 100 <= status <= 599
                and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
            ):  # a handler bug: a 500 like any other, not a broken reply
                raise TypeError(
                    f"handler of {op} returned a Response that is not status 100-599, "
                    "bytes or str body and str headers"
                )
        except BaseException:
            self._fail_tasks(context, request)
            raise
        for task in context.started:  # the reply carries the Task; now its work may run
            assert self.tasks is not None
            self.tasks.launch(task)
        if body or response.content_type:
            if response._json and not context.wants_json:
                default = JSON_TYPE
            else:
                default = context.content_type if context.content_type != "*/*" else ""
            headers["Content-Type"] = response.content_type or default or "application/octet-stream"
        return Reply(response.status, headers, body)

    def _check_inline(self, op: Operation, seconds: float) -> None:
        """Warn (once per operation) when a handler declared ``inline`` took long: while it
        ran, the transport's thread answered nothing else and sent no heartbeat."""
        key = (op.plugin, str(op))
        if seconds < _INLINE_WARN_SECONDS or key in self._slow_inline:
            return
        self._slow_inline.add(key)
        log.warning(
            "operation %s of plugin %s is declared inline=True but its handler took %.0f ms; "
            "where the transport runs inline handlers on its own thread (AMQP), it answers "
            "nothing else meanwhile: remove inline=True unless the handler only computes",
            op,
            op.plugin or "(none)",
            seconds * 1000,
        )

    def _fail_tasks(self, context: RequestContext, request: Request) -> None:
        """Tasks a failing handler started never run: they end in error at once."""
        for task in context.started:
            assert self.tasks is not None
            self.tasks.fail(
                task, f"The request that started the task failed (request id {request.id})"
            )

    @staticmethod
    def _to_response(result: object, op: Operation, context: RequestContext) -> Response:
        if isinstance(result, RunningTask):
            return result.response()
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status=204)
        if isinstance(result, etree._Element):
            return Response.xml(result)
        if isinstance(result, str | bytes):
            return Response(result)
        if isinstance(result, dict | list) or (
            dataclasses.is_dataclass(result) and not isinstance(result, type)
        ):
            return Response.json(
                dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result
            )
        raise TypeError(f"handler of {op} returned {type(result).__name__}, not a Response")

    def _http_error(self, exc: HTTPError, request: Request, tr: Translator) -> Reply:
        # A handler's `raise NotFound()` says "Resource not found" in the caller's language too.
        message = tr.gettext(exc.message) if exc.message in _DEFAULT_MESSAGES else exc.message
        outcome = self.error_outcome(
            exc.status,
            exc.minor_code,
            message,
            _api_version(request),
            as_json=preferred_family(request.headers.get("Accept", "")) == "json",
        )
        return Reply(outcome.status, {**exc.headers, **outcome.headers}, outcome.body)

    @staticmethod
    def error_outcome(
        status: int, minor_code: str, message: str, version: str = "", *, as_json: bool = False
    ) -> Reply:
        """An ``Error`` outcome, as vCD itself would answer: the XML ``vcloud:Error``, or its
        JSON form for a client that prefers JSON."""
        ctype, body = error_document(status, minor_code, message, as_json=as_json, version=version)
        return Reply(status, {"Content-Type": ctype}, body)


#: The messages of errors raised without one (``HTTPError.default_message``), for extraction.
_DEFAULT_MESSAGES = frozenset(
    (
        N_("Bad request"),
        N_("Access to resource is forbidden"),
        N_("Resource not found"),
        N_("Method not allowed"),
        N_("Not acceptable"),
        N_("Duplicate name"),
        N_("Unsupported media type"),
        N_("Internal server error"),
        N_("Not implemented"),
        N_("Service unavailable"),
    )
)


def _quote(value: str) -> str:
    """A header value safe to echo in an error message: printable ASCII, at most 100 chars."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in value)
    return (cleaned[:100] + "…") if len(cleaned) > 100 else (cleaned or "(none)")
