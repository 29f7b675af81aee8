"""The fake vCD's shared pieces: constants, its objects, and the routes of a service's
children (filters, links, API definitions, rights, bundles), mixed into :class:`FakeVcd`."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree

from tests.vcd.fake_http import Answer, Call, VcdFault, recorded

HOST = "https://vcd.example.com"
V = "http://www.vmware.com/vcloud/v1.5"
X = "http://www.vmware.com/vcloud/extension/v1.5"
VERSIONS = "http://www.vmware.com/vcloud/versions"
PASSWORD = "Tr0ub4dor&3-secret"

# Ids in the recorded documents, replaced by the fake's own.
T_SERVICE = "8d2f4e6a-3b1c-4f7d-9a5e-0c1b2d3e4f50"
T_FILTER = "3f9a1c2e-5b7d-4e8f-a0b1-c2d3e4f5a6b7"
T_LINK = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
T_DEFINITION = "0e1f2a3b-4c5d-4e6f-8a9b-c0d1e2f3a4b5"
T_RIGHT = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
T_UPLOAD = "4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a"


def _v(tag: str) -> str:
    return f"{{{V}}}{tag}"


def _x(tag: str) -> str:
    return f"{{{X}}}{tag}"


@dataclass
class FService:
    id: str
    name: str
    namespace: str
    description: str = ""
    enabled: bool = True
    authorization_enabled: bool = False
    routing_key: str = ""
    priority: int = 50
    exchange: str = ""
    vendor: str = ""


@dataclass
class FRight:
    id: str
    service: str
    name: str
    description: str = ""
    category: str = ""
    bundle_key: str = ""


class ChildRoutes:
    """Routes under ``/api/admin/extension/service/{id}/...``, rights and uploads."""

    filters: dict[str, tuple[str, str]]
    links: dict[str, tuple[str, dict[str, str]]]
    definitions: dict[str, tuple[str, dict[str, str]]]
    rights: dict[str, FRight]
    services: dict[str, FService]
    uploads: dict[str, tuple[str, int]]
    bundles: list[tuple[str, bytes]]
    right_updates: bool
    _service: Any
    _right: Any
    _xml: Any
    _records: Any
    _text: Any

    # -- filters, links, definitions -----------------------------------------------------------

    def _filter_records(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        rows = [
            {
                "service": f"{HOST}/api/admin/extension/service/{ident}",
                "urlPattern": pattern,
                "href": f"{HOST}/api/admin/extension/service/apifilter/{fid}",
                "id": f"urn:vcloud:apifilter:{fid}",
            }
            for fid, (sid, pattern) in self.filters.items()
            if sid == ident
        ]
        return self._records("apifilters-records.xml", "ApiFilterRecord", rows, call)

    def _add_filter(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        fid = str(uuid.uuid4())
        pattern = self._text(call.xml(), _x("UrlPattern"))
        self.filters[fid] = (ident, pattern)
        text = recorded("apifilter.xml").replace(T_FILTER, fid).replace(T_SERVICE, ident)
        root = etree.fromstring(text.encode())
        root.find(_x("UrlPattern")).text = pattern
        return self._xml(root, "apiFilter", 201)

    @staticmethod
    def _link_fields(el: etree._Element) -> dict[str, str]:
        fields = {}
        for tag, attr in (
            ("LinkHref", "linkHref"),
            ("MimeType", "mimeType"),
            ("Rel", "rel"),
            ("ResourceType", "resourceType"),
            ("ResourceId", "resourceId"),
        ):
            value = el.findtext(_x(tag))
            if value is not None:
                fields[attr] = value
        return fields

    def _link_records(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        rows = [
            {
                **fields,
                "service": f"{HOST}/api/admin/extension/service/{ident}",
                "href": f"{HOST}/api/admin/extension/service/link/{lid}",
                "id": f"urn:vcloud:serviceLink:{lid}",
            }
            for lid, (sid, fields) in self.links.items()
            if sid == ident
        ]
        return self._records("servicelinks-records.xml", "ServiceLinkRecord", rows, call)

    def _add_link(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        lid = str(uuid.uuid4())
        fields = self._link_fields(call.xml())
        self.links[lid] = (ident, fields)
        text = recorded("servicelink.xml").replace(T_LINK, lid).replace(T_SERVICE, ident)
        return self._xml(text, "serviceLink", 201)

    def _definition_records(self, call: Call, ident: str) -> Answer:
        s = self._service(ident)
        rows = [
            {
                **fields,
                "service": f"{HOST}/api/admin/extension/service/{ident}",
                "serviceName": s.name,
                "serviceNamespace": s.namespace,
                "href": f"{HOST}/api/admin/extension/service/apidefinition/{did}",
                "id": f"urn:vcloud:apiDefinition:{did}",
            }
            for did, (sid, fields) in self.definitions.items()
            if sid == ident
        ]
        return self._records("apidefinitions-records.xml", "AdminApiDefinitionRecord", rows, call)

    def _add_definition(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        body = call.xml()
        did = str(uuid.uuid4())
        self.definitions[did] = (
            ident,
            {
                "name": body.get("name", ""),
                "entryPoint": self._text(body, _x("EntryPoint")),
                "namespace": self._text(body, _x("Namespace")),
                "apiVendor": self._text(body, _x("ApiVendor")),
            },
        )
        text = recorded("apidefinition.xml").replace(T_DEFINITION, did).replace(T_SERVICE, ident)
        return self._xml(text, "apiDefinition", 201)

    # -- rights --------------------------------------------------------------------------------

    def _right_refs(self, call: Call, ident: str) -> Answer:
        self._service(ident)
        root = etree.fromstring(recorded("rightrefs.xml").replace(T_SERVICE, ident).encode())
        proto = root.find(_x("Right"))
        root.remove(proto)
        for r in self.rights.values():
            if r.service == ident:
                ref = copy.deepcopy(proto)
                ref.set("href", f"{HOST}/api/admin/right/{r.id}")
                ref.set("id", f"urn:vcloud:right:{r.id}")
                ref.set("name", r.name)
                root.append(ref)
        return self._xml(root, "rights")

    def _right_doc(self, r: FRight, status: int = 200) -> Answer:
        root = etree.fromstring(recorded("right.xml").replace(T_RIGHT, r.id).encode())
        root.set("name", r.name)
        for tag, value in (("Description", r.description), ("BundleKey", r.bundle_key)):
            el = root.find(_v(tag))
            if value:
                el.text = value
            else:
                root.remove(el)
        root.find(_v("Category")).text = r.category
        namespace = self.services[r.service].namespace if r.service in self.services else ""
        root.find(_v("ServiceNamespace")).text = namespace
        return self._xml(root, "right", status)

    def _add_right(self, call: Call, ident: str) -> Answer:
        s = self._service(ident)
        body = call.xml()
        name = "{" + s.namespace + "}:" + body.get("name", "")
        existing = next((r for r in self.rights.values() if r.name == name), None)
        if existing is not None:
            return self._right_doc(existing)
        right = FRight(str(uuid.uuid4()), ident, name)
        self._set_right(right, body)
        self.rights[right.id] = right
        return self._right_doc(right, 201)

    def _set_right(self, r: FRight, body: etree._Element) -> None:
        r.description = self._text(body, _v("Description"))
        r.category = self._text(body, _v("Category"))
        r.bundle_key = self._text(body, _v("BundleKey"))

    def _update_right(self, call: Call, ident: str) -> Answer:
        r = self._right(ident)
        if not self.right_updates:
            raise VcdFault(405, "METHOD_NOT_ALLOWED", "rights cannot be updated")
        self._set_right(r, call.xml())
        return self._right_doc(r)

    # -- bundles -------------------------------------------------------------------------------

    def _bundle_params(self, call: Call, ident: str) -> Answer:
        s = self._service(ident)
        body = call.xml()
        if body.get("serviceNamespace") != s.namespace:
            raise VcdFault(400, "BAD_REQUEST", "serviceNamespace does not match the service")
        token = str(uuid.uuid4())
        self.uploads[token] = (ident, int(body.get("fileSize", "-1")))
        return self._xml(
            recorded("bundle-upload-socket.xml").replace(T_UPLOAD, token), "bundleUploadSocket"
        )

    def _upload(self, call: Call, token: str) -> Answer:
        if token not in self.uploads:
            raise VcdFault(404, "RESOURCE_NOT_FOUND", "no such upload")
        ident, size = self.uploads.pop(token)
        if len(call.body) != size:
            raise VcdFault(400, "BAD_REQUEST", f"expected {size} bytes, got {len(call.body)}")
        self.bundles.append((ident, call.body))
        return Answer(200)
