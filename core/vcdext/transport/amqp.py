"""The AMQP request/reply loop (kombu).

Threads, and who owns what::

    consumer thread  owns the consuming connection: declares the topology, receives
                     requests, keeps heartbeats going, and is the only one to ack/reject.
    worker threads   run the dispatcher (handlers); never touch a connection. They are
                     daemon threads, so a handler stuck past the shutdown grace cannot keep
                     the process alive (its request is redelivered by the broker).
    publisher thread owns a second connection (publisher confirms), publishes replies and
                     reconnects by itself when the broker goes away.

A request is acknowledged only after the broker has confirmed its reply (reply, then ack), so a
crash between the two makes the broker redeliver the request instead of losing it. Prefetch is
bounded, so the consumer never holds more requests than the pool can work through, and a slow
handler can never starve the consumer thread or its heartbeats.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer, Producer

from ..dispatch import Dispatcher
from ..errors import VcdExtError
from ..protocol import encode_reply, request_id_of
from ..retry import Backoff
from ..settings import AmqpSettings, mask_secret

log = logging.getLogger(__name__)

# How long the consumer thread blocks waiting for the broker before it settles finished
# requests. Acks are issued only by this thread, and with prefetch exhausted no new delivery
# wakes it, so while requests are in flight it polls often; idle, it can sleep longer.
_POLL_BUSY = 0.002
_POLL_IDLE = 0.1
# The cache of recent replies that spares a redelivered request a second run of its handler.
_RECENT_REPLIES = 4096
_RECENT_REPLY_BYTES = 32 * 1024 * 1024
# Reconnect delays are shortened by up to this fraction at random, so that the instances of a
# service do not all reconnect at the same moment after a broker restart.
_JITTER = 0.2


class TransportError(VcdExtError):
    """The broker refused our topology or could not be reached for good."""


class _Workers:
    """A fixed set of daemon threads shared fairly by the services.

    Each service has its own waiting line. A free thread takes the next request of the service
    with the fewest requests running (the oldest first among equals), and every service keeps
    one thread in reserve while it has none running: a service whose handlers are slow can hold
    every thread but one per other service, never all of them. With fewer threads than services
    there is no reserve, only the fair choice. Nothing a job raises ends a thread.
    """

    def __init__(self, count: int, services: Iterable[str]) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[tuple[int, Callable[[], None]]]] = {
            s: deque() for s in services
        }
        self._running = dict.fromkeys(self._waiting, 0)
        self._count = count
        self._idle = 0
        self._order = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"vcdext-worker-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, service: str, job: Callable[[], None]) -> None:
        with self._cond:
            self._waiting.setdefault(service, deque()).append((next(self._order), job))
            self._running.setdefault(service, 0)
            self._cond.notify()

    def counts(self) -> tuple[int, int]:
        """(requests running, requests waiting for a thread)."""
        with self._cond:
            running = sum(self._running.values())
            return running, sum(len(jobs) for jobs in self._waiting.values())

    def _pick(self) -> tuple[str, Callable[[], None]] | None:
        # Called holding the lock, by an idle thread (counted in self._idle).
        reserve = self._count >= len(self._running)
        best: tuple[tuple[int, int], str] | None = None
        for service, jobs in self._waiting.items():
            if not jobs:
                continue
            if reserve and not self._closed:
                others_without = sum(1 for s, n in self._running.items() if s != service and n == 0)
                if self._idle - 1 < others_without:
                    continue
            rank = (self._running[service], jobs[0][0])
            if best is None or rank < best[0]:
                best = (rank, service)
        if best is None:
            return None
        service = best[1]
        return service, self._waiting[service].popleft()[1]

    def _loop(self) -> None:
        with self._cond:
            self._idle += 1
        while True:
            with self._cond:
                while (picked := self._pick()) is None:
                    if self._closed:
                        self._idle -= 1
                        return
                    self._cond.wait()
                service, job = picked
                self._idle -= 1
                self._running[service] += 1
            try:
                job()
            except BaseException:  # a thread that dies takes its request's answer with it
                log.exception("a request job failed in %s", threading.current_thread().name)
            finally:
                with self._cond:
                    self._running[service] -= 1
                    self._idle += 1
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Let idle threads end; a thread still in a handler is left to the process exit.

        Jobs still waiting are run at once (they return at once, as shutdown abandoned them).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    reply: bytes | None = None


class _RecentReplies:
    """The replies of recent requests, so that a redelivered one is not run again.

    Bounded by count and by bytes; requests still running are kept until they finish, so a
    redelivery that arrives meanwhile waits for the same answer instead of running twice.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes

    def claim(self, key: bytes, *, redelivered: bool) -> _Entry | None:
        """``None``: the caller runs the request (and must :meth:`finish` it). Otherwise the
        entry of an earlier delivery (only for a redelivered message), to wait on."""
        with self._lock:
            entry = self._entries.get(key)
            if redelivered and entry is not None:
                self._entries.move_to_end(key)
                return entry
            if entry is not None and entry.reply is not None:
                self._bytes -= len(entry.reply)
            self._entries[key] = _Entry()
            self._entries.move_to_end(key)
            return None

    def finish(self, key: bytes, reply: bytes | None) -> None:
        """Record the reply (``None``: there is none to reuse) and wake who waits for it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            if entry.reply is not None:  # a second run of the same request finished first
                self._bytes -= len(entry.reply)
            if reply is None:
                del self._entries[key]
            else:
                entry.reply = reply
                self._bytes += len(reply)
            entry.done.set()
            self._evict()

    def _evict(self) -> None:
        for key in list(self._entries):
            if len(self._entries) <= self._max_entries and self._bytes <= self._max_bytes:
                return
            entry = self._entries[key]
            if entry.done.is_set():  # running requests stay
                del self._entries[key]
                self._bytes -= len(entry.reply or b"")


def _sent_at(value: object) -> float | None:
    """The AMQP ``timestamp`` property as POSIX seconds (py-amqp gives int or naive UTC)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return float(calendar.timegm(value.utctimetuple()))
    return None


@dataclass(frozen=True)
class _Job:
    generation: int
    tag: int
    body: bytes
    routing_key: str | None
    received: float
    exchange: str
    reply_to: str
    correlation_id: str | None
    redelivered: bool
    key: bytes  # identifies a delivery's request across redeliveries


_IDLE = object()  # the publisher's "nothing to publish this second" marker


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
    """Serves the services of ``dispatcher`` over AMQP until :meth:`stop` is called.

    It is given the dispatcher and its own settings, nothing else: one durable queue per
    service of ``dispatcher.registry`` (named after its routing key), the reply TTL and the
    shutdown grace from ``dispatcher.timeout``.

    :param settings: ``[amqp]``; ``url`` may be ``memory://`` for in-process use.
    :param workers: handler threads (``runtime.workers``); prefetch defaults to twice that.
    """

    #: vCD's filters need the exchange to exist: register once it is declared.
    registers_first = False

    def __init__(self, dispatcher: Dispatcher, settings: AmqpSettings, *, workers: int) -> None:
        self.dispatcher = dispatcher
        self.url = settings.url
        self.exchange = Exchange(settings.exchange, type="direct", durable=True)
        self.prefetch = settings.prefetch or 2 * workers
        self.workers = workers
        self.heartbeat = settings.heartbeat
        self.reply_ttl = dispatcher.timeout
        self.max_message_bytes = settings.max_message_bytes
        self.max_redeliveries = settings.max_redeliveries
        self.queues = [
            Queue(s.routing_key, self.exchange, routing_key=s.routing_key, durable=True)
            for s in dispatcher.registry.services.values()
        ]
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._replies: queue.Queue[_Reply | None] = queue.Queue()
        self._settled: queue.Queue[tuple[int, int, str]] = queue.Queue()
        self._inflight: dict[int, Message] = {}
        self._generation = 0
        self._workers: _Workers | None = None
        # Set when shutdown gave up waiting: queued requests are then left to the broker.
        self._abandon = threading.Event()
        self._fatal: TransportError | None = None
        self._recent = _RecentReplies(_RECENT_REPLIES, _RECENT_REPLY_BYTES)
        self._skew_warned = False
        # Redeliveries seen per request (consumer thread only), for queues that do not count.
        self._redeliveries: OrderedDict[bytes, int] = OrderedDict()
        self._internal_error = Dispatcher.error_outcome(
            500, "INTERNAL_SERVER_ERROR", "Internal error"
        )

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the server to stop: no new requests; in-flight ones are answered first.

        Safe to call from any thread or a signal handler.
        """
        self._stopping.set()

    def load(self) -> tuple[int, int]:
        """(requests in a handler now, requests received and waiting for a worker)."""
        return self._workers.counts() if self._workers is not None else (0, 0)

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
        self._workers = _Workers(self.workers, (q.name for q in self.queues))
        publisher = threading.Thread(
            target=self._publish_loop, name="vcdext-publisher", daemon=True
        )
        publisher.start()
        try:
            self._consume_with_reconnect()
        finally:
            self._abandon.set()
            self._workers.shutdown()
            self._replies.put(None)
            publisher.join(timeout=10)
            self.ready.clear()
            log.info("stopped")
        if self._fatal is not None:
            raise self._fatal

    # -- consumer thread --------------------------------------------------------------------

    def _connection(self, **options: Any) -> Connection:
        return Connection(self.url, heartbeat=self.heartbeat or None, **options)

    def _consume_with_reconnect(self) -> None:
        backoff = Backoff(initial=1.0, cap=15.0, jitter=_JITTER, stop=self._stopping)
        while not self._stopping.is_set():
            conn = self._connection()
            try:
                try:
                    conn.connect()
                except AccessRefused as exc:
                    raise TransportError(
                        f"the broker at {mask_secret(self.url)} refused the login: {exc}"
                    ) from None
                backoff.reset()
                self._consume(conn)
                return
            except conn.connection_errors as exc:
                # Delivery tags of a lost channel are void: the broker redelivers those
                # requests, so their late replies must not be acked on the new channel.
                self._inflight.clear()
                self.ready.clear()
                self.dispatcher.observer.reconnected("consumer")
                delay = backoff.next_delay()  # None once stop() was called
                log.warning(
                    "broker %s unreachable (%s); %s",
                    mask_secret(self.url),
                    exc,
                    "stopping" if delay is None else f"retrying in {delay:.1f} s",
                )
                if delay is not None:
                    backoff.wait(delay)  # a stop() during the wait ends the loop
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
        correlation_id = props.get("correlation_id")
        if not reply_to or exchange is None:
            log.warning(
                "rejected a message without reply_to/replyToExchange (correlation id %s)",
                correlation_id,
            )
            message.reject(requeue=False)
            return
        body = message.body if isinstance(message.body, bytes) else bytes(message.body, "utf-8")
        routing_key = message.delivery_info.get("routing_key")
        redelivered = bool(message.delivery_info.get("redelivered"))
        if redelivered:
            self.dispatcher.observer.redelivered(self.dispatcher.service_of(routing_key))
        oversize = len(body) > self.max_message_bytes
        key = hashlib.sha256(
            f"{routing_key}\0{correlation_id}\0".encode("utf-8", "surrogatepass")
            + (str(len(body)).encode() if oversize else body)
        ).digest()
        deliveries = 1 + self._count_redelivery(key, redelivered, headers)
        if deliveries > self.max_redeliveries + 1:
            log.error(
                "rejected request with correlation id %s: delivered %d times "
                "(amqp.max_redeliveries is %d); a dead-letter exchange receives it if configured",
                correlation_id,
                deliveries,
                self.max_redeliveries,
            )
            message.reject(requeue=False)
            return
        job = _Job(
            self._generation,
            message.delivery_tag,
            body,
            routing_key,
            self._queued_since(props.get("timestamp"), received),
            str(exchange),
            str(reply_to),
            correlation_id,
            redelivered,
            key,
        )
        self._inflight[job.tag] = message
        if oversize:
            # Refused before decoding: answered straight away, no worker involved.
            log.warning(
                "request with correlation id %s is %d bytes, over amqp.max_message_bytes (%d)",
                correlation_id,
                len(body),
                self.max_message_bytes,
            )
            outcome = Dispatcher.error_outcome(
                413,
                "REQUEST_ENTITY_TOO_LARGE",
                f"The request message is larger than {self.max_message_bytes} bytes",
            )
            self.dispatcher.observer.request_done(
                self.dispatcher.service_of(routing_key), "", 413, 0.0
            )
            self._reply(job, encode_reply("", outcome.status, outcome.headers, outcome.body))
            return
        assert self._workers is not None
        self._workers.submit(routing_key or "", lambda: self._work(job))

    def _count_redelivery(self, key: bytes, redelivered: bool, headers: dict[str, Any]) -> int:
        """How often this request was delivered before: the queue's own count where it keeps
        one (quorum queues' ``x-delivery-count``), else the redeliveries this process saw."""
        counted = headers.get("x-delivery-count")
        broker = counted if isinstance(counted, int) and not isinstance(counted, bool) else 0
        seen = self._redeliveries.get(key, 0)
        if redelivered:
            seen += 1
            self._redeliveries[key] = seen
            self._redeliveries.move_to_end(key)
            while len(self._redeliveries) > _RECENT_REPLIES:
                self._redeliveries.popitem(last=False)
        return max(broker, seen)

    def _queued_since(self, timestamp: object, received: float) -> float:
        """The deadline base: when vCD published the request, if the message carries an AMQP
        ``timestamp``, else when it was delivered. A timestamp in the future (clock skew, or
        its one-second resolution) counts as the delivery time."""
        sent = _sent_at(timestamp)
        if sent is None:
            return received
        waited = time.time() - sent
        if waited > max(60.0, 6 * self.reply_ttl) and not self._skew_warned:
            self._skew_warned = True
            log.warning(
                "a request's AMQP timestamp says it waited %.0f s in the queue; if it did not, "
                "the clocks of vCD and this host disagree (requests are answered 503)",
                waited,
            )
        return received - waited if waited > 0 else received

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

    def _work(self, job: _Job) -> None:
        if self._abandon.is_set() or job.generation != self._generation:
            # Shutdown gave up on it, or its channel is gone: the broker redelivers it.
            return
        earlier = self._recent.claim(job.key, redelivered=job.redelivered)
        if earlier is not None:
            # A redelivery of a request this process answered (or is answering): the same
            # reply again, without running the handler a second time.
            earlier.done.wait(self.reply_ttl * 3 + 5)
            if earlier.reply is not None:
                log.info(
                    "redelivered request (correlation id %s) answered from recent replies",
                    job.correlation_id,
                )
                self._reply(job, earlier.reply)
                return
            self._recent.claim(job.key, redelivered=False)
        try:
            reply, reusable = self._answer(job)
        except BaseException:
            self._recent.finish(job.key, None)
            self._settled.put((job.generation, job.tag, "reject"))  # never left unsettled
            raise
        # Idempotent operations run again when redelivered; their replies are not kept.
        self._recent.finish(job.key, reply if reusable else None)
        self._reply(job, reply)

    def _answer(self, job: _Job) -> tuple[bytes, bool]:
        """The encoded reply and whether a redelivery may reuse it; whatever the dispatcher
        raises (even a ``SystemExit`` from a handler, or a ``RecursionError`` from the
        decoder) becomes a 500."""
        try:
            return self.dispatcher.answer(
                job.body, routing_key=job.routing_key, received=job.received
            )
        except BaseException:  # the dispatcher answers errors itself; this is a last resort
            log.exception("dispatch failed for correlation id %s", job.correlation_id)
            try:
                request_id = request_id_of(job.body)
            except BaseException:
                request_id = ""
            outcome = self._internal_error
            return encode_reply(request_id, outcome.status, outcome.headers, outcome.body), False

    def _reply(self, job: _Job, body: bytes) -> None:
        self._replies.put(
            _Reply(
                job.generation,
                job.tag,
                job.exchange,
                job.reply_to,
                job.correlation_id,
                body,
                job.redelivered,
            )
        )

    # -- publisher thread -------------------------------------------------------------------

    def _publish_loop(self) -> None:
        try:
            self._publish_until_stopped()
        except Exception as exc:  # a bug here must not leave requests silently unanswered
            log.exception("the reply publisher failed; stopping")
            self._fatal = TransportError(f"the reply publisher failed: {exc!r}")
            self.stop()

    def _publish_until_stopped(self) -> None:
        conn: Connection | None = None
        producer: Producer | None = None
        connected = False  # whether `conn` got as far as a connection
        # Waits end when run() gives up on the replies still queued (shutdown).
        backoff = Backoff(initial=0.5, cap=15.0, jitter=_JITTER, stop=self._abandon)
        try:
            while True:
                item: _Reply | object | None
                try:
                    item = self._replies.get(timeout=1.0)
                except queue.Empty:
                    item = _IDLE
                if item is None:
                    return
                if item is _IDLE and producer is None:
                    continue  # nothing to keep alive; connect when a reply is ready
                try:
                    if conn is None or producer is None:
                        conn = self._connection(transport_options={"confirm_publish": True})
                        conn.connect()
                        connected = True
                        producer = Producer(conn.channel())
                    if isinstance(item, _Reply):
                        self._publish(producer, item)
                        self._settled.put((item.generation, item.tag, "ack"))
                        self.dispatcher.observer.replied()
                    else:
                        self._keep_alive(conn)
                    backoff.reset()
                except Exception as exc:
                    refused = isinstance(exc, conn.channel_errors if conn else ()) and not (
                        isinstance(exc, conn.connection_errors if conn else ())
                    )
                    if isinstance(item, _Reply):
                        self._publish_failed(item, exc, refused)
                    if refused and conn is not None:
                        # py-amqp reopens a channel the broker closed under the same id:
                        # close it, or every refusal leaks a channel id until none is left.
                        if producer is not None:
                            with contextlib.suppress(Exception):
                                producer.channel.close()
                        producer = Producer(conn.channel())
                        continue
                    if conn is not None:
                        conn.release()
                    if connected:
                        self.dispatcher.observer.reconnected("publisher")
                    conn = producer = None
                    delay = backoff.next_delay()  # None once shutdown gave up on the replies
                    log.warning(
                        "reply connection to %s %s (%s); %s",
                        mask_secret(self.url),
                        "lost" if connected else "could not be opened",
                        exc,
                        "giving up" if delay is None else f"retrying in {delay:.1f} s",
                    )
                    connected = False
                    if delay is None or not backoff.wait(delay):
                        return
        finally:
            if conn is not None:
                conn.release()

    def _keep_alive(self, conn: Connection) -> None:
        # Read what the broker sent (its heartbeats) and send ours; a dead connection raises.
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=0)
        conn.heartbeat_check()

    def _publish(self, producer: Producer, item: _Reply) -> None:
        producer.publish(
            item.body,
            exchange=item.exchange,
            routing_key=item.routing_key,
            correlation_id=item.correlation_id,
            content_type="application/json",
            content_encoding="utf-8",
            expiration=self.reply_ttl,
            confirm_timeout=self.reply_ttl,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    def _publish_failed(self, item: _Reply, exc: Exception, refused: bool) -> None:
        if refused:
            # For example the reply exchange does not exist: retrying cannot help.
            log.error(
                "reply for correlation id %s to exchange %r refused: %s",
                item.correlation_id,
                item.exchange,
                exc,
            )
            self._settled.put((item.generation, item.tag, "reject"))
            return
        # Give the request back once so that another attempt (or instance) can answer it.
        log.error("could not publish reply for correlation id %s: %s", item.correlation_id, exc)
        action = "reject" if item.redelivered else "requeue"
        self._settled.put((item.generation, item.tag, action))
