"""vCD's side of the AMQP conversation, for tests and benchmarks: the local cell's publisher.

The publishing itself (reply exchange and queue, properties ``correlation_id``/``reply_to``,
headers ``replyToExchange``/``messageType``, collecting replies by correlation id) is the cell's
:class:`~vcdext_cell.forwarder.Forwarder`; the request message is written by
:mod:`vcdext.vcloud.message`. This adapter only keeps the replies by correlation id, so that a
test can publish several requests and wait for them in any order. Through the forwarder's
``on_delivery`` hook it also keeps every delivery with its arrival time (a second reply to the
same correlation id included), for the tests that count requests answered twice or measure
latencies.
"""

from __future__ import annotations

import json
import threading
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
    #: When it arrived (:func:`time.monotonic`).
    arrived: float

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
        self._changed = threading.Condition()
        self._sent: dict[str, Future[Delivery]] = {}
        self._deliveries: dict[str, list[Received]] = {}
        self.forwarder = Forwarder(url, on_delivery=self._record)
        self.forwarder.start()
        self.reply_exchange = REPLY_EXCHANGE
        self.reply_key = self.forwarder.reply_queue_name

    def _record(self, delivery: Delivery) -> None:
        """The forwarder's ``on_delivery`` hook (its thread): keep every delivery."""
        with self._changed:
            received = Received(delivery, time.monotonic())
            self._deliveries.setdefault(delivery.correlation_id, []).append(received)
            self._changed.notify_all()

    def _settled(self, _: Future[Delivery]) -> None:
        with self._changed:
            self._changed.notify_all()

    @property
    def replies(self) -> dict[str, Received]:
        """The first reply received for each correlation id so far (a copy)."""
        with self._changed:
            return {cid: got[0] for cid, got in self._deliveries.items()}

    def deliveries(self, correlation_id: str) -> list[Received]:
        """Every reply received for ``correlation_id`` so far, in arrival order (a copy)."""
        with self._changed:
            return list(self._deliveries.get(correlation_id, ()))

    def forget(self, *correlation_ids: str) -> None:
        """Drop what was sent and received for ``correlation_ids`` (default: everything);
        a reply that comes later is recorded afresh."""
        with self._changed:
            for cid in correlation_ids or list({*self._sent, *self._deliveries}):
                self._sent.pop(cid, None)
                self._deliveries.pop(cid, None)
                self.forwarder.forget(cid)

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
        future = self.forwarder.send(
            self.exchange,
            routing_key,
            body,
            correlation_id=cid,
            headers=headers,
            properties=properties,
        )
        with self._changed:
            self._sent[cid] = future
        future.add_done_callback(self._settled)
        return cid

    def request(self, method: str, path: str, routing_key: str, **kwargs: Any) -> str:
        body = encode_request(method, path, request_id=f"req-{uuid.uuid4().hex[:8]}", **kwargs)
        return self.publish_raw(body, routing_key)

    def wait(self, *correlation_ids: str, timeout: float = 30.0) -> list[Received]:
        """The first reply of each correlation id, waiting up to ``timeout`` seconds in all.

        :raises TimeoutError: some did not come in time.
        :raises ForwardError: the broker refused one of the requests.
        """
        return [got[0] for got in self._wait_for(correlation_ids, 1, timeout)]

    def wait_deliveries(
        self, correlation_id: str, count: int, timeout: float = 30.0
    ) -> list[Received]:
        """The first ``count`` replies to ``correlation_id`` (a request answered again after
        its redelivery), waiting up to ``timeout`` seconds."""
        (got,) = self._wait_for((correlation_id,), count, timeout)
        return got[:count]

    def _wait_for(
        self, correlation_ids: tuple[str, ...], count: int, timeout: float
    ) -> list[list[Received]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                missing = [c for c in correlation_ids if len(self._deliveries.get(c, ())) < count]
                if not missing:
                    return [list(self._deliveries[c]) for c in correlation_ids]
                for cid in missing:
                    future = self._sent.get(cid)
                    failure = future.exception() if future is not None and future.done() else None
                    if failure is not None:
                        raise failure
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply (or fewer than {count}) for {missing}")
                self._changed.wait(left)

    def close(self) -> None:
        self.forwarder.stop()
