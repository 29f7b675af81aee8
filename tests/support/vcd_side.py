"""vCD's side of the AMQP conversation, for tests and benchmarks: the local cell's publisher.

The publishing itself (reply exchange and queue, properties ``correlation_id``/``reply_to``,
headers ``replyToExchange``/``messageType``, collecting replies by correlation id) is the cell's
:class:`~vcdext_cell.forwarder.Forwarder`; the request message is written by
:mod:`vcdext.vcloud.message`. This adapter only keeps the replies by correlation id, so that a
test can publish several requests and wait for them in any order.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from vcdext.vcloud.message import encode_request
from vcdext_cell.forwarder import REPLY_EXCHANGE, Delivery, Forwarder


@dataclass(frozen=True)
class Received:
    """One reply as vCD received it."""

    delivery: Delivery

    @property
    def correlation_id(self) -> str:
        return self.delivery.correlation_id

    @property
    def exchange(self) -> str:
        return self.delivery.exchange

    @property
    def routing_key(self) -> str:
        return self.delivery.routing_key

    @property
    def doc(self) -> dict[str, Any]:
        """The reply message as JSON."""
        doc: dict[str, Any] = json.loads(self.delivery.body)
        return doc

    @property
    def status(self) -> int:
        return self.delivery.reply().status

    @property
    def body(self) -> bytes:
        return self.delivery.reply().body


class VcdSide:
    """One vCD cell's connection (a started :class:`Forwarder`): publish requests, wait for
    replies."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.forwarder = Forwarder(url)
        self.forwarder.start()
        self.reply_exchange = REPLY_EXCHANGE
        self.reply_key = self.forwarder.reply_queue_name
        self._sent: dict[str, Future[Delivery]] = {}

    @property
    def replies(self) -> dict[str, Received]:
        """The replies received so far, by correlation id."""
        return {
            cid: Received(f.result())
            for cid, f in list(self._sent.items())
            if f.done() and f.exception() is None
        }

    def publish_raw(
        self,
        body: bytes,
        routing_key: str,
        *,
        correlation_id: str | None = None,
        reply: bool = True,
        headers: dict[str, Any] | None = None,
        **properties: Any,
    ) -> str:
        """Publish ``body`` as vCD does; ``reply=False`` leaves out the reply address.

        ``headers`` and ``properties`` are added to (or replace) the ones vCD sets.
        """
        cid = correlation_id or uuid.uuid4().hex
        if not reply:
            headers = {**(headers or {}), "replyToExchange": None}
            properties["reply_to"] = None
        self._sent[cid] = self.forwarder.send(
            self.exchange,
            routing_key,
            body,
            correlation_id=cid,
            headers=headers,
            properties=properties,
        )
        return cid

    def request(self, method: str, path: str, routing_key: str, **kwargs: Any) -> str:
        body = encode_request(method, path, request_id=f"req-{uuid.uuid4().hex[:8]}", **kwargs)
        return self.publish_raw(body, routing_key)

    def wait(self, *correlation_ids: str, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        received = []
        for cid in correlation_ids:
            try:
                delivery = self._sent[cid].result(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                missing = [c for c in correlation_ids if not self._sent[c].done()]
                raise TimeoutError(f"no reply for {missing}") from None
            received.append(Received(delivery))
        return received

    def close(self) -> None:
        self.forwarder.stop()
