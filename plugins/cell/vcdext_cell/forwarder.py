"""The cell's AMQP side: publish forwarded requests, collect replies (kombu).

One thread owns the connection (kombu is not thread-safe). On it, it:

* declares the cell's reply exchange (``direct``) and an exclusive, auto-delete reply queue
  bound to it with the queue's own name as routing key (vCD: one reply exchange shared by all
  services, one reply queue per cell);
* consumes replies and completes the waiting request's future by ``correlation_id``;
* publishes the requests that HTTP handler threads put on a thread-safe queue, after checking
  (passive declare) that the service's exchange exists.

HTTP threads call :meth:`Forwarder.forward` and wait on their future with vCD's timeout. A reply
that comes after the timeout finds no future and is dropped quietly. :meth:`Forwarder.send`
publishes without waiting (the tests and ``make bench`` play vCD's side with it). Whoever must
see every reply as it arrives, a second reply to the same correlation id or a late one included
(the chaos tests count requests answered twice), passes ``on_delivery``. The messages
themselves are written and read by :mod:`vcdext.vcloud.message`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from kombu import connection as _connection
from kombu import entity as _entity
from kombu import messaging as _messaging
from kombu.exceptions import OperationalError

from vcdext.errors import ProtocolError, VcdExtError
from vcdext.retry import Backoff
from vcdext.settings import mask_secret
from vcdext.transport import memory
from vcdext.transport.wakeup import Wakeup, socket_of
from vcdext.vcloud.message import Reply, decode_reply

log = logging.getLogger(__name__)

# kombu is only partly annotated; its objects are handled as Any in this module.
Connection: Any = _connection.Connection
Exchange: Any = _entity.Exchange
Queue: Any = _entity.Queue
Consumer: Any = _messaging.Consumer
Producer: Any = _messaging.Producer

#: The cell's reply exchange (shared by every cell on a broker, like vCD's).
REPLY_EXCHANGE = "vcdext.cell.replies"
# The longest the owner thread sleeps when nothing wakes it: a reply arriving, or a request
# handed over by send(), wakes it at once (heartbeats and stop() need no more than this).
_IDLE_WAKE = 1.0
_FRAME_WAIT = 0.05  # reading one frame once select() said the socket is readable


class ForwardError(VcdExtError):
    """The request could not be handed to the broker (vCD answers 500)."""


class ForwardTimeout(VcdExtError):
    """No reply came within the timeout (vCD answers 504)."""


@dataclass(frozen=True)
class Delivery:
    """One reply as it arrived on the cell's reply queue, not decoded yet."""

    correlation_id: str
    #: The exchange and routing key it was published with (the cell's reply exchange/queue).
    exchange: str
    routing_key: str
    #: The message body (:func:`vcdext.vcloud.message.decode_reply` reads it).
    body: bytes

    def reply(self) -> Reply:
        """The decoded reply; raises :class:`~vcdext.errors.ProtocolError` if unreadable."""
        return decode_reply(self.body)


@dataclass
class _Outgoing:
    correlation_id: str
    exchange: str
    routing_key: str
    body: bytes
    future: Future[Delivery]
    headers: Mapping[str, Any]
    properties: Mapping[str, Any]


class Forwarder:
    """Publishes requests to services and waits for their replies.

    :param url: broker URL; ``memory://`` works when the runtime runs in the same process.
    :param heartbeat: AMQP heartbeat in seconds (0: off).
    :param on_delivery: called with every reply that arrives on the reply queue, whether a
        future waits for it or not (a duplicate, a late reply, an unknown correlation id), and
        before the waiting future completes. It runs on the forwarder's own thread, so it must
        be quick and must not call the forwarder back; what it raises is logged and ignored.
    """

    def __init__(
        self,
        url: str,
        *,
        heartbeat: int = 0,
        on_delivery: Callable[[Delivery], object] | None = None,
    ) -> None:
        self.url = url
        self.heartbeat = heartbeat
        self.on_delivery = on_delivery
        self.reply_exchange = Exchange(REPLY_EXCHANGE, type="direct", durable=True)
        self.reply_queue_name = f"vcdext.cell.{uuid.uuid4().hex[:12]}"
        self._outgoing: queue.Queue[_Outgoing] = queue.Queue()
        self._wake = Wakeup()
        self._waiting: dict[str, Future[Delivery]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()  # the first connection attempt has ended
        self._connected = threading.Event()  # serving now
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- public -------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Connect and declare the reply queue; raises :class:`ForwardError` if that fails."""
        self._thread = threading.Thread(target=self._run, name="vcdext-cell-amqp", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            reason = self._failure or "timed out"
            raise ForwardError(f"cannot connect the cell to {mask_secret(self.url)}: {reason}")

    def stop(self) -> None:
        """Stop the thread; requests still waiting fail at once."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._fail_all(ForwardError("the cell is stopping"))

    def forward(self, exchange: str, routing_key: str, body: bytes, timeout: float) -> Reply:
        """Publish one request and wait for its reply.

        :raises ForwardTimeout: no reply within ``timeout`` seconds.
        :raises ForwardError: the broker refused the message (no such exchange, no connection),
            or the reply cannot be read.
        """
        correlation_id = uuid.uuid4().hex
        future = self.send(exchange, routing_key, body, correlation_id=correlation_id)
        try:
            delivery = future.result(timeout=timeout)
        except TimeoutError:
            raise ForwardTimeout(f"no reply within {timeout} s") from None
        finally:
            self.forget(correlation_id)
        try:
            return delivery.reply()
        except ProtocolError as exc:  # one bad reply fails one request, never the forwarder
            raise ForwardError(f"the service sent an unreadable reply: {exc}") from None

    def send(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        correlation_id: str = "",
        headers: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Future[Delivery]:
        """Publish one request as vCD does, without waiting; the future gets its reply.

        The future fails with :class:`ForwardError` if the broker refuses the message or the
        forwarder stops first. A correlation id nobody waits for any more should be given to
        :meth:`forget`.

        :param correlation_id: the message's correlation id (default: a new unique one).
        :param headers: AMQP headers added to vCD's ``messageType`` and ``replyToExchange``
            (or replacing them).
        :param properties: AMQP properties added to (or replacing) the ones vCD sets, in
            kombu's spelling (``timestamp``, ``expiration``, ``reply_to``...).
        :raises ForwardError: not connected, or ``correlation_id`` is waiting already.
        """
        if not self._connected.is_set():
            raise ForwardError("the cell is not connected to the broker")
        correlation_id = correlation_id or uuid.uuid4().hex
        future: Future[Delivery] = Future()
        with self._lock:
            if correlation_id in self._waiting:
                raise ForwardError(f"correlation id {correlation_id!r} is in use")
            self._waiting[correlation_id] = future
        self._outgoing.put(
            _Outgoing(
                correlation_id,
                exchange,
                routing_key,
                body,
                future,
                dict(headers or {}),
                dict(properties or {}),
            )
        )
        self._wake.set()
        return future

    def forget(self, correlation_id: str) -> None:
        """Stop waiting for ``correlation_id``: its reply, if it comes, is dropped."""
        with self._lock:
            self._waiting.pop(correlation_id, None)

    # -- owner thread ---------------------------------------------------------------------

    def _connection(self) -> Any:
        return memory.connection_for(self.url, heartbeat=self.heartbeat or None, connect_timeout=5)

    def _run(self) -> None:
        backoff = Backoff(initial=1.0, cap=15.0, jitter=0.2, stop=self._stopping)
        while not self._stopping.is_set():
            conn = self._connection()
            recoverable = (*conn.connection_errors, OperationalError, OSError)
            try:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
                backoff.reset()
                self._serve(conn)
                return
            except Exception as exc:
                self._connected.clear()
                if not self._ready.is_set():  # never connected: start() reports it
                    self._failure = exc
                    self._ready.set()
                    return
                self._fail_all(ForwardError(f"lost the broker connection: {exc}"))
                if not isinstance(exc, recoverable):
                    log.exception("the cell's AMQP thread failed; forwarding is off")
                    return
                delay = backoff.next_delay()  # None once stop() was called
                log.warning(
                    "lost the broker connection (%s); %s",
                    exc,
                    "stopping" if delay is None else f"reconnecting in {delay:.1f} s",
                )
                if delay is not None:
                    backoff.wait(delay)
            finally:
                with contextlib.suppress(Exception):
                    conn.release()

    def _serve(self, conn: Any) -> None:
        consume_channel = conn.channel()
        self.reply_exchange(consume_channel).declare()
        reply_queue = Queue(
            self.reply_queue_name,
            self.reply_exchange,
            routing_key=self.reply_queue_name,
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        reply_queue(consume_channel).declare()
        consumer = Consumer(consume_channel, [reply_queue], on_message=self._on_reply, no_ack=True)
        consumer.consume()
        publish_channel = conn.channel()
        self._connected.set()
        self._ready.set()
        log.info(
            "cell connected to %s (reply exchange %r, queue %r)",
            mask_secret(self.url),
            REPLY_EXCHANGE,
            self.reply_queue_name,
        )
        sock = socket_of(conn)
        while not self._stopping.is_set():
            seen = memory.snapshot()
            self._wake.clear()
            publish_channel = self._publish_pending(conn, publish_channel)
            if sock is None:  # the in-memory transport: wait for a put (or a wake-up)
                with contextlib.suppress(TimeoutError, socket.timeout):
                    conn.drain_events(timeout=0)
                    continue
                self._wake.wait([], _IDLE_WAKE, seen)
            elif self._wake.wait([sock], _IDLE_WAKE):
                with contextlib.suppress(TimeoutError, socket.timeout):
                    conn.drain_events(timeout=_FRAME_WAIT)
            conn.heartbeat_check()
        with contextlib.suppress(Exception):
            consumer.cancel()

    def _publish_pending(self, conn: Any, channel: Any) -> Any:
        while True:
            try:
                item = self._outgoing.get_nowait()
            except queue.Empty:
                return channel
            if item.future.done() or item.correlation_id not in self._waiting:
                continue  # its caller gave up already
            try:
                # A passive declare fails when the exchange does not exist, as vCD's publish
                # does, instead of the message vanishing until the timeout.
                Exchange(item.exchange, type="direct", passive=True)(channel).declare()
                Producer(channel).publish(item.body, **self._publish_options(item))
            except conn.channel_errors as exc:
                log.warning("cannot publish to exchange %r: %s", item.exchange, exc)
                _settle(item.future, ForwardError(str(exc)))
                with contextlib.suppress(Exception):
                    channel.close()
                channel = conn.channel()

    def _publish_options(self, item: _Outgoing) -> dict[str, Any]:
        """kombu's ``publish`` arguments for ``item``: properties and headers as vCD sets them."""
        headers = {"replyToExchange": REPLY_EXCHANGE, "messageType": "ProcessHttpRequest"}
        return {
            "exchange": item.exchange,
            "routing_key": item.routing_key,
            "correlation_id": item.correlation_id,
            "reply_to": self.reply_queue_name,
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "delivery_mode": 1,
            **item.properties,
            "headers": {**headers, **item.headers},
        }

    def _on_reply(self, message: Any) -> None:
        correlation_id = str(message.properties.get("correlation_id"))
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        info = message.delivery_info or {}
        delivery = Delivery(
            correlation_id, str(info.get("exchange", "")), str(info.get("routing_key", "")), body
        )
        if self.on_delivery is not None:
            try:
                self.on_delivery(delivery)
            except Exception:  # the caller's bug must not end the forwarder's thread
                log.exception("on_delivery failed for correlation id %s", correlation_id)
        with self._lock:
            future = self._waiting.pop(correlation_id, None)
        if future is None:
            log.debug("dropped a reply for correlation id %s (late or unknown)", correlation_id)
            return
        _settle(future, delivery)

    def _fail_all(self, exc: Exception) -> None:
        with self._lock:
            waiting = list(self._waiting.values())
        for future in waiting:
            _settle(future, exc)


def _settle(future: Future[Delivery], outcome: Delivery | Exception) -> None:
    """Complete ``future`` unless it is complete already (a race we lose quietly)."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
