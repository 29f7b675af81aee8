"""An in-process test client for vcdext services."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .. import xml as _xml
from ..app import Runtime, create_runtime
from ..protocol import Headers, decode_reply, encode_request
from ..settings import Settings

#: The caller used when a test does not name one.
DEFAULT_USER = "urn:vcloud:user:00000000-0000-4000-8000-000000000001"
DEFAULT_ORG = "urn:vcloud:org:00000000-0000-4000-8000-0000000000aa"
DEFAULT_ACCEPT = "application/*+xml;version=5.1"

_ids = itertools.count(1)


@dataclass(frozen=True)
class TestResponse:
    """What vCD would hand back to its client."""

    __test__ = False  # not a pytest test class

    status: int
    headers: Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def xml(self) -> etree._Element:
        return _xml.parse(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


class TestClient:
    """Send requests to a runtime the way vCD forwards them, and read the replies.

    :param user, org, rights: the default security context of the requests.
    """

    __test__ = False

    def __init__(
        self,
        runtime: Runtime,
        *,
        user: str = DEFAULT_USER,
        org: str = DEFAULT_ORG,
        rights: Iterable[str] = (),
    ) -> None:
        self.runtime = runtime
        self.user, self.org, self.rights = user, org, tuple(rights)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        query: str | None = None,
        user: str | None = None,
        org: str | None = None,
        rights: Iterable[str] | None = None,
        routing_key: str | None = None,
    ) -> TestResponse:
        """Send one request through the real message encoding and dispatch path."""
        all_headers = {"Accept": DEFAULT_ACCEPT, **(headers or {})}
        data = body.encode("utf-8") if isinstance(body, str) else body
        message = encode_request(
            method,
            path,
            request_id=f"test-{next(_ids)}",
            headers=all_headers,
            body=data,
            query_string=query,
            user=self.user if user is None else user,
            org=self.org if org is None else org,
            rights=tuple(self.rights if rights is None else rights),
        )
        reply = decode_reply(self.runtime.handle_message(message, routing_key=routing_key))
        return TestResponse(reply.status, reply.headers, reply.body)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


def make_runtime(*plugins: Any, settings: Settings | None = None, **named: Any) -> Runtime:
    """A runtime with only the given plugin objects (no installed entry points).

    Positional plugins are named after their ``__name__``; keyword ones after the keyword.
    """
    pairs = [(getattr(p, "__name__", repr(p)).rsplit(".", 1)[-1], p) for p in plugins]
    pairs += list(named.items())
    return create_runtime(settings, plugins=pairs, autoload=False)
