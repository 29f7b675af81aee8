"""A small stateful vCD for the client tests, served through a ``requests`` transport adapter.

Every answer is one of the recorded documents in ``recorded/`` (real vCD shapes, each valid
against VMware's schemas), with its ids, hrefs and fields changed to match the fake's state.
Every request is recorded (:attr:`FakeVcd.calls`); XML bodies are checked (well-formed, vCloud
namespaces, and valid against the schemas where they are found: tests/support/schemas.py) and
anything wrong (invalid body, Accept without ``version=``, no token) is collected
in :attr:`FakeVcd.problems` and refused, so a test fails loudly instead of passing by luck.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import requests
from lxml import etree
from requests.structures import CaseInsensitiveDict

from tests.support.schemas import schema_errors
from tests.vcd.fake_http import RECORDED, Answer, Call, FakeAdapter, VcdFault, recorded
from tests.vcd.fake_parts import (
    HOST,
    PASSWORD,
    T_SERVICE,
    VERSIONS,
    ChildRoutes,
    FRight,
    FService,
    _v,
    _x,
)

__all__ = ["HOST", "PASSWORD", "RECORDED", "Call", "FakeVcd", "recorded"]


class FakeVcd(ChildRoutes):
    """The fake vCD's state and request handling."""

    def __init__(
        self,
        *,
        password: str = PASSWORD,
        versions: Iterable[str] | None = None,
        cloudapi: bool = True,
        public_host: str = HOST,
    ) -> None:
        self.password = password
        self.versions = list(versions) if versions is not None else None
        self.cloudapi = cloudapi
        self.public_host = public_host
        self.user = "administrator@System"
        self.unreachable = False
        self.query_service = True
        self.right_updates = True
        self.max_page_size = 128
        #: Answer a create whose operationKey was used before with that (deleted) service.
        self.stale_operation_keys = False
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.tokens: set[str] = set()
        self.services: dict[str, FService] = {}
        self.filters: dict[str, tuple[str, str]] = {}
        self.links: dict[str, tuple[str, dict[str, str]]] = {}
        self.definitions: dict[str, tuple[str, dict[str, str]]] = {}
        self.rights: dict[str, FRight] = {}
        self.operation_keys: dict[str, str] = {}
        self.uploads: dict[str, tuple[str, int]] = {}
        self.bundles: list[tuple[str, bytes]] = []
        self._faults: list[tuple[str, re.Pattern[str], int, list[int]]] = []
        #: Called (with the fake) just before a service create is processed.
        self.before_create: Callable[[FakeVcd], None] | None = None

    # -- test helpers ------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """A ``requests`` session whose every request goes to this fake."""
        s = requests.Session()
        adapter = FakeAdapter(self.handle)
        adapter.unreachable = lambda: self.unreachable
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        return s

    def fail(self, method: str, path: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` ``method`` requests whose path matches ``path`` (regex)
        with ``status``."""
        self._faults.append((method, re.compile(path), status, [times]))

    def expire_tokens(self) -> None:
        self.tokens.clear()

    @property
    def writes(self) -> list[Call]:
        """POST/PUT/DELETE calls other than logging in and out."""
        return [
            c
            for c in self.calls
            if c.method in ("POST", "PUT", "DELETE")
            and "/sessions" not in c.path
            and c.path.rstrip("/") != "/api/session"
        ]

    def reset_calls(self) -> None:
        self.calls.clear()

    def add_service(self, namespace: str, name: str, **fields: Any) -> FService:
        """Put a service into vCD directly (as if someone else had registered it)."""
        service = FService(str(uuid.uuid4()), name, namespace, **fields)
        self.services[service.id] = service
        return service

    def service_by_namespace(self, namespace: str) -> FService | None:
        return next((s for s in self.services.values() if s.namespace == namespace), None)

    def filters_of(self, service: FService) -> list[str]:
        return sorted(p for sid, p in self.filters.values() if sid == service.id)

    def links_of(self, service: FService) -> list[dict[str, str]]:
        return [d for sid, d in self.links.values() if sid == service.id]

    def definitions_of(self, service: FService) -> list[dict[str, str]]:
        return [d for sid, d in self.definitions.values() if sid == service.id]

    def rights_of(self, service: FService) -> list[FRight]:
        return [r for r in self.rights.values() if r.service == service.id]

    # -- handling ----------------------------------------------------------------------------

    def handle(self, request: requests.PreparedRequest) -> Answer:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        call = Call(
            request.method or "", request.url or "", CaseInsensitiveDict(request.headers), body
        )
        self.calls.append(call)
        try:
            return self._dispatch(call)
        except VcdFault as fault:
            return self._error(fault.status, fault.minor, fault.message)

    def _error(self, status: int, minor: str, message: str) -> Answer:
        el = etree.fromstring(recorded("error-not-found.xml").encode())
        el.set("majorErrorCode", str(status))
        el.set("minorErrorCode", minor)
        el.set("message", message)
        return Answer(
            status,
            etree.tostring(el, xml_declaration=True, encoding="UTF-8"),
            "application/vnd.vmware.vcloud.error+xml",
            {"X-VMWARE-VCLOUD-REQUEST-ID": str(uuid.uuid4())},
        )

    def _problem(self, call: Call, text: str) -> None:
        self.problems.append(f"{call}: {text}")

    def _check(self, call: Call) -> None:
        accept = call.headers.get("Accept", "")
        if call.path != "/api/versions" and "version=" not in accept:
            self._problem(call, f"Accept without version= ({accept!r})")
            raise VcdFault(406, "NOT_ACCEPTABLE", "The request has invalid accept header")
        if call.body and call.media_type.endswith("+xml"):
            errors = schema_errors(call.body)
            if errors:
                self._problem(call, "invalid body: " + "; ".join(errors))
                raise VcdFault(400, "BAD_REQUEST", "Bad request: " + errors[0])
            expected = {
                "Service": "application/vnd.vmware.admin.service+xml",
                "ApiFilter": "application/vnd.vmware.admin.apiFilter+xml",
                "ServiceLink": "application/vnd.vmware.admin.serviceLink+xml",
                "ApiDefinition": "application/vnd.vmware.admin.apiDefinition+xml",
                "Right": "application/vnd.vmware.admin.right+xml",
                "BundleUploadParams": "application/vnd.vmware.admin.bundleUploadParams+xml",
            }.get(etree.QName(call.xml()).localname)
            if expected and call.media_type != expected:
                self._problem(call, f"Content-Type {call.media_type} for a {expected} body")
                raise VcdFault(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type")

    def _authorized(self, call: Call) -> bool:
        token = call.headers.get("x-vcloud-authorization", "")
        bearer = call.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            token = bearer[7:]
        return token in self.tokens

    def _dispatch(self, call: Call) -> Answer:
        self._check(call)
        for method, pattern, status, left in self._faults:
            if left[0] > 0 and call.method == method and pattern.search(call.path):
                left[0] -= 1
                minor = "SERVICE_UNAVAILABLE" if status >= 500 else "BAD_REQUEST"
                raise VcdFault(status, minor, f"injected {status}")
        path, m = call.path, call.method
        if path == "/api/versions" and m == "GET":
            return self._versions()
        if path == "/api/sessions" and m == "POST":
            return self._login(call, cloudapi=False)
        if path.startswith("/cloudapi/1.0.0/sessions") and m == "POST":
            if not self.cloudapi:
                raise VcdFault(404, "RESOURCE_NOT_FOUND", "Not found")
            return self._login(call, cloudapi=True)
        if not self._authorized(call):
            return Answer(
                401,
                recorded("error-unauthorized.xml").encode(),
                "application/vnd.vmware.vcloud.error+xml",
            )
        for (verb, regex), handler in self._routes().items():
            if verb == m:
                match = re.fullmatch(regex, path)
                if match:
                    return handler(call, *match.groups())
        raise VcdFault(404, "RESOURCE_NOT_FOUND", f"no {m} {path} in the fake")

    def _routes(self) -> dict[tuple[str, str], Callable[..., Answer]]:
        s = "/api/admin/extension/service"
        u = "([0-9a-f-]{36})"
        return {
            ("GET", "/api/session/?"): lambda c: self._xml(recorded("session.xml"), "session"),
            ("DELETE", "/api/session/?"): self._logout,
            ("GET", "/api/admin/extension"): lambda c: self._xml(
                recorded("vmwextension.xml"), "vmwExtension"
            ),
            ("GET", s): self._list_services,
            ("POST", s): self._create_service,
            ("GET", "/api/query"): self._query,
            ("GET", f"{s}/{u}"): lambda c, i: self._service_doc(self._service(i)),
            ("PUT", f"{s}/{u}"): self._update_service,
            ("DELETE", f"{s}/{u}"): self._delete_service,
            ("GET", f"{s}/{u}/apifilters"): self._filter_records,
            ("POST", f"{s}/{u}/apifilters"): self._add_filter,
            ("GET", f"{s}/{u}/links"): self._link_records,
            ("POST", f"{s}/{u}/links"): self._add_link,
            ("GET", f"{s}/{u}/apidefinitions"): self._definition_records,
            ("POST", f"{s}/{u}/apidefinitions"): self._add_definition,
            ("GET", f"{s}/{u}/rights"): self._right_refs,
            ("POST", f"{s}/{u}/rights"): self._add_right,
            ("POST", f"{s}/{u}/localizationbundles"): self._bundle_params,
            ("DELETE", f"{s}/apifilter/{u}"): lambda c, i: self._delete(self.filters, i),
            ("DELETE", f"{s}/link/{u}"): lambda c, i: self._delete(self.links, i),
            ("DELETE", f"{s}/apidefinition/{u}"): lambda c, i: self._delete(self.definitions, i),
            ("GET", f"/api/admin/right/{u}"): lambda c, i: self._right_doc(self._right(i)),
            ("PUT", f"/api/admin/right/{u}"): self._update_right,
            ("PUT", f"/transfer/{u}/file"): self._upload,
        }

    # -- documents -----------------------------------------------------------------------------

    def _xml(self, text: str | bytes | etree._Element, kind: str, status: int = 200) -> Answer:
        if isinstance(text, etree._Element):
            text = etree.tostring(text, xml_declaration=True, encoding="UTF-8")
        if isinstance(text, bytes):
            text = text.decode()
        text = text.replace(HOST, self.public_host)
        prefix = "vcloud" if kind in ("session", "query.records") else "admin"
        return Answer(
            status,
            text.encode(),
            f"application/vnd.vmware.{prefix}.{kind}+xml;version=36.0",
            {"X-VMWARE-VCLOUD-REQUEST-ID": str(uuid.uuid4())},
        )

    def _versions(self) -> Answer:
        root = etree.fromstring(recorded("versions.xml").encode())
        if self.versions is not None:
            for info in list(root):
                root.remove(info)
            proto = etree.fromstring(recorded("versions.xml").encode())[1]
            for version in self.versions:
                info = copy.deepcopy(proto)
                info.find(f"{{{VERSIONS}}}Version").text = version
                root.append(info)
        return Answer(200, etree.tostring(root), "application/vnd.vmware.vcloud.versions+xml")

    def _login(self, call: Call, *, cloudapi: bool) -> Answer:
        auth = call.headers.get("Authorization", "")
        expected = f"{self.user}:{self.password}"
        if not auth.startswith("Basic ") or base64.b64decode(auth[6:]).decode() != expected:
            return self._error(401, "UNAUTHORIZED", "Bad credentials")
        token = uuid.uuid4().hex
        self.tokens.add(token)
        if cloudapi:
            if "version=" not in call.headers.get("Accept", ""):
                self._problem(call, "cloudapi login without version")
            return Answer(
                200,
                b'{"user": {"name": "administrator"}}',
                "application/json;version=36.0",
                {"X-VMWARE-VCLOUD-ACCESS-TOKEN": token},
            )
        answer = self._xml(recorded("session.xml"), "session")
        answer.headers["x-vcloud-authorization"] = token
        return answer

    def _logout(self, call: Call) -> Answer:
        token = call.headers.get("x-vcloud-authorization") or call.headers["Authorization"][7:]
        self.tokens.discard(token)
        return Answer(204)

    def _service(self, ident: str) -> FService:
        if ident not in self.services:
            raise VcdFault(404, "RESOURCE_NOT_FOUND", f"no service {ident}")
        return self.services[ident]

    def _right(self, ident: str) -> FRight:
        if ident not in self.rights:
            raise VcdFault(404, "RESOURCE_NOT_FOUND", f"no right {ident}")
        return self.rights[ident]

    def _service_element(self, s: FService) -> etree._Element:
        root = etree.fromstring(recorded("service.xml").replace(T_SERVICE, s.id).encode())
        root.set("name", s.name)
        description = root.find(_v("Description"))
        if s.description:
            description.text = s.description
        else:
            root.remove(description)
        for tag, value in (
            ("Namespace", s.namespace),
            ("Enabled", "true" if s.enabled else "false"),
            ("AuthorizationEnabled", "true" if s.authorization_enabled else "false"),
            ("RoutingKey", s.routing_key),
            ("Priority", str(s.priority)),
            ("Exchange", s.exchange),
        ):
            root.find(_x(tag)).text = value
        vendor = root.find(_x("Vendor"))
        if s.vendor:
            vendor.text = s.vendor
        else:
            root.remove(vendor)
        return root

    def _service_doc(self, s: FService, status: int = 200) -> Answer:
        return self._xml(self._service_element(s), "service", status)

    def _records(
        self, template: str, record_tag: str, rows: list[dict[str, str]], call: Call
    ) -> Answer:
        root = etree.fromstring(recorded(template).encode())
        proto = root.find(_v(record_tag))
        root.remove(proto)
        size = min(int(call.query.get("pageSize", "25")), self.max_page_size)
        page = int(call.query.get("page", "1"))
        chosen = rows[(page - 1) * size : page * size]
        for row in chosen:
            record = copy.deepcopy(proto)
            for attr in list(record.attrib):
                del record.attrib[attr]
            for key, value in row.items():
                record.set(key, value)
            root.append(record)
        root.set("total", str(len(rows)))
        root.set("page", str(page))
        root.set("pageSize", str(size))
        if page * size < len(rows):
            query = dict(call.query, page=str(page + 1), pageSize=str(size))
            href = HOST + call.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            link = etree.SubElement(root, _v("Link"), rel="nextPage", href=href)
            link.set("type", "application/vnd.vmware.vcloud.query.records+xml")
            root.insert(0, link)
        return self._xml(root, "query.records")

    # -- services ------------------------------------------------------------------------------

    def _list_services(self, call: Call) -> Answer:
        root = etree.fromstring(recorded("extension-services.xml").encode())
        proto = root.findall(_v("Link"))[-1]
        root.remove(proto)
        for s in self.services.values():
            link = copy.deepcopy(proto)
            link.set("href", f"{HOST}/api/admin/extension/service/{s.id}")
            link.set("name", s.name)
            root.append(link)
        return self._xml(root, "extensionServices")

    def _query(self, call: Call) -> Answer:
        q = call.query
        if not self.query_service:
            raise VcdFault(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "query refused")
        if q.get("type") != "adminService" or q.get("format") != "records":
            raise VcdFault(400, "BAD_REQUEST", f"the fake has no query {q}")
        wanted = None
        if "filter" in q:
            m = re.fullmatch(r"namespace==(.+)", q["filter"])
            if not m:
                raise VcdFault(400, "BAD_REQUEST", f"filter {q['filter']!r}")
            wanted = m.group(1)
        rows = [
            {
                "enabled": "true" if s.enabled else "false",
                "exchange": s.exchange,
                "isAuthorizationEnabled": "true" if s.authorization_enabled else "false",
                "name": s.name,
                "namespace": s.namespace,
                "priority": str(s.priority),
                "routingKey": s.routing_key,
                "vendor": s.vendor,
                "href": f"{HOST}/api/admin/extension/service/{s.id}",
                "id": f"urn:vcloud:service:{s.id}",
            }
            for s in self.services.values()
            if wanted is None or s.namespace == wanted
        ]
        return self._records("query-adminService.xml", "AdminServiceRecord", rows, call)

    def _text(self, root: etree._Element, tag: str) -> str:
        return (root.findtext(tag) or "").strip()

    def _create_service(self, call: Call) -> Answer:
        if self.before_create is not None:
            hook, self.before_create = self.before_create, None
            hook(self)
        body = call.xml()
        key = body.get("operationKey")
        if key and key in self.operation_keys:
            if self.operation_keys[key] in self.services:
                return self._service_doc(self.services[self.operation_keys[key]], 201)
            if self.stale_operation_keys:
                gone = FService(self.operation_keys[key], body.get("name"), "?")
                return self._service_doc(gone, 201)
        namespace = self._text(body, _x("Namespace"))
        if self.service_by_namespace(namespace) is not None:
            text = recorded("error-duplicate-service.xml").replace("io.vcdext.hello", namespace)
            return Answer(400, text.encode(), "application/vnd.vmware.vcloud.error+xml")
        service = self.add_service(namespace, body.get("name"))
        self._set_fields(service, body)
        if key:
            self.operation_keys[key] = service.id
        for f in body.iter(_x("ApiFilter")):
            self.filters[str(uuid.uuid4())] = (service.id, self._text(f, _x("UrlPattern")))
        for link in body.iter(_x("ServiceLink")):
            self.links[str(uuid.uuid4())] = (service.id, self._link_fields(link))
        return self._service_doc(service, 201)

    def _set_fields(self, s: FService, body: etree._Element) -> None:
        s.name = body.get("name", s.name)
        s.description = body.findtext(_v("Description")) or ""
        s.enabled = self._text(body, _x("Enabled")) == "true"
        s.authorization_enabled = self._text(body, _x("AuthorizationEnabled")) == "true"
        s.routing_key = self._text(body, _x("RoutingKey"))
        s.priority = int(self._text(body, _x("Priority")) or 50)
        s.exchange = self._text(body, _x("Exchange"))
        s.vendor = self._text(body, _x("Vendor"))

    def _update_service(self, call: Call, ident: str) -> Answer:
        s = self._service(ident)
        body = call.xml()
        if self._text(body, _x("Namespace")) != s.namespace:
            raise VcdFault(400, "BAD_REQUEST", "the namespace cannot change")
        self._set_fields(s, body)
        return self._service_doc(s)

    def _delete_service(self, call: Call, ident: str) -> Answer:
        s = self._service(ident)
        if s.enabled:
            raise VcdFault(400, "BAD_REQUEST", "disable the service before deleting it")
        del self.services[ident]
        for table in (self.filters, self.links, self.definitions):
            for key in [k for k, (sid, _) in table.items() if sid == ident]:
                del table[key]
        return Answer(204)

    def _delete(self, table: dict[str, Any], ident: str) -> Answer:
        if ident not in table:
            raise VcdFault(404, "RESOURCE_NOT_FOUND", f"no {ident}")
        del table[ident]
        return Answer(204)
