"""vCD's side of the AMQP conversation, for tests and benchmarks.

It declares its own reply exchange and queue (as a vCD cell does), publishes requests the way
vCD does (properties ``correlation_id``/``reply_to``, headers ``replyToExchange`` and
``messageType``) and collects the replies by correlation id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from vcdext.protocol import encode_request


@dataclass
class Received:
    correlation_id: str
    routing_key: str
    exchange: str
    doc: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.doc["statusCode"])

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.doc["body"])


class VcdSide:
    """One vCD cell's connection: publish requests, wait for replies."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.reply_exchange = f"vcd-reply-{uuid.uuid4().hex[:8]}"
        self.reply_key = f"cell-{uuid.uuid4().hex[:8]}"
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        rx = Exchange(self.reply_exchange, type="direct", durable=False, auto_delete=False)
        self.reply_queue = Queue(
            self.reply_key, rx, routing_key=self.reply_key, exclusive=True, auto_delete=True
        )
        self.reply_queue(self.channel).declare()
        self.replies: dict[str, Received] = {}
        self.consumer = Consumer(
            self.channel, [self.reply_queue], on_message=self._on_reply, accept=None
        )
        self.consumer.consume()
        self.producer = Producer(self.channel)

    def _on_reply(self, message: Any) -> None:
        info = message.delivery_info
        self.replies[message.properties.get("correlation_id")] = Received(
            message.properties.get("correlation_id"),
            info["routing_key"],
            info["exchange"],
            json.loads(message.body),
        )
        message.ack()

    def publish_raw(
        self,
        body: bytes,
        routing_key: str,
        *,
        correlation_id: str | None = None,
        reply: bool = True,
    ) -> str:
        cid = correlation_id or uuid.uuid4().hex
        headers = {"messageType": "ProcessHttpRequest"}
        kwargs: dict[str, Any] = {}
        if reply:
            headers["replyToExchange"] = self.reply_exchange
            kwargs["reply_to"] = self.reply_key
        self.producer.publish(
            body,
            exchange=self.exchange,
            routing_key=routing_key,
            correlation_id=cid,
            headers=headers,
            content_type="application/json",
            **kwargs,
        )
        return cid

    def request(self, method: str, path: str, routing_key: str, **kwargs: Any) -> str:
        body = encode_request(method, path, request_id=f"req-{uuid.uuid4().hex[:8]}", **kwargs)
        return self.publish_raw(body, routing_key)

    def wait(self, *correlation_ids: str, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while any(c not in self.replies for c in correlation_ids):
            if time.monotonic() > deadline:
                missing = [c for c in correlation_ids if c not in self.replies]
                raise TimeoutError(f"no reply for {missing}")
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.2)
        return [self.replies[c] for c in correlation_ids]

    def close(self) -> None:
        self.conn.release()
