"""Forwarding a request that matched a service's API filter, as vCD does (protocol §2).

The message is the JSON array ``[request, securityContext]`` written by
:func:`vcdext.vcloud.message.encode_request` (with the cell's real addresses and ports), the
security context with the caller's user and org URNs and rights (URNs or names, per the seed's
``rights_format``). The reply's status, headers and decoded body become the HTTP answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence

from vcdext.errors import HTTPError, InternalServerError
from vcdext.vcloud.message import Reply, encode_request

from .forwarder import Forwarder, ForwardError, ForwardTimeout
from .http import Answer, Call, error_answer
from .model import Forwarded, Service
from .state import State

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not the request's.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_REPLY_SKIP = _HOP_BY_HOP | {"content-length", "date", "server"}


def request_message(call: Call, rights: Sequence[str], request_id: str) -> bytes:
    """The JSON message vCD publishes for ``call`` made in ``call.session`` with ``rights``."""
    session = call.session
    assert session is not None  # forwarding happens only after authentication
    return encode_request(
        call.method,
        call.path,
        request_id=request_id,
        headers={k: v for k, v in call.headers.items() if k.lower() not in _HOP_BY_HOP},
        body=call.body,
        query_string=call.query_string,
        user=session.user_urn,
        org=session.org_urn,
        rights=rights,
        scheme="http",
        local=call.local,
        remote=call.client,
    )


def gateway_timeout(service: Service, timeout: float) -> HTTPError:
    """vCD's 504 for a service that did not answer in time."""
    return HTTPError(
        f"External service '{service.name}' failed to respond in the specified timeout "
        f"({timeout:g} SECONDS)",
        status=504,
        minor_code="GATEWAY_TIMEOUT",
    )


def forward(
    call: Call,
    service: Service,
    *,
    state: State,
    forwarder: Forwarder,
    timeout: float,
    rights_format: str,
) -> Answer:
    """Send ``call`` to ``service`` and turn its reply into the answer; 504/500 on failure."""
    session = call.session
    assert session is not None  # forwarding happens only after authentication
    message = request_message(
        call,
        state.rights_of(session.user, rights_format),
        request_id=call.request_id or str(uuid.uuid4()),
    )
    started = time.monotonic()
    try:
        reply = forwarder.forward(service.exchange, service.routing_key, message, timeout)
    except ForwardTimeout:
        log.warning(
            "%s %s: %s did not answer within %g s", call.method, call.path, service.name, timeout
        )
        answer = error_answer(gateway_timeout(service, timeout))
    except ForwardError as exc:
        log.warning("%s %s: cannot send to %s: %s", call.method, call.path, service.name, exc)
        answer = error_answer(
            InternalServerError(
                f"Cannot send message to service with id: {service.id}. "
                "Check your service configuration."
            )
        )
    else:
        answer = reply_answer(reply)
    state.record_forwarded(
        Forwarded(
            call.method,
            call.path,
            service.name,
            answer.status,
            session.user_urn,
            round(time.monotonic() - started, 3),
        )
    )
    return answer


def reply_answer(reply: Reply) -> Answer:
    """The HTTP answer for a service's reply (over AMQP or MQTT): its status, its headers
    that are safe to copy, its body."""
    content_type = reply.headers.get("Content-Type")
    if content_type is not None and not _header_safe("Content-Type", content_type):
        content_type = None
    headers = {
        k: str(v)
        for k, v in reply.headers.items()
        if k.lower() not in _REPLY_SKIP and k.lower() != "content-type" and _header_safe(k, str(v))
    }
    return Answer(reply.status, reply.body, content_type, headers, versioned=False)


def _header_safe(name: str, value: str) -> bool:
    """A reply header the cell may copy into its HTTP response (no CR/LF: no injection)."""
    return not any(c in name + value for c in "\r\n\0") and ":" not in name
