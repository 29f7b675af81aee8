"""The JSON message of vCD's AMQP extension protocol, both directions (protocol notes §2, §11).

vCD publishes each forwarded request as a JSON array: ``[0]`` the HTTP request, ``[1]`` the
caller's security context; further elements are tolerated and kept. The reply is a JSON object
``{"id", "headers", "statusCode", "body" (base64), "request": false}``. See
``docs/protocol.md`` for each field and the readings we chose where vCD's documentation is silent.

This module is the only place that writes or reads either message: the runtime decodes requests
and encodes replies with it; the local cell and the test client encode requests and decode
replies with it. Pure: no I/O, no threads.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from .. import xml as _xml
from ..errors import BadRequest, PayloadTooLarge, ProtocolError

JSON = Any

#: Headers whose values are credentials: masked in reprs (and so in logs and tracebacks).
_SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-vcloud-authorization",
        "cookie",
        "set-cookie",
        "x-vmware-vcloud-access-token",
    }
)


class Headers(MutableMapping[str, str]):
    """HTTP headers with case-insensitive names that keep the spelling they were given."""

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self[name] = value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: Any) -> None:
        self._items[name.lower()] = (name, str(value))

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = {
            name: "********" if name.lower() in _SENSITIVE_HEADERS else value
            for name, value in self.items()
        }
        return f"Headers({shown!r})"


@dataclass(frozen=True)
class SecurityContext:
    """Who is calling, as vCD states it in the message: user and org URNs and their rights.

    ``rights`` holds the entries as vCD sent them (right URNs, or names such as
    ``{io.vcdext.hello}:View Greeting``); see :meth:`vcdext.Operation.rights`.
    """

    user: str = ""
    org: str = ""
    rights: frozenset[str] = frozenset()
    #: Every key vCD sent, including ones vcdext does not interpret.
    raw: Mapping[str, JSON] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Request:
    """One forwarded HTTP request."""

    id: str
    method: str
    path: str
    query_string: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    security: SecurityContext = field(default_factory=SecurityContext)
    #: Named parameters of the matched path template (filled in by dispatch).
    path_params: dict[str, str] = field(default_factory=dict)
    #: Every field of the request element vCD sent, including unknown ones.
    raw: Mapping[str, JSON] = field(default_factory=dict, repr=False)

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters, lower-case ('' if none)."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string parsed into lists of values."""
        return parse_qs(self.query_string, keep_blank_values=True)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; undecodable bytes are a 400."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Request body is not valid UTF-8") from None

    def xml(self) -> etree._Element:
        """The body parsed as XML with the hardened parser, within vCD's own request limits
        (:data:`vcdext.xml.REQUEST_BUDGET`); malformed XML is a 400, an oversized one 413."""
        if not self.body.strip():
            raise BadRequest("An XML request body is required")
        return _xml.parse(self.body, budget=_xml.REQUEST_BUDGET)

    def json(self) -> JSON:
        """The body parsed as JSON; malformed JSON is a 400."""
        if len(self.body) > _xml.REQUEST_MAX_BYTES:
            raise PayloadTooLarge(f"JSON body is larger than {_xml.REQUEST_MAX_BYTES} bytes")
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"Malformed JSON: {exc.msg}") from None
        except (RecursionError, ValueError) as exc:  # nesting too deep, bad numbers
            raise BadRequest(f"Malformed JSON: {type(exc).__name__}") from None


@dataclass(frozen=True)
class Reply:
    """The reply message: what vCD hands back to its client.

    The dispatcher builds one per request, without ``id`` (:func:`encode_reply` is given the
    request's); :func:`decode_reply` reads one back, with its ``id`` and case-insensitive
    :class:`Headers`.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    #: The ``id`` of the request it answers ('' when the request had none or was unreadable).
    id: str = ""


# -- the request ------------------------------------------------------------------------------


def encode_request(
    method: str,
    path: str,
    *,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    query_string: str | None = None,
    user: str = "",
    org: str = "",
    rights: Sequence[str] = (),
    scheme: str = "https",
    local: tuple[str, int] = ("127.0.0.1", 443),
    remote: tuple[str, int] = ("127.0.0.1", 50000),
) -> bytes:
    """A request message exactly as vCD publishes it (example E2 of the protocol notes).

    ``local`` and ``remote`` are the (address, port) of vCD's HTTP listener and of its client.
    """
    request = {
        "id": request_id,
        "method": method.upper(),
        "scheme": scheme,
        "protocol": "HTTP/1.1",
        "headers": dict(headers or {}),
        "queryString": query_string or None,
        "localPort": local[1],
        "remoteAddr": remote[0],
        "remotePort": remote[1],
        "localAddr": local[0],
        "request": True,
        "requestUri": path,
        "body": base64.b64encode(body).decode("ascii"),
    }
    context = {"user": user, "org": org, "rights": list(rights)}
    return json.dumps([request, context], separators=(",", ":")).encode("utf-8")


def decode_request(data: bytes) -> Request:
    """Read one vCD message body into a :class:`Request`.

    :raises ProtocolError: for anything that is not a readable request message, whatever went
        wrong while reading it (bad JSON, JSON nested too deeply, wrong types, bad base64...).
    """
    try:
        return _decode_request(data)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("message body is nested too deeply") from None
    except Exception as exc:  # any other failure to read untrusted input is the sender's
        raise ProtocolError(f"message body cannot be read ({type(exc).__name__})") from None


def _decode_request(data: bytes) -> Request:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"message body is not UTF-8 JSON ({exc})") from None
    req, ctx = _split_request_element(doc)
    method = _as_str(req.get("method"), "method").upper()
    uri = _as_str(req.get("requestUri"), "requestUri")
    if not method or not uri:
        raise ProtocolError("request needs 'method' and 'requestUri'")
    query = _as_str(req.get("queryString"), "queryString")
    parts = urlsplit(uri)
    path = parts.path or "/"
    if parts.query and not query:
        query = parts.query
    headers = req.get("headers") or {}
    if not isinstance(headers, dict):
        raise ProtocolError("request field 'headers' must be an object")
    body_field = req.get("body") or ""
    if not isinstance(body_field, str):
        raise ProtocolError("request field 'body' must be a base64 string")
    try:
        body = base64.b64decode(body_field, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("request field 'body' is not valid base64") from None
    security = SecurityContext(
        user=_as_str(ctx.get("user"), "user"),
        org=_as_str(ctx.get("org"), "org"),
        rights=_rights(ctx.get("rights")),
        raw=dict(ctx),
    )
    return Request(
        id=_as_str(req.get("id"), "id"),
        method=method,
        path=path,
        query_string=query,
        headers=Headers(headers),
        body=body,
        security=security,
        raw=dict(req),
    )


def request_id_of(data: bytes) -> str:
    """Best effort: the request id inside a message that failed to decode ('' if none).

    Never raises, whatever ``data`` holds.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
        req = doc[0] if isinstance(doc, list) and doc else doc
        value = req.get("id") if isinstance(req, dict) else None
        return value if isinstance(value, str) else ""
    except Exception:  # RecursionError, ValueError, MemoryError...: there is no id to give
        return ""


def _as_str(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int):
        return str(value)
    raise ProtocolError(f"request field {name!r} must be a string, got {type(value).__name__}")


def _split_request_element(doc: JSON) -> tuple[Mapping[str, JSON], Mapping[str, JSON]]:
    if isinstance(doc, list):
        if not doc or not isinstance(doc[0], dict):
            raise ProtocolError("message array must start with the request object")
        first: Mapping[str, JSON] = doc[0]
        second = doc[1] if len(doc) > 1 and isinstance(doc[1], dict) else {}
        return first, second
    if isinstance(doc, dict):
        # Tolerant reading of the docs' "JSON object": a bare request, optionally with its
        # security context under "securityContext".
        nested = doc.get("securityContext")
        return doc, nested if isinstance(nested, dict) else {}
    raise ProtocolError("message must be a JSON array or object")


def _rights(value: JSON) -> frozenset[str]:
    out: set[str] = set()
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, str):
            out.add(entry)
        elif isinstance(entry, dict):
            out.update(str(entry[k]) for k in ("id", "name", "href") if entry.get(k))
    return frozenset(out)


# -- the reply --------------------------------------------------------------------------------


def encode_reply(request_id: str, status: int, headers: Mapping[str, str], body: bytes) -> bytes:
    """The JSON reply vCD expects (example E3); ``Content-Length`` is always the body's length."""
    out: dict[str, Any] = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    out["Content-Length"] = len(body)
    doc = {
        "id": request_id,
        "headers": out,
        "statusCode": status,
        "body": base64.b64encode(body).decode("ascii"),
        "request": False,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def decode_reply(data: bytes) -> Reply:
    """Read a reply produced by :func:`encode_reply` (or by any vCD extension service).

    :raises ProtocolError: for anything that is not a readable reply message.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict):
            raise TypeError("a reply must be a JSON object")
        headers = doc.get("headers")
        headers = {} if headers is None else headers
        if not isinstance(headers, dict):
            raise TypeError("'headers' must be an object")
        status = doc["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int | str):
            raise TypeError("'statusCode' must be a number")
        body = doc.get("body") or ""
        if not isinstance(body, str):
            raise TypeError("'body' must be a base64 string")
        return Reply(
            id=str(doc.get("id", "")),
            status=int(status),
            headers=Headers(headers),
            body=base64.b64decode(body, validate=True),
        )
    except RecursionError:
        raise ProtocolError("not a vCD extension reply: nested too deeply") from None
    except Exception as exc:  # any failure to read untrusted input
        raise ProtocolError(f"not a vCD extension reply: {exc}") from None
