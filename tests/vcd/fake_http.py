"""The HTTP side of the fake vCD: recorded documents, recorded calls, a ``requests`` adapter."""

from __future__ import annotations

import http
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from lxml import etree
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

RECORDED = Path(__file__).parent / "recorded"

_TEMPLATES: dict[str, str] = {}


def recorded(name: str) -> str:
    """The text of a recorded document."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = (RECORDED / name).read_text(encoding="utf-8")
    return _TEMPLATES[name]


@dataclass
class Call:
    """One request the fake received."""

    method: str
    url: str
    headers: CaseInsensitiveDict[str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class VcdFault(Exception):
    def __init__(self, status: int, minor: str, message: str) -> None:
        super().__init__(message)
        self.status, self.minor, self.message = status, minor, message


class FakeAdapter(BaseAdapter):
    """Sends every request of a ``requests`` session to a handler."""

    def __init__(self, handle: Callable[[requests.PreparedRequest], Answer]) -> None:
        super().__init__()
        self.handle = handle
        #: When set, every request fails as if vCD refused the connection.
        self.unreachable: Callable[[], bool] = lambda: False

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        if self.unreachable():
            raise requests.exceptions.ConnectionError(
                "HTTPSConnectionPool(host='vcd.example.com', port=443): Max retries exceeded "
                "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection>: Failed to "
                "establish a new connection: [Errno 111] Connection refused'))"
            )
        answer = self.handle(request)
        response = requests.Response()
        response.status_code = answer.status
        response.reason = http.HTTPStatus(answer.status).phrase
        headers = dict(answer.headers)
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        response.headers = CaseInsensitiveDict(headers)
        response._content = answer.body
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass
