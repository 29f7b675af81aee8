"""The AMQP request/reply loop (kombu).

Threads, and who owns what::

    consumer thread  owns the consuming connection: declares the topology, receives
                     requests, keeps heartbeats going, and is the only one to ack/reject.
    worker pool      runs the dispatcher (handlers); never touches a connection.
    publisher thread owns a second connection (publisher confirms) and publishes replies.

A request is acknowledged only after the broker has confirmed its reply (reply, then ack), so a
crash between the two makes the broker redeliver the request instead of losing it. Prefetch is
bounded, so the consumer never holds more requests than the pool can work through, and a slow
handler can never starve the consumer thread or its heartbeats.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer, Producer

from ..errors import VcdExtError
from ..runtime import Runtime
from ..settings import mask_secret

log = logging.getLogger(__name__)

# How long the consumer thread blocks waiting for the broker before it settles finished
# requests. Acks are issued only by this thread, and with prefetch exhausted no new delivery
# wakes it, so while requests are in flight it polls often; idle, it can sleep longer.
_POLL_BUSY = 0.002
_POLL_IDLE = 0.1


class TransportError(VcdExtError):
    """The broker refused our topology or could not be reached for good."""


@dataclass(frozen=True)
class _Reply:
    generation: int
    tag: int
    exchange: str
    routing_key: str
    correlation_id: str | None
    body: bytes
    redelivered: bool


class AmqpServer:
    """Serves every service of ``runtime`` over AMQP until :meth:`stop` is called.

    :param url: broker URL (default ``amqp.url``); ``memory://`` works for in-process use.
    """

    def __init__(self, runtime: Runtime, *, url: str | None = None) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.url = url or settings.amqp.url
        self.exchange = Exchange(settings.amqp.exchange, type="direct", durable=True)
        self.prefetch = settings.prefetch
        self.workers = settings.runtime.workers
        self.heartbeat = settings.amqp.heartbeat
        self.reply_ttl = settings.runtime.timeout
        self.queues = [
            Queue(s.routing_key, self.exchange, routing_key=s.routing_key, durable=True)
            for s in runtime.registry.services.values()
        ]
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._replies: queue.Queue[_Reply | None] = queue.Queue()
        self._settled: queue.Queue[tuple[int, int, str]] = queue.Queue()
        self._inflight: dict[int, Message] = {}
        self._generation = 0
        self._pool: ThreadPoolExecutor | None = None

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the server to stop: no new requests; in-flight ones are answered first.

        Safe to call from any thread or a signal handler.
        """
        self._stopping.set()

    def run(self) -> None:
        """Serve until :meth:`stop`; returns once in-flight requests are answered and acked."""
        if not self.queues:
            raise TransportError("no service is enabled, so there is no queue to consume")
        log.info(
            "connecting to %s (exchange %r, queues %s, prefetch %d, workers %d)",
            mask_secret(self.url),
            self.exchange.name,
            ", ".join(q.name for q in self.queues),
            self.prefetch,
            self.workers,
        )
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vcdext-worker")
        publisher = threading.Thread(
            target=self._publish_loop, name="vcdext-publisher", daemon=True
        )
        publisher.start()
        try:
            self._consume_with_reconnect()
        finally:
            self._pool.shutdown(wait=True)
            self._replies.put(None)
            publisher.join(timeout=self.reply_ttl + 5)
            self.ready.clear()
            log.info("stopped")

    # -- consumer thread --------------------------------------------------------------------

    def _connection(self, **options: Any) -> Connection:
        return Connection(self.url, heartbeat=self.heartbeat or None, **options)

    def _consume_with_reconnect(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            conn = self._connection()
            try:
                try:
                    conn.connect()
                except AccessRefused as exc:
                    raise TransportError(
                        f"the broker at {mask_secret(self.url)} refused the login: {exc}"
                    ) from None
                delay = 1.0
                self._consume(conn)
                return
            except conn.connection_errors as exc:
                # Delivery tags of a lost channel are void: the broker redelivers those
                # requests, so their late replies must not be acked on the new channel.
                self._inflight.clear()
                self.ready.clear()
                log.warning(
                    "broker %s unreachable (%s); retrying in %.0f s",
                    mask_secret(self.url),
                    exc,
                    delay,
                )
                self._stopping.wait(delay)  # a stop() during the wait ends the loop
                delay = min(delay * 2, 15.0)
            except conn.channel_errors as exc:
                raise TransportError(f"the broker refused the topology: {exc}") from exc
            finally:
                conn.release()

    def _consume(self, conn: Connection) -> None:
        channel = conn.channel()
        self.exchange(channel).declare()
        for q in self.queues:
            q(channel).declare()
        consumer = Consumer(channel, self.queues, on_message=self._on_message, auto_declare=False)
        consumer.qos(prefetch_count=self.prefetch)
        self._generation += 1
        consumer.consume()
        self.ready.set()
        log.info("serving")
        while not self._stopping.is_set():
            self._drain(conn)
        consumer.cancel()
        # Answer what was already taken: keep the connection alive until all is acked.
        grace = time.monotonic() + self.reply_ttl * 3 + 5
        while self._inflight and time.monotonic() < grace:
            self._drain(conn)
        if self._inflight:
            log.warning(
                "%d request(s) not finished at shutdown; the broker will redeliver them",
                len(self._inflight),
            )

    def _drain(self, conn: Connection) -> None:
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=_POLL_BUSY if self._inflight else _POLL_IDLE)
        conn.heartbeat_check()
        self._settle()

    def _on_message(self, message: Message) -> None:
        received = time.monotonic()
        props = message.properties
        headers = message.headers or {}
        reply_to = props.get("reply_to")
        exchange = headers.get("replyToExchange")
        tag = message.delivery_tag
        if not reply_to or exchange is None:
            log.warning(
                "rejected a message without reply_to/replyToExchange (correlation id %s)",
                props.get("correlation_id"),
            )
            message.reject(requeue=False)
            return
        self._inflight[tag] = message
        assert self._pool is not None
        self._pool.submit(
            self._work,
            self._generation,
            tag,
            message.body,
            message.delivery_info.get("routing_key"),
            received,
            str(exchange),
            str(reply_to),
            props.get("correlation_id"),
            bool(message.delivery_info.get("redelivered")),
        )

    def _settle(self) -> None:
        while True:
            try:
                generation, tag, action = self._settled.get_nowait()
            except queue.Empty:
                return
            message = self._inflight.pop(tag, None) if generation == self._generation else None
            if message is None:
                continue
            if action == "ack":
                message.ack()
            elif action == "requeue":
                message.requeue()
            else:
                message.reject(requeue=False)

    # -- worker threads ---------------------------------------------------------------------

    def _work(
        self,
        generation: int,
        tag: int,
        body: bytes,
        routing_key: str | None,
        received: float,
        exchange: str,
        reply_to: str,
        correlation_id: str | None,
        redelivered: bool,
    ) -> None:
        try:
            reply = self.runtime.dispatcher.handle_message(
                body if isinstance(body, bytes) else bytes(body, "utf-8"),
                routing_key=routing_key,
                received=received,
            )
        except Exception:  # the dispatcher answers errors itself; this is a last resort
            log.exception("dispatch failed for correlation id %s", correlation_id)
            self._settled.put((generation, tag, "reject"))
            return
        self._replies.put(
            _Reply(generation, tag, exchange, reply_to, correlation_id, reply, redelivered)
        )

    # -- publisher thread -------------------------------------------------------------------

    def _publish_loop(self) -> None:
        conn = self._connection(transport_options={"confirm_publish": True})
        producer: Producer | None = None
        try:
            while True:
                try:
                    item = self._replies.get(timeout=1.0)
                except queue.Empty:
                    if producer is not None:
                        self._heartbeat(conn)
                    continue
                if item is None:
                    return
                if producer is None:
                    producer = Producer(conn.default_channel)
                producer = self._publish(conn, producer, item)
        finally:
            conn.release()

    def _heartbeat(self, conn: Connection) -> None:
        try:
            conn.heartbeat_check()
        except conn.connection_errors as exc:
            log.debug("publisher heartbeat failed (%s); reconnecting on next reply", exc)

    def _publish(self, conn: Connection, producer: Producer, item: _Reply) -> Producer:
        try:
            producer.publish(
                item.body,
                exchange=item.exchange,
                routing_key=item.routing_key,
                correlation_id=item.correlation_id,
                content_type="application/json",
                content_encoding="utf-8",
                expiration=self.reply_ttl,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        except conn.channel_errors as exc:
            # For example the reply exchange does not exist: retrying cannot help.
            log.error(
                "reply for correlation id %s to exchange %r refused: %s",
                item.correlation_id,
                item.exchange,
                exc,
            )
            self._settled.put((item.generation, item.tag, "reject"))
            return Producer(conn.channel())
        except conn.connection_errors as exc:
            # Give the request back once so that another attempt (or instance) can answer it.
            log.error("could not publish reply for correlation id %s: %s", item.correlation_id, exc)
            self._settled.put(
                (item.generation, item.tag, "reject" if item.redelivered else "requeue")
            )
            conn.release()
            return Producer(conn.default_channel)
        self._settled.put((item.generation, item.tag, "ack"))
        return producer
