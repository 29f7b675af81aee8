"""MQTT registration before API 37.3: API filters through the extension's legacy admin
service, found in the Link header of the extension (what CSE does). A recording stand-in
for the client: the local cell speaks the cloudapi filters only."""

from __future__ import annotations

from typing import Any

from lxml import etree

import vcdext_hello.plugin as hello
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.vcd.extension_prune import prune_extensions
from vcdext.vcd.extensions import ExtensionRegistration, register_extensions
from vcdext.vcd.model import compose_description
from vcdext.vcd.tokens import TokenFile
from vcdext.vcloud import media
from vcdext.vcloud.mqtt import extension_id

EXT = extension_id("vcdext", "hello", "1.0.0")
UUID = "5d1e5a4c-0b8e-4c8a-9d0f-8f0b0f7e2a11"
SERVICE = f"https://vcd.example.com/api/admin/extension/service/{UUID}"
TOKEN = "urn:vcloud:token:7"


class Recorder:
    api_version = "36.0"

    def __init__(self, patterns: list[str], description: str) -> None:
        self.patterns = patterns
        self.description = description
        self.calls: list[tuple[str, str]] = []

    def cloudapi(self, method: str, path: str, body: Any = None, **kw: Any):
        self.calls.append((method, path))
        if path == "1.0.0/extensions/api" and method == "GET":
            doc = {"vendor": "vcdext", "name": "hello", "version": "1.0.0", "id": EXT}
            doc |= {"priority": 50, "enabled": True, "description": self.description}
            return {"values": [doc], "pageCount": 1}, {}
        if path == f"1.0.0/extensions/api/{EXT}" and method == "GET":
            return {}, {"Link": f'<{SERVICE}>;rel="alternate";type="application/xml"'}
        if path == "1.0.0/tokens":
            token = {"id": TOKEN, "name": "vcdext-hello", "owner": {"name": "vcdext/hello/1.0.0"}}
            return {"values": [token], "pageCount": 1}, {}
        if method in ("PUT", "DELETE") and path in (
            f"1.0.0/extensions/api/{EXT}",
            f"1.0.0/tokens/{TOKEN}",
        ):
            return None, {}
        raise AssertionError(f"unexpected {method} {path}")

    def read(self, href: str, reader: Any) -> Any:
        """The legacy service (namespace ``vcdext.hello``) holds no rights yet."""
        self.calls.append(("GET", href))
        if href.endswith("/rights"):
            return reader(f'<vmext:RightRefs xmlns:vmext="{media.VMEXT_NS}"/>'.encode())
        doc = (
            f'<vmext:Service xmlns:vmext="{media.VMEXT_NS}" name="hello" href="{SERVICE}">'
            "<vmext:Namespace>vcdext.hello</vmext:Namespace><vmext:Enabled>true</vmext:Enabled>"
            "<vmext:RoutingKey></vmext:RoutingKey><vmext:Exchange></vmext:Exchange>"
            "</vmext:Service>"
        )
        return reader(doc.encode())

    def records(self, href: str):
        self.calls.append(("GET", href))
        if not href.endswith("/apifilters"):
            return
        for i, pattern in enumerate(self.patterns):
            yield etree.Element(
                "ApiFilterRecord",
                urlPattern=pattern,
                href=f"{SERVICE}/apifilter/{i}",
                id=f"urn:vcloud:apiFilter:{i}",
            )

    def post(self, href: str, body: etree._Element, media_type: str) -> None:
        self.calls.append(("POST", href))
        if media_type == media.API_FILTER:
            self.patterns.append(body.findtext(f"{{{media.VMEXT_NS}}}UrlPattern"))

    def delete(self, href: str) -> None:
        self.calls.append(("DELETE", href))


def test_legacy_filters_are_added_and_removed_through_the_admin_service(tmp_path) -> None:
    settings = load_settings(
        None,
        environ={
            "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
            "VCDEXT_MQTT_TOKEN_FILE": str(tmp_path / "t.json"),
        },
    )
    (tmp_path / "t.json").write_text(f'{{"{EXT}": "tok"}}')
    services = make_runtime(hello=hello, settings=settings).registry.services.values()
    service = next(iter(services))
    wanted = service.api_filters
    client = Recorder([wanted[0], "/api/stale"], compose_description(service.description))
    result = register_extensions(client, services, settings)  # type: ignore[arg-type]
    steps = [(s.verb, s.subject, s.detail) for _, s in result.steps if s.subject == "api filter"]
    assert steps == [
        *(("add", "api filter", p) for p in wanted[1:]),
        ("remove", "api filter", "/api/stale"),
    ]
    assert ("POST", f"/api/admin/extension/service/{UUID}/apifilters") in client.calls
    assert ("DELETE", f"{SERVICE}/apifilter/1") in client.calls
    assert not any(path == "1.0.0/apiFilters" for _, path in client.calls)
    # The right goes to the same admin service, named with the namespace vCD gave it.
    assert ("POST", f"{SERVICE}/rights") in client.calls
    assert ("add", "right", "{vcdext.hello}:View Org Greeting") in [
        (s.verb, s.subject, s.detail) for _, s in result.steps
    ]


def test_prune_before_api_37_3_removes_the_legacy_filters_through_their_hrefs(tmp_path) -> None:
    tokens = TokenFile(str(tmp_path / "t.json"))
    tokens.store(EXT, "tok")
    tokens.store("urn:vcloud:extension-api:a:b:1", "other")
    client = Recorder(["/api/hello", "/api/old"], compose_description("Greets"))
    result = ExtensionRegistration()
    prune_extensions(client, [], tokens, result)  # type: ignore[arg-type]
    assert [(s.verb, s.detail) for _, s in result.steps] == [
        ("delete", "vcdext/hello/1.0.0 (disable, then delete; --prune)"),
        ("remove", "/api/hello"),
        ("remove", "/api/old"),
        ("delete", "vcdext-hello of vcdext/hello/1.0.0"),
    ]
    assert [c for c in client.calls if c[0] != "GET"] == [
        ("PUT", f"1.0.0/extensions/api/{EXT}"),
        ("DELETE", f"{SERVICE}/apifilter/0"),
        ("DELETE", f"{SERVICE}/apifilter/1"),
        ("DELETE", f"1.0.0/tokens/{TOKEN}"),
        ("DELETE", f"1.0.0/extensions/api/{EXT}"),
    ]
    assert tokens.read() == {"urn:vcloud:extension-api:a:b:1": "other"}


def test_prune_keeps_a_declared_or_unmarked_extension(tmp_path) -> None:
    tokens = TokenFile(str(tmp_path / "t.json"))
    for description, keep in (
        (compose_description("Greets"), [("vcdext", "hello", "1.0.0")]),
        ("Greets", []),
    ):
        client = Recorder(["/api/hello"], description)
        result = ExtensionRegistration()
        prune_extensions(client, keep, tokens, result)  # type: ignore[arg-type]
        assert result.steps == []
        assert client.calls == [("GET", "1.0.0/extensions/api")]
