"""The MQTT envelope of vCD's API extensions (vCD 10.2+, protocol notes §2 "MQTT variant").

vCD publishes each forwarded request on the extension's *monitor* topic as::

    {"type": "API_REQUEST"?, "headers": {"requestId": ..., ...},
     "httpRequest": base64(JSON {"message": {...the AMQP request fields...},
                                 "securityContext": {"user", "org", "rights",
                                                     "apiAccessToken", ...}})}

and takes the reply from the *respond* topic::

    {"type": "API_RESPONSE", "headers": {"requestId": ...},
     "httpResponse": {"statusCode", "headers": {"Content-Type", "Content-Length",
                                                 "Location"?}, "body": base64}}

The inner ``message`` holds the same fields as the AMQP request, so this module only converts
between the envelope and the AMQP message of :mod:`vcdext.vcloud.message`: the dispatcher
answers both transports with one decoder and one encoder. Pure: no I/O, no threads.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ProtocolError
from .message import Headers, Reply, decode_reply

#: The ``type`` of a reply to a forwarded API request.
API_RESPONSE = "API_RESPONSE"
_REQUEST_ID = re.compile(rb'"requestId"\s*:\s*"([^"\\]{1,256})"')
#: Where vCD serves MQTT over WebSocket (port 443, the API's own host).
BROKER_PATH = "/messaging/mqtt"


@dataclass(frozen=True)
class Topics:
    """An API extension's two topics, as vCD names them in ``mqttTopics``."""

    #: vCD publishes requests here; the extension subscribes.
    monitor: str
    #: The extension publishes replies here; vCD subscribes.
    respond: str


def extension_id(vendor: str, name: str, version: str) -> str:
    """The cloudapi id of an API extension: ``urn:vcloud:extension-api:<vendor>:<name>:<ver>``."""
    return f"urn:vcloud:extension-api:{vendor}:{name}:{version}"


def broker_username(vendor: str, name: str, version: str) -> str:
    """The MQTT user name an extension logs in with (its password is its extension token)."""
    return f"{vendor}/{name}/{version}"


def topics_of(vendor: str, name: str, version: str) -> Topics:
    """The topics vCD assigns to the extension ``vendor/name/version``."""
    base = f"topic/extension/{vendor}/{name}/{version}"
    return Topics(monitor=f"{base}/ext", respond=f"{base}/vcd")


@dataclass(frozen=True)
class Envelope:
    """One request envelope, opened."""

    request_id: str
    #: The request as an AMQP message body (``[message, securityContext]``), ready for
    #: :meth:`vcdext.Dispatcher.handle_message`.
    message: bytes
    #: The envelope's ``headers``, as vCD sent them.
    headers: Mapping[str, Any]


def open_request(payload: bytes) -> Envelope:
    """Read one request envelope.

    The caller's ``apiAccessToken`` becomes the request's ``Authorization: Bearer`` header when
    the request carries no ``Authorization`` of its own (what VMware's CSE does), so a handler
    calls vCD as the caller over either transport.

    :raises ProtocolError: anything that is not a readable request envelope.
    """
    try:
        doc = json.loads(payload.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ProtocolError("an MQTT request must be a JSON object")
        headers = doc.get("headers") or {}
        if not isinstance(headers, dict):
            raise ProtocolError("'headers' must be an object")
        request_id = headers.get("requestId")
        if not isinstance(request_id, str) or not request_id:
            raise ProtocolError("'headers.requestId' is missing")
        encoded = doc.get("httpRequest")
        if not isinstance(encoded, str):
            raise ProtocolError("'httpRequest' must be a base64 string")
        inner = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
        if not isinstance(inner, dict) or not isinstance(inner.get("message"), dict):
            raise ProtocolError("'httpRequest' must hold an object with 'message'")
        message = dict(inner["message"])
        context = inner.get("securityContext") or {}
        if not isinstance(context, dict):
            raise ProtocolError("'securityContext' must be an object")
        message.setdefault("id", request_id)
        token = context.get("apiAccessToken")
        request_headers = message.get("headers") or {}
        has_auth = isinstance(request_headers, dict) and any(
            str(k).lower() == "authorization" for k in request_headers
        )
        if isinstance(request_headers, dict) and isinstance(token, str) and token and not has_auth:
            message["headers"] = {**request_headers, "Authorization": f"Bearer {token}"}
        body = json.dumps([message, context], separators=(",", ":")).encode("utf-8")
        return Envelope(request_id, body, dict(headers))
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("MQTT request is nested too deeply") from None
    except Exception as exc:  # any other failure to read untrusted input is the sender's
        raise ProtocolError(f"MQTT request cannot be read ({type(exc).__name__})") from None


def request_id_in(payload: bytes, *, head_only: bool = False) -> str:
    """Best effort: ``headers.requestId`` of an envelope that failed to open ('' if none).

    :param head_only: look only for a ``"requestId": "..."`` in the first 4 KiB, without
        parsing the JSON (for a message too large to decode).
    """
    if head_only:
        found = _REQUEST_ID.search(payload[:4096])
        return found.group(1).decode("utf-8", "replace") if found else ""
    try:
        doc = json.loads(payload.decode("utf-8"))
        value = doc.get("headers", {}).get("requestId") if isinstance(doc, dict) else None
        return value if isinstance(value, str) else ""
    except Exception:  # there is no id to give
        return ""


def wrap_request(message: bytes, request_id: str) -> bytes:
    """The envelope vCD publishes for an AMQP-format request ``message`` (the local cell and
    the tests play vCD with it). The security context moves into ``securityContext``."""
    doc = json.loads(message.decode("utf-8"))
    request, context = (
        (doc[0], doc[1] if len(doc) > 1 else {}) if isinstance(doc, list) else (doc, {})
    )
    inner = {"message": request, "securityContext": context}
    encoded = base64.b64encode(json.dumps(inner, separators=(",", ":")).encode("utf-8"))
    envelope = {
        "type": "API_REQUEST",
        "headers": {"requestId": request_id},
        "httpRequest": encoded.decode("ascii"),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def encode_response(request_id: str, reply: Reply) -> bytes:
    """The ``API_RESPONSE`` for ``reply``; ``Content-Length`` is always the body's length."""
    headers: dict[str, Any] = {
        k: v for k, v in reply.headers.items() if k.lower() != "content-length"
    }
    headers["Content-Length"] = len(reply.body)
    doc = {
        "type": API_RESPONSE,
        "headers": {"requestId": request_id},
        "httpResponse": {
            "statusCode": reply.status,
            "headers": headers,
            "body": base64.b64encode(reply.body).decode("ascii"),
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def response_from_amqp(request_id: str, amqp_reply: bytes) -> bytes:
    """The ``API_RESPONSE`` carrying what an AMQP reply (from the dispatcher) says."""
    return encode_response(request_id, decode_reply(amqp_reply))


def decode_response(payload: bytes) -> Reply:
    """Read an ``API_RESPONSE``; its ``requestId`` becomes :attr:`Reply.id`.

    :raises ProtocolError: anything that is not a readable reply envelope.
    """
    try:
        doc = json.loads(payload.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("type") != API_RESPONSE:
            raise TypeError(f"'type' must be {API_RESPONSE}")
        headers = doc.get("headers") or {}
        response = doc.get("httpResponse")
        if not isinstance(headers, dict) or not isinstance(response, dict):
            raise TypeError("'headers' and 'httpResponse' must be objects")
        status = response["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError("'statusCode' must be a number")
        reply_headers = response.get("headers") or {}
        body = response.get("body") or ""
        if not isinstance(reply_headers, dict) or not isinstance(body, str):
            raise TypeError("'httpResponse.headers' must be an object, 'body' base64")
        return Reply(
            id=str(headers.get("requestId", "")),
            status=status,
            headers=Headers(reply_headers),
            body=base64.b64decode(body, validate=True),
        )
    except RecursionError:
        raise ProtocolError("not an MQTT API_RESPONSE: nested too deeply") from None
    except Exception as exc:  # any failure to read untrusted input
        raise ProtocolError(f"not an MQTT API_RESPONSE: {exc}") from None
