"""The cell's MQTT API extensions: cloudapi registration and forwarding over MQTT (vCD 10.2+).

System administrators manage them as on vCD (docs/protocol.md "MQTT"):

* ``/cloudapi/1.0.0/extensions/api`` (``GET`` list, ``POST``; ``GET``/``PUT``/``DELETE``
  ``/{id}``; a ``GET`` of one names its legacy admin service in the ``Link`` header);
* each extension's legacy admin service ``/api/admin/extension/service/<uuid>``, created with
  it and served by the AMQP services' routes, so that rights and service links are registered
  there as VMware's API extensibility guide shows; its namespace is the cell's choice,
  ``<vendor>.<name>`` (what vCD uses is not documented), so a right is named
  ``{<vendor>.<name>}:Name``. Deleting the extension deletes it; its rights stay, as in vCD;
* ``/cloudapi/1.0.0/apiFilters`` (``GET`` with ``filter=externalSystem.id==<id>``, ``POST``,
  ``DELETE /{id}``), ``urlScope`` ``EXT_API``;
* ``/cloudapi/1.0.0/tokens`` (``POST`` an ``EXTENSION`` token, shown once; ``GET`` lists them
  censored; ``DELETE /{id}`` revokes one).

Deleting an extension deletes its filters and tokens with it (as CSE says vCD does); an
enabled extension may be deleted (CSE disables first, vcdext too; whether vCD insists is
unknown).

A request whose path matches an enabled extension's filter (and no AMQP service's) is
published in the MQTT envelope on the extension's monitor topic; the reply comes from its
respond topic (:class:`~vcdext_cell.mqtt.MqttForwarder`). The cell does not make the broker
check tokens: the broker authenticates whom its own configuration says.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from vcdext.errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
)
from vcdext.vcloud import mqtt as names

from .acl import Caller, is_authorized
from .forwarder import ForwardError, ForwardTimeout
from .http import Answer, Call, error_answer, json_answer
from .model import Forwarded, Service, new_id
from .mqtt import MqttForwarder
from .proxy import reply_answer, request_message
from .state import State, compile_url_pattern

_PATH = re.compile(
    r"/cloudapi/1\.0\.0/(?P<kind>extensions/api|apiFilters|tokens)(?:/(?P<id>[^/]+))?/?"
)


@dataclass(frozen=True)
class Extension:
    """A registered API extension."""

    id: str
    vendor: str
    name: str
    version: str
    priority: int = 50
    enabled: bool = True
    authorization_enabled: bool = False
    description: str = ""
    #: The legacy admin service id (``/api/admin/extension/service/<uuid>``).
    uuid: str = field(default_factory=new_id)
    order: int = 0

    def doc(self) -> dict[str, Any]:
        topics = names.topics_of(self.vendor, self.name, self.version)
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "vendor": self.vendor,
            "priority": self.priority,
            "enabled": self.enabled,
            "authorizationEnabled": self.authorization_enabled,
            "description": self.description,
            "mqttTopics": {"monitor": topics.monitor, "respond": topics.respond},
        }


@dataclass(frozen=True)
class Filter:
    id: str
    extension_id: str
    pattern: str
    compiled: re.Pattern[str]

    def doc(self, extension: Extension | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "externalSystem": {
                "id": self.extension_id,
                "name": extension.name if extension else "",
            },
            "urlMatcher": {"urlPattern": self.pattern, "urlScope": "EXT_API"},
            "responseContentType": None,
        }


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    extension_id: str
    owner: str
    secret: str = field(repr=False)


_LEGACY = "/api/admin/extension/service"
_RECORDS = "application/vnd.vmware.vcloud.query.records+xml"


def _legacy_links(href: str) -> str:
    """The ``Link`` header of an extension: its legacy admin service's parts, as in VMware's
    API extensibility guide (``rights`` with ``rel="add"``, the others ``rel="down"``)."""
    parts = [f'<{href}>;rel="alternate";type="application/vnd.vmware.admin.service+xml"']
    parts.append(f'<{href}/rights>;rel="add";type="application/vnd.vmware.admin.right+xml"')
    for child in ("links", "apidefinitions", "apifilters", "resourceclasses"):
        parts.append(f'<{href}/{child}>;rel="down";type="{_RECORDS}"')
    return ", ".join(parts)


def _legacy_fields(ext: Extension) -> dict[str, Any]:
    return {
        "name": ext.name,
        "vendor": ext.vendor,
        "priority": ext.priority,
        "enabled": ext.enabled,
        # vCD's rules for the extension are its admin service's resource classes [inferred]
        "authorization_enabled": ext.authorization_enabled,
        "description": ext.description,
    }


def _page(values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resultTotal": len(values),
        "pageCount": 1,
        "page": 1,
        "pageSize": max(len(values), 1),
        "values": values,
    }


def _body(call: Call) -> dict[str, Any]:
    try:
        doc = json.loads(call.body or b"{}")
    except ValueError:
        raise BadRequest("The body must be JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("The body must be a JSON object")
    return doc


class CloudExtensions:
    """The MQTT API extensions of one cell, and the forwarder that reaches them."""

    def __init__(self, state: State, forwarder: MqttForwarder | None) -> None:
        self.state = state
        self.forwarder = forwarder
        self._lock = threading.Lock()
        self._extensions: dict[str, Extension] = {}
        self._filters: dict[str, Filter] = {}
        self._tokens: dict[str, Token] = {}
        self._order = 0

    # -- what the cell holds --------------------------------------------------------------

    def extensions(self) -> list[Extension]:
        with self._lock:
            return sorted(self._extensions.values(), key=lambda e: e.order)

    def filters(self, extension_id: str | None = None) -> list[Filter]:
        with self._lock:
            return [
                f
                for f in self._filters.values()
                if extension_id is None or f.extension_id == extension_id
            ]

    def tokens(self) -> list[Token]:
        with self._lock:
            return list(self._tokens.values())

    def match(self, path: str) -> Extension | None:
        """The enabled extension whose filter matches ``path`` as a whole (highest priority,
        then the earliest)."""
        with self._lock:
            found = [
                self._extensions[f.extension_id]
                for f in self._filters.values()
                if f.extension_id in self._extensions
                and self._extensions[f.extension_id].enabled
                and f.compiled.fullmatch(path)
            ]
        return min(found, key=lambda e: (-e.priority, e.order), default=None)

    def owner_of(self, service_id: str) -> Extension | None:
        """The extension whose legacy admin service is ``service_id`` (a filter added there,
        as before API 37.3, routes to the extension over MQTT)."""
        with self._lock:
            return next((e for e in self._extensions.values() if e.uuid == service_id), None)

    # -- cloudapi -------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        return _PATH.fullmatch(path) is not None

    def answer(self, call: Call) -> Answer:
        """Answer a cloudapi call for extensions, filters or tokens (sysadmin only)."""
        m = _PATH.fullmatch(call.path)
        assert m is not None
        if call.session is None or not call.session.is_sysadmin:
            raise Forbidden("Only System administrators manage API extensions")
        kind, item = m.group("kind"), m.group("id")
        handler = {
            "extensions/api": self._extension_call,
            "apiFilters": self._filter_call,
            "tokens": self._token_call,
        }[kind]
        return handler(call, item)

    def _extension_call(self, call: Call, item: str | None) -> Answer:
        if item is None:
            if call.method == "GET":
                return json_answer(_page([e.doc() for e in self.extensions()]))
            if call.method == "POST":
                return json_answer(self._create_extension(_body(call)).doc(), 201)
            raise MethodNotAllowed("Use GET or POST", headers={"Allow": "GET, POST"})
        with self._lock:
            ext = self._extensions.get(item)
        if ext is None:
            raise NotFound(f"No API extension {item}")
        if call.method == "GET":
            answer = json_answer(ext.doc())
            answer.headers["Link"] = _legacy_links(f"{call.urls.base}{_LEGACY}/{ext.uuid}")
            return answer
        if call.method == "PUT":
            doc = _body(call)
            updated = replace(
                ext,
                priority=int(doc.get("priority", ext.priority)),
                enabled=bool(doc.get("enabled", ext.enabled)),
                authorization_enabled=bool(
                    doc.get("authorizationEnabled", ext.authorization_enabled)
                ),
                description=str(doc.get("description", ext.description) or ""),
            )
            with self._lock:
                self._extensions[ext.id] = updated
            self._sync_legacy(updated)
            return json_answer(updated.doc())
        if call.method == "DELETE":
            with self._lock:
                del self._extensions[ext.id]
                for f in [f for f in self._filters.values() if f.extension_id == ext.id]:
                    del self._filters[f.id]
                for t in [t for t in self._tokens.values() if t.extension_id == ext.id]:
                    del self._tokens[t.id]
            self._drop_legacy(ext)
            return Answer(204)
        raise MethodNotAllowed("Use GET, PUT or DELETE", headers={"Allow": "GET, PUT, DELETE"})

    def _create_extension(self, doc: dict[str, Any]) -> Extension:
        vendor, name, version = (str(doc.get(k) or "") for k in ("vendor", "name", "version"))
        if not (vendor and name and version):
            raise BadRequest("An API extension needs vendor, name and version")
        ext_id = names.extension_id(vendor, name, version)
        with self._lock:
            if ext_id in self._extensions:
                raise BadRequest(f"{ext_id} exists", minor_code="DUPLICATE_NAME")
            self._order += 1
            ext = Extension(
                ext_id,
                vendor,
                name,
                version,
                priority=int(doc.get("priority", 50)),
                enabled=bool(doc.get("enabled", True)),
                authorization_enabled=bool(doc.get("authorizationEnabled", False)),
                description=str(doc.get("description") or ""),
                order=self._order,
            )
            self._extensions[ext_id] = ext
        self._add_legacy(ext)
        return ext

    # -- the legacy admin service of an extension (rights, service links) -----------------

    def _add_legacy(self, ext: Extension) -> None:
        taken = {s.namespace for s in self.state.services()}
        namespace = f"{ext.vendor}.{ext.name}"
        if namespace in taken:  # another version of the extension has it
            namespace = f"{namespace}.{ext.version}"
        self.state.add_service(Service(**_legacy_fields(ext), namespace=namespace, id=ext.uuid))

    def _sync_legacy(self, ext: Extension) -> None:
        with contextlib.suppress(NotFound):  # deleted through the legacy API
            self.state.update_service(ext.uuid, **_legacy_fields(ext))

    def _drop_legacy(self, ext: Extension) -> None:
        with contextlib.suppress(NotFound):
            self.state.delete_service(ext.uuid)

    def _filter_call(self, call: Call, item: str | None) -> Answer:
        if item is not None:
            if call.method != "DELETE":
                raise MethodNotAllowed("Use DELETE", headers={"Allow": "DELETE"})
            with self._lock:
                if self._filters.pop(item, None) is None:
                    raise NotFound(f"No API filter {item}")
            return Answer(204)
        if call.method == "GET":
            query = parse_qs(call.query_string).get("filter", [""])[0]
            owner = query.removeprefix("externalSystem.id==") if query else None
            with self._lock:
                docs = [
                    f.doc(self._extensions.get(f.extension_id))
                    for f in self._filters.values()
                    if owner is None or f.extension_id == owner
                ]
            return json_answer(_page(docs))
        if call.method != "POST":
            raise MethodNotAllowed("Use GET or POST", headers={"Allow": "GET, POST"})
        doc = _body(call)
        system = doc.get("externalSystem") or {}
        matcher = doc.get("urlMatcher") or {}
        ext_id = str(system.get("id") or "") if isinstance(system, dict) else ""
        pattern = str(matcher.get("urlPattern") or "") if isinstance(matcher, dict) else ""
        if not pattern or (isinstance(matcher, dict) and matcher.get("urlScope") != "EXT_API"):
            raise BadRequest("urlMatcher needs a urlPattern and urlScope EXT_API")
        with self._lock:
            if ext_id not in self._extensions:
                raise BadRequest(f"externalSystem {ext_id!r} is no API extension")
            f = Filter(
                f"urn:vcloud:apiFilter:{uuid.uuid4()}",
                ext_id,
                pattern,
                compile_url_pattern(pattern),
            )
            self._filters[f.id] = f
            extension = self._extensions[ext_id]
        return json_answer(f.doc(extension), 201)

    def _token_call(self, call: Call, item: str | None) -> Answer:
        if item is not None:
            if call.method != "DELETE":
                raise MethodNotAllowed("Use DELETE", headers={"Allow": "DELETE"})
            with self._lock:
                if self._tokens.pop(item, None) is None:
                    raise NotFound(f"No token {item}")
            return Answer(204)
        if call.method not in ("GET", "POST"):
            raise MethodNotAllowed("Use GET or POST", headers={"Allow": "GET, POST"})
        if call.method == "GET":
            docs = [
                {
                    "id": t.id,
                    "name": t.name,
                    "type": "EXTENSION",
                    "token": None,  # shown once, when created
                    "owner": {"name": t.owner, "id": t.extension_id},
                }
                for t in self.tokens()
            ]
            return json_answer(_page(docs))
        doc = _body(call)
        ext_id = str(doc.get("extensionId") or "")
        if doc.get("type") != "EXTENSION":
            raise BadRequest("The cell issues EXTENSION tokens only")
        with self._lock:
            ext = self._extensions.get(ext_id)
            if ext is None:
                raise BadRequest(f"extensionId {ext_id!r} is no API extension")
            token = Token(
                f"urn:vcloud:token:{uuid.uuid4()}",
                str(doc.get("name") or ""),
                ext_id,
                names.broker_username(ext.vendor, ext.name, ext.version),
                secrets.token_urlsafe(32),
            )
            self._tokens[token.id] = token
        shown = {
            "id": token.id,
            "name": token.name,
            "type": "EXTENSION",
            "token": token.secret,
            "owner": {"name": token.owner, "id": ext_id},
        }
        return json_answer(shown, 200)

    # -- forwarding -----------------------------------------------------------------------

    def forward(self, call: Call, ext: Extension, *, timeout: float, rights_format: str) -> Answer:
        """Send ``call`` to ``ext`` over MQTT and turn its reply into the answer."""
        session = call.session
        assert session is not None  # forwarding happens only after authentication
        # With authorizationEnabled, the ACL rules of its admin service's resource classes
        # decide first, as for an AMQP service with AuthorizationEnabled.
        if ext.authorization_enabled and not is_authorized(
            self.state, [ext.uuid], Caller.of(session.user), call.method, call.path
        ):
            raise Forbidden("No ACL rule of the extension allows this request")
        request_id = call.request_id or str(uuid.uuid4())
        message = request_message(
            call, self.state.rights_of(session.user, rights_format), request_id
        )
        topic = names.topics_of(ext.vendor, ext.name, ext.version).monitor
        started = time.monotonic()
        try:
            if self.forwarder is None:
                raise ForwardError("the cell has no MQTT broker (vcdext dev --transport mqtt)")
            answer = reply_answer(self.forwarder.forward(topic, message, request_id, timeout))
        except ForwardTimeout:
            answer = error_answer(
                HTTPError(
                    f"External service '{ext.name}' failed to respond in the specified timeout "
                    f"({timeout:g} SECONDS)",
                    status=504,
                    minor_code="GATEWAY_TIMEOUT",
                )
            )
        except ForwardError:
            answer = error_answer(
                InternalServerError(f"Cannot send message to extension {ext.id}.")
            )
        self.state.record_forwarded(
            Forwarded(
                call.method,
                call.path,
                ext.name,
                answer.status,
                session.user_urn,
                round(time.monotonic() - started, 3),
            )
        )
        return answer
