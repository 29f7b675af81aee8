"""Fixtures for the vCD client tests: a fake vCD, clients logged in to it, services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.vcd.fake_vcd import HOST, PASSWORD, FakeVcd
from vcdext.registry import Registrar, Service, build_registry
from vcdext.vcd.client import VcdClient


@pytest.fixture
def fake() -> Iterator[FakeVcd]:
    """A fresh fake vCD; the test fails if the client sent it anything malformed."""
    vcd = FakeVcd()
    yield vcd
    assert not vcd.problems, "the client sent malformed requests:\n" + "\n".join(vcd.problems)


@pytest.fixture
def make_client(fake: FakeVcd) -> Callable[..., VcdClient]:
    """``make_client(**overrides)``: a client of the fake (not yet connected), no backoff."""

    def make(**overrides: Any) -> VcdClient:
        options: dict[str, Any] = {
            "username": "administrator",
            "password": PASSWORD,
            "session": fake.session(),
            "backoff": 0.0,
        }
        options.update(overrides)
        url = options.pop("url", HOST)
        return VcdClient(url, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., VcdClient]) -> Iterator[VcdClient]:
    """A client logged in to the fake."""
    vcd = make_client()
    vcd.connect()
    yield vcd
    vcd.close()


def _handler(request: Any, **path_params: str) -> None:
    return None


def make_service(
    plugin: str = "demo",
    *,
    namespace: str = "io.example.demo",
    paths: tuple[str, ...] = ("/api/demo", "/api/demo/{id}"),
    rights: tuple[tuple[str, str, str, str], ...] = (
        ("View Demo", "See the demo", "Demo", "RIGHT_VIEW_DEMO"),
    ),
    links: tuple[dict[str, str], ...] = (
        {
            "rel": "down",
            "href": "{baseUri}org/{resourceId}/demo",
            "mime_type": "application/vnd.example.demo+xml",
            "resource_type": "application/vnd.vmware.vcloud.org+xml",
        },
    ),
    vendor: str = "Example",
    description: str = "A demo service",
    priority: int = 50,
    routing_key: str | None = None,
) -> Service:
    """A service declared through the public Registrar, as a plugin would."""

    def register(r: Registrar) -> None:
        r.service(
            name=plugin,
            namespace=namespace,
            vendor=vendor,
            description=description,
            priority=priority,
            routing_key=routing_key,
        )
        for path in paths:
            r.add_operation("GET", path, _handler)
        for name, text, category, key in rights:
            r.add_right(name, description=text, category=category, bundle_key=key)
        for link in links:
            r.add_link(**link)

    return build_registry([(plugin, register)], lambda name: {}).services[plugin]


@pytest.fixture
def service_factory() -> Callable[..., Service]:
    return make_service


#: The children of a vmext:Service create body, in the order services.xsd requires.
SERVICE_CHILD_ORDER = [
    "Description",
    "Namespace",
    "Enabled",
    "AuthorizationEnabled",
    "RoutingKey",
    "Priority",
    "Exchange",
    "Vendor",
    "ApiFilters",
    "ServiceLinks",
]
