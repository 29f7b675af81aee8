"""Helpers for the local cell's tests: an HTTP client that validates every XML answer, and
builders for the documents clients send."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import requests
from lxml import etree

from vcdext.vcloud.media import VCLOUD_NS, VMEXT_NS

ACCEPT = "application/*+xml;version=36.0"
NS = {"v": VCLOUD_NS, "x": VMEXT_NS}
SERVICE_TYPE = "application/vnd.vmware.admin.service+xml"


class Client:
    """``requests`` against the cell. Every XML body it receives is checked
    (``assert_valid_vcd_xml``: well-formed, vCloud namespaces, and the vCD schemas where they
    are found), so no test can forget to."""

    def __init__(self, base: str, validate: Callable[[bytes], None], accept: str = ACCEPT) -> None:
        self.base = base
        self.validate = validate
        self.http = requests.Session()
        self.http.headers["Accept"] = accept
        self.token = ""

    def login(self, login: str, password: str) -> Client:
        r = self.request("POST", "/api/sessions", auth=(login, password))
        assert r.status_code == 200, r.text
        self.token = r.headers["x-vcloud-authorization"]
        self.http.headers["x-vcloud-authorization"] = self.token
        return self

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def request(
        self, method: str, path: str, *, vcd_xml: bool = True, **kwargs: Any
    ) -> requests.Response:
        """``vcd_xml=False`` for a forwarded reply carrying the service's own XML."""
        r = self.http.request(method, self.url(path), timeout=30, **kwargs)
        ctype = r.headers.get("Content-Type", "")
        if r.content and "xml" in ctype and (vcd_xml or "vnd.vmware" in ctype):
            self.validate(r.content)
        assert "X-VMWARE-VCLOUD-REQUEST-ID" in r.headers
        return r

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(
        self, path: str, body: etree._Element | bytes | None = None, **kwargs: Any
    ) -> requests.Response:
        return self.request("POST", path, data=_bytes(body), **kwargs)

    def put(
        self, path: str, body: etree._Element | bytes | None = None, **kwargs: Any
    ) -> requests.Response:
        return self.request("PUT", path, data=_bytes(body), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def xml(
        self,
        method: str,
        path: str,
        body: etree._Element | None = None,
        status: int = 200,
        **kw: Any,
    ) -> etree._Element:
        """Send, check the status, and return the parsed answer."""
        r = self.request(method, path, data=_bytes(body), **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return etree.fromstring(r.content)


def _bytes(body: etree._Element | bytes | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return etree.tostring(body)


def E(tag: str, text: str | None = None, ns: str = VCLOUD_NS, /, **attrs: str) -> etree._Element:
    el = etree.Element(f"{{{ns}}}{tag}", nsmap={None: VCLOUD_NS, "vmext": VMEXT_NS})
    for key, value in attrs.items():
        el.set(key, value)
    el.text = text
    return el


def X(tag: str, text: str | None = None, /, **attrs: str) -> etree._Element:
    return E(tag, text, VMEXT_NS, **attrs)


def service_xml(
    name: str,
    namespace: str,
    *,
    routing_key: str = "rk",
    exchange: str = "vcdext",
    enabled: bool | None = True,
    patterns: Iterable[str] = (),
    links: Iterable[etree._Element] = (),
    priority: int | None = None,
    description: str | None = None,
) -> etree._Element:
    el = X("Service", name=name)
    if description is not None:
        el.append(E("Description", description))
    el.append(X("Namespace", namespace))
    if enabled is not None:
        el.append(X("Enabled", "true" if enabled else "false"))
    el.append(X("RoutingKey", routing_key))
    if priority is not None:
        el.append(X("Priority", str(priority)))
    el.append(X("Exchange", exchange))
    filters = X("ApiFilters")
    for p in patterns:
        f = X("ApiFilter")
        f.append(X("UrlPattern", p))
        filters.append(f)
    el.append(filters)
    if links:
        container = X("ServiceLinks")
        for link in links:
            container.append(link)
        el.append(container)
    return el


def link_xml(
    rel: str, href: str, mime: str, resource_type: str, resource_id: str | None = None
) -> etree._Element:
    el = X("ServiceLink")
    for tag, value in (
        ("LinkHref", href),
        ("MimeType", mime),
        ("Rel", rel),
        ("ResourceType", resource_type),
    ):
        el.append(X(tag, value))
    if resource_id is not None:
        el.append(X("ResourceId", resource_id))
    return el


def filter_xml(pattern: str) -> etree._Element:
    el = X("ApiFilter")
    el.append(X("UrlPattern", pattern))
    return el


def right_xml(
    name: str, category: str = "Hello", description: str = "", bundle_key: str = ""
) -> etree._Element:
    el = E("Right", name=name)
    el.append(E("Description", description))
    el.append(E("Category", category))
    el.append(E("BundleKey", bundle_key))
    return el


def link_href(doc: etree._Element, rel: str, mime: str | None = None) -> str:
    """The href of the one Link with that rel (and type)."""
    found = [
        x.get("href")
        for x in doc.findall("v:Link", NS)
        if x.get("rel") == rel and (mime is None or x.get("type") == mime)
    ]
    assert len(found) == 1, f"{len(found)} links rel={rel} type={mime}"
    return str(found[0])
