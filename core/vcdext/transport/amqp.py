"""The AMQP request/reply loop (kombu).

Threads, and who owns what::

    consumer thread  owns both broker connections and is the only thread that touches them:
                     the consuming connection (topology, requests, acks/rejects) and the reply
                     connection (replies, with publisher confirms). It sleeps in ``select()``
                     on both sockets and on a wake-up pipe, so a delivery, a confirm or a
                     finished reply wakes it at once; it never polls.
    worker threads   run the dispatcher (handlers); never touch a connection. A finished
                     reply is handed to the consumer thread and the pipe written to wake it.
                     They are daemon threads, so a handler stuck past the shutdown grace cannot
                     keep the process alive (its request is redelivered by the broker).

A request is acknowledged only after the broker has confirmed its reply (reply, then ack), so a
crash between the two makes the broker redeliver the request instead of losing it. Confirms are
asynchronous: many replies are in flight at once and the broker confirms them in batches, so
waiting for the confirm costs no round trip per request. Prefetch is bounded, so the consumer
never holds more requests than the pool can work through, and a slow handler can never starve
the consumer thread or its heartbeats.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amqp.exceptions import AccessRefused, ConsumerCancelled
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer

from ..dispatch import Dispatcher
from ..errors import VcdExtError
from ..protocol import Request, encode_reply, request_id_of
from ..retry import Backoff
from ..settings import AmqpSettings, mask_secret
from . import frames, memory
from .memory import connection_for
from .wakeup import Wakeup, socket_of

log = logging.getLogger(__name__)

# The longest the consumer thread sleeps when nothing wakes it (heartbeats, the stop flag).
_IDLE_WAKE = 1.0
# How often the consumer thread looks at heartbeats (both ways); kombu wants at least two looks
# per heartbeat interval (``amqp.heartbeat``, a few seconds at the least).
_BEAT_EVERY = 0.5
# The in-memory transport (``memory://``) has no socket to wait on: its puts wake the waiting
# thread (vcdext.transport.memory); this bounds the wait for transports that do not.
_MEMORY_POLL = 0.05
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
                if self._idle and any(self._waiting.values()):
                    self._cond.notify()  # more work: the next idle thread takes a look
            try:
                job()
            except BaseException:  # a thread that dies takes its request's answer with it
                log.exception("a request job failed in %s", threading.current_thread().name)
            finally:
                with self._cond:
                    self._running[service] -= 1
                    self._idle += 1
                    # This thread looks for its next job itself, and every idle thread would
                    # judge the waiting lines alike: no one else needs waking (a wake-up per
                    # finished job for every idle thread cost more than the job's bookkeeping).

    def shutdown(self) -> None:
        """Let idle threads end; a thread still in a handler is left to the process exit.

        Jobs still waiting are run at once (they return at once, as shutdown abandoned them).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Done:
    """An event on a condition shared by the whole cache: 4,096 ``threading.Event`` objects
    (a lock and a condition each) were most of the cache's memory."""

    __slots__ = ("_cond", "_flag")

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:  # called holding the condition's lock
        self._flag = True
        self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(self.is_set, timeout)


class _Entry:
    __slots__ = ("done", "reply")

    def __init__(self, cond: threading.Condition) -> None:
        self.done = _Done(cond)
        self.reply: bytes | None = None


class _RecentReplies:
    """The replies of recent requests, so that a redelivered one is not run again.

    Bounded by count and by bytes; requests still running are kept until they finish, so a
    redelivery that arrives meanwhile waits for the same answer instead of running twice.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._lock = threading.Condition()
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
            self._entries[key] = _Entry(self._lock)
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
        # Oldest first; without copying the keys, which at 4,096 entries cost more than the
        # rest of a request's bookkeeping.
        count, size = len(self._entries), self._bytes
        victims = []
        for key, entry in self._entries.items():
            if count <= self._max_entries and size <= self._max_bytes:
                break
            if entry.done.is_set():  # running requests stay
                victims.append(key)
                count -= 1
                size -= len(entry.reply or b"")
        for key in victims:
            del self._entries[key]
        self._bytes = size


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
    request: Request | None = None  # decoded already (inline operations)


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
    :param workers: handler threads (``runtime.workers``); prefetch defaults to four times that
        (a request's slot stays taken until its reply's confirm comes back).
    """

    #: vCD's filters need the exchange to exist: register once it is declared.
    registers_first = False

    def __init__(self, dispatcher: Dispatcher, settings: AmqpSettings, *, workers: int) -> None:
        self.dispatcher = dispatcher
        self.url = settings.url
        self.exchange = Exchange(settings.exchange, type="direct", durable=True)
        self.prefetch = settings.prefetch or 4 * workers
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
        # Handed from the worker threads to the consumer thread (deque appends are atomic);
        # each hand-over sets _wake.
        self._replies: deque[_Reply] = deque()
        self._settled: deque[tuple[int, int, str]] = deque()
        self._wake = Wakeup()
        self._owner = 0  # the consumer thread's ident, once run() started
        self._next_beat = 0.0
        self._inflight: dict[int, Message] = {}
        self._ack_multiple = False
        self._generation = 0
        self._workers: _Workers | None = None
        # Set when shutdown gave up waiting: queued requests are then left to the broker.
        self._abandon = threading.Event()
        self._replier = _Replier(self)
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
        self._wake.set()

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
        self._owner = threading.get_ident()
        try:
            self._consume_with_reconnect()
        finally:
            self._abandon.set()
            self._workers.shutdown()
            self._replier.close()
            self.ready.clear()
            log.info("stopped")
        if self._fatal is not None:
            raise self._fatal

    # -- consumer thread --------------------------------------------------------------------

    def _connection(self, **options: Any) -> Connection:
        return connection_for(self.url, heartbeat=self.heartbeat or None, **options)

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
                what = (
                    "the broker cancelled the consumer (its queue deleted?)"
                    if isinstance(exc, ConsumerCancelled)
                    else f"broker {mask_secret(self.url)} unreachable"
                )
                self._reconnect_later(backoff, what, exc)
            except conn.channel_errors as exc:
                if not self.ready.is_set():
                    # Declaring the topology failed (an exchange or queue of the same name
                    # declared with other arguments): a configuration error, no retry helps.
                    raise TransportError(f"the broker refused the topology: {exc}") from exc
                # While serving (a handler outlived the broker's consumer_timeout, a queue was
                # deleted): the channel is gone, the process is not; as for a lost connection.
                self._reconnect_later(backoff, "the broker closed the consuming channel", exc)
            finally:
                conn.release()

    def _reconnect_later(self, backoff: Backoff, what: str, exc: Exception) -> None:
        """After the consuming connection or channel was lost: wait out the backoff (replies
        computed meanwhile still go out on the reply connection), then the caller reconnects."""
        # Delivery tags of a lost channel are void: the broker redelivers those requests, so
        # their late replies must not be acked on the new channel (the next _consume starts a
        # new generation; a redelivery of a request already answered is answered from the
        # recent replies, its handler not run again).
        self._inflight.clear()
        self.ready.clear()
        self.dispatcher.observer.reconnected("consumer")
        delay = backoff.next_delay()  # None once stop() was called
        log.warning(
            "%s (%s); %s",
            what,
            exc,
            "stopping" if delay is None else f"retrying in {delay:.1f} s",
        )
        if delay is not None:
            until = time.monotonic() + delay
            while not self._stopping.is_set() and time.monotonic() < until:
                self._turn(None, until - time.monotonic())

    def _consume(self, conn: Connection) -> None:
        channel = conn.channel()
        self.exchange(channel).declare()
        for q in self.queues:
            q(channel).declare()
        consumer = Consumer(channel, self.queues, on_message=self._on_message, auto_declare=False)
        consumer.qos(prefetch_count=self.prefetch)
        self._generation += 1
        self._ack_multiple = socket_of(conn) is not None
        consumer.consume()
        self.ready.set()
        log.info("serving")
        while not self._stopping.is_set():
            self._turn(conn, _IDLE_WAKE)
        consumer.cancel()
        # Answer what was already taken: keep the connection alive until all is acked.
        grace = time.monotonic() + self.reply_ttl * 3 + 5
        while self._inflight and (now := time.monotonic()) < grace:
            self._turn(conn, min(_IDLE_WAKE, grace - now))
        if self._inflight:
            log.warning(
                "%d request(s) not finished at shutdown; the broker will redeliver them",
                len(self._inflight),
            )

    def _turn(self, conn: Connection | None, timeout: float) -> None:
        """One turn of the consumer thread: wait for the broker or a worker (at most
        ``timeout`` seconds), then read what arrived, publish finished replies and settle."""
        own = socket_of(conn)
        sockets = [s for s in (own, self._replier.socket()) if s is not None]
        virtual = conn is not None and own is None
        seen = memory.snapshot()
        if virtual:
            # The in-memory transport: look at its queues first, then wait for a put.
            self._drain_virtual(conn)
            timeout = min(timeout, _MEMORY_POLL)
        if self._replier.has_work():
            timeout = 0  # only look at what the broker sent
        readable = self._wake.wait([] if virtual else sockets, timeout, seen)
        self._wake.clear()
        if own is not None and own in readable:
            self._drain(conn)  # type: ignore[arg-type]
        elif virtual:
            self._drain_virtual(conn)
        now = time.monotonic()
        beat = now >= self._next_beat  # heartbeats are looked at every _BEAT_EVERY, not per turn
        if beat:
            self._next_beat = now + _BEAT_EVERY
        self._replier.turn(readable, beat=beat)
        if self._settled:
            with frames.Cork(conn):  # this turn's acks in one write
                self._settle()
        if conn is not None and beat:
            conn.heartbeat_check()

    def _drain(self, conn: Connection) -> None:
        """Read every frame the consuming connection has ready, without waiting for more."""
        frames.drain(conn)

    def _drain_virtual(self, conn: Connection | None) -> None:
        assert conn is not None
        with contextlib.suppress(TimeoutError):
            for _ in range(self.prefetch):
                conn.drain_events(timeout=0)

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
        if not redelivered:  # a redelivery may have to wait for an earlier run: a worker's job
            try:
                request = self.dispatcher.decode(body)
                inline = request is not None and self.dispatcher.runs_inline(request, routing_key)
            except Exception:  # the worker's dispatch answers it, whatever it is
                request, inline = None, False
            job = dataclasses.replace(job, request=request)  # not decoded a second time
            if inline:
                # Declared to only compute: answered here, without two thread hand-overs.
                self._work(job)
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
        acks: list[Message] = []
        while self._settled:
            generation, tag, action = self._settled.popleft()
            message = self._inflight.pop(tag, None) if generation == self._generation else None
            if message is None:
                continue
            if action == "ack":
                acks.append(message)
            elif action == "requeue":
                message.requeue()
            else:
                message.reject(requeue=False)
        if not acks:
            return
        # Confirms come in batches, so acks do too: when no request older than the newest one
        # acked here is still open, one ``multiple`` ack settles them all (AMQP only: kombu's
        # virtual transports ignore ``multiple``).
        if self._ack_multiple and len(acks) > 1:  # AMQP delivery tags are numbers
            last = max(acks, key=lambda m: int(m.delivery_tag))
            if not self._inflight or min(self._inflight) > last.delivery_tag:
                last.ack(multiple=True)
                return
        for message in acks:
            message.ack()

    def _settle_later(self, generation: int, tag: int, action: str) -> None:
        self._settled.append((generation, tag, action))
        self._wake_owner()

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
            self._settle_later(job.generation, job.tag, "reject")  # never left unsettled
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
                job.body, routing_key=job.routing_key, received=job.received, request=job.request
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
        self._replies.append(
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
        self._wake_owner()

    def _wake_owner(self) -> None:
        """Wake the consumer thread, unless this is it (it looks at its work before sleeping)."""
        if threading.get_ident() != self._owner:
            self._wake.set()


class _Replier:
    """The reply connection, driven by the consumer thread.

    Replies are published with publisher confirms, many at once: the broker confirms them
    asynchronously (often several with one ``basic.ack``), and only a confirmed reply lets the
    consumer thread ack its request. A reply exchange seen for the first time is checked with a
    passive declare on a channel of its own, so that a missing one refuses that reply alone
    instead of closing the publishing channel under the replies in flight. Over the in-memory
    transport a publish is a put into a queue of this process: it counts as confirmed at once.
    """

    def __init__(self, server: AmqpServer) -> None:
        self._server = server
        self._conn: Connection | None = None
        self._channel: Any = None
        self._confirms = False
        self._seq = 0
        self._unconfirmed: dict[int, _Reply] = {}
        self._exchanges: set[str] = set()
        self._connected = False  # whether `_conn` got as far as a connection
        # Waits end when run() gives up on the replies still queued (shutdown).
        self._backoff = Backoff(initial=0.5, cap=15.0, jitter=_JITTER, stop=server._abandon)
        self._retry_at = 0.0

    def socket(self) -> Any | None:
        return socket_of(self._conn) if self._conn is not None else None

    def has_work(self) -> bool:
        """Replies wait and the connection is up (or may be retried now)."""
        return bool(self._server._replies) and (
            self._channel is not None or time.monotonic() >= self._retry_at
        )

    def turn(self, readable: list[Any], *, beat: bool = True) -> None:
        """Read confirms, publish the replies handed over, keep the connection alive."""
        server = self._server
        conn = self._conn
        in_hand: _Reply | None = None
        try:
            if conn is not None and socket_of(conn) in readable:
                frames.drain(conn)
            # The replies of this turn leave in one write (once the connection is up).
            if server._replies:
                with frames.Cork(self._conn):
                    while server._replies:
                        if self._channel is None and time.monotonic() < self._retry_at:
                            return  # reconnecting later; the replies wait
                        in_hand = server._replies.popleft()
                        if self._channel is None:
                            self._open()
                        self._publish(in_hand)
                        in_hand = None
            if self._conn is not None and beat:
                self._conn.heartbeat_check()
            self._backoff.reset()
        except Exception as exc:
            self._failed(exc, in_hand)

    def _open(self) -> None:
        conn = self._server._connection()
        self._conn = conn
        conn.connect()
        self._connected = True
        self._channel = conn.channel()
        self._confirms = socket_of(conn) is not None
        if self._confirms:
            self._channel.events["basic_ack"].add(self._on_ack)
            self._channel.events["basic_nack"].add(self._on_nack)
            self._confirm_select()

    def _check_exchange(self, name: str) -> Exception | None:
        """Whether reply exchange ``name`` exists: ``None``, or the broker's refusal.

        A passive declare on a short-lived connection of its own: waiting for its answer on
        the reply connection would read that connection's other frames meanwhile (a close of
        the publishing channel, caused by an earlier reply, would surface here instead of in
        turn(), and be taken for this check's answer). Reply exchanges are few and checked
        once each, so a connection per check costs nothing that matters.
        """
        conn = self._server._connection()
        try:
            conn.connect()
            conn.channel().exchange_declare(name, "direct", passive=True)
        except conn.channel_errors as exc:
            if isinstance(exc, conn.connection_errors):
                raise
            refusal: Exception = exc
            return refusal
        finally:
            with contextlib.suppress(Exception):
                conn.release()
        return None

    def _confirm_select(self) -> None:
        self._channel.confirm_select()
        self._seq = 0

    def _publish(self, item: _Reply) -> None:
        if self._confirms and item.exchange and item.exchange not in self._exchanges:
            refusal = self._check_exchange(item.exchange)
            if refusal is not None:
                self._refused(item, refusal)
                return
            self._exchanges.add(item.exchange)
        message = self._channel.prepare_message(
            item.body,
            content_type="application/json",
            content_encoding="utf-8",
            properties={
                "correlation_id": item.correlation_id,
                "delivery_mode": 2,
                "expiration": str(int(self._server.reply_ttl * 1000)),
            },
        )
        if self._confirms:
            frames.publish(self._channel, message, item.exchange, item.routing_key)
            self._seq += 1
            self._unconfirmed[self._seq] = item
        else:
            self._channel.basic_publish(
                message, exchange=item.exchange, routing_key=item.routing_key
            )
            self._server._settle_later(item.generation, item.tag, "ack")

    def _on_ack(self, tag: int, multiple: bool) -> None:
        for item in self._confirmed(tag, multiple):
            self._server._settle_later(item.generation, item.tag, "ack")
            self._server.dispatcher.observer.replied()

    def _on_nack(self, tag: int, multiple: bool) -> None:
        for item in self._confirmed(tag, multiple):
            self._lost(item, "the broker could not take it (nack)")

    def _confirmed(self, tag: int, multiple: bool) -> list[_Reply]:
        if not multiple:
            item = self._unconfirmed.pop(tag, None)
            return [] if item is None else [item]
        done = [seq for seq in self._unconfirmed if seq <= tag]
        return [self._unconfirmed.pop(seq) for seq in done]

    def _refused(self, item: _Reply, exc: Exception) -> None:
        # For example the reply exchange does not exist: retrying cannot help.
        log.error(
            "reply for correlation id %s to exchange %r refused: %s",
            item.correlation_id,
            item.exchange,
            exc,
        )
        self._server._settle_later(item.generation, item.tag, "reject")

    def _lost(self, item: _Reply, reason: object) -> None:
        # Give the request back once so that another attempt (or instance) can answer it.
        log.error("could not publish reply for correlation id %s: %s", item.correlation_id, reason)
        action = "reject" if item.redelivered else "requeue"
        self._server._settle_later(item.generation, item.tag, action)

    def _failed(self, exc: Exception, in_hand: _Reply | None) -> None:
        conn = self._conn
        refused = (
            conn is not None
            and isinstance(exc, conn.channel_errors)
            and not isinstance(exc, conn.connection_errors)
        )
        if refused and self._channel is not None:
            # The broker closed the publishing channel (an exchange deleted after its check):
            # py-amqp reopened it, without confirms. The replies it had not confirmed are
            # published again, each exchange checked again; vCD ignores a second reply.
            log.warning("the reply channel was closed by the broker (%s); reopening it", exc)
            self._exchanges.clear()
            if in_hand is not None:
                self._server._replies.appendleft(in_hand)
                in_hand = None  # queued again: not also given back below
            self._server._replies.extendleft(reversed(list(self._unconfirmed.values())))
            self._unconfirmed.clear()
            try:
                self._confirm_select()
                self._server._wake.set()
                return
            except Exception as again:
                exc = again
        # The reply that could not be published, and those the broker had not confirmed when
        # the connection went: their requests are given back (the broker may redeliver them).
        for item in ([in_hand] if in_hand is not None else []) + list(self._unconfirmed.values()):
            self._lost(item, exc)
        self._unconfirmed.clear()
        self.close()
        if self._connected:
            self._server.dispatcher.observer.reconnected("publisher")
        delay = self._backoff.next_delay()  # None once shutdown gave up on the replies
        log.warning(
            "reply connection to %s %s (%s); %s",
            mask_secret(self._server.url),
            "lost" if self._connected else "could not be opened",
            exc,
            "giving up" if delay is None else f"retrying in {delay:.1f} s",
        )
        self._connected = False
        self._retry_at = time.monotonic() + (delay or 0.0)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.release()
        self._conn = self._channel = None
        self._exchanges.clear()
