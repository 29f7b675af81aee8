"""What a handler answers (:class:`Response`), and the message names it is used with.

The vCD message itself (the request array and the reply object, their encoding and decoding)
is written once, in :mod:`vcdext.vcloud.message`; its names are re-exported here so that
``from vcdext.protocol import Request, decode_request, ...`` keeps working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lxml import etree

from . import xml as _xml
from .vcloud.message import (
    JSON,
    Headers,
    Reply,
    Request,
    SecurityContext,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    request_id_of,
)

__all__ = [
    "JSON",
    "Headers",
    "Reply",
    "Request",
    "Response",
    "SecurityContext",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "request_id_of",
]


@dataclass
class Response:
    """What a handler answers: status, body and headers.

    ``content_type`` defaults to the operation's first ``produces`` media type.
    """

    body: bytes | str = b""
    status: int = 200
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def xml(
        cls, element: etree._Element, *, status: int = 200, content_type: str | None = None
    ) -> Response:
        """A response carrying ``element`` serialised as an XML document."""
        return cls(_xml.tostring(element), status=status, content_type=content_type)

    @classmethod
    def json(
        cls, document: JSON, *, status: int = 200, content_type: str | None = None
    ) -> Response:
        """A response carrying ``document`` (``dict``, ``list``, …) serialised as JSON.

        ``content_type`` defaults to the negotiated type when it is JSON (``…+json``), else
        ``application/json``.
        """
        body = json.dumps(document, default=str).encode("utf-8")
        return cls(body, status=status, content_type=content_type or _json_type())

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


def _json_type() -> str:
    from .context import _current  # the negotiated type of the request being handled

    context = _current.get(None)
    return context.content_type if context is not None and context.wants_json else JSON_TYPE


JSON_TYPE = "application/json"
