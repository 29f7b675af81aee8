"""The notification consumer (kombu): vCD's notifications to the plugins' handlers, blocked tasks
to their deciders.

Threads, and who owns what::

    consumer thread  owns the connection: declares the topic exchange (``[notifications]
                     exchange``, vCD's ``AmqpExchange``), the durable queue and its bindings
                     (one routing key per declaration), receives, and is the only one to
                     ack or reject.
    worker threads   run the handlers (``notifications.workers``); never touch the connection.
                     Daemon threads, so a handler stuck past the shutdown grace cannot keep
                     the process alive (its notification is redelivered by the broker).

At-least-once: a notification is acknowledged only after every handler it matched has
returned. A handler that raises gets the notification once more (requeued); a second failure
drops it (rejected, dead-lettered where the queue has a DLX) so that one bad message cannot
loop forever. A notification that cannot be read is dropped at once.

A ``blockingtask/create`` notification whose task name a plugin declared with
``@blocking_task`` is decided here: the ``BlockingTask`` is fetched from vCD, the handler's
:class:`~vcdext.notifications.Decision` posted to its ``resume``/``abort``/``fail`` action. A
task that is no longer ``active`` (a redelivery after the decision) is left alone. Handlers
translate, and the core's fallback messages are written, in ``[notifications] locale``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.message import Message
from kombu.messaging import Consumer

from ..errors import BadRequest
from ..i18n import N_, Domain, Localization, Translator, package_domain
from ..notifications import (
    BlockingDeclaration,
    BlockingRequest,
    Decision,
    NotificationDeclaration,
    NotificationSettings,
    Refused,
    _translating,
    fail,
    resume,
)
from ..observer import NO_OBSERVER, Observer
from ..registry import Registry
from ..retry import Backoff
from ..settings import Settings, mask_secret
from ..vcloud.notification import (
    BLOCKING_TASK_CREATE,
    BLOCKING_TASK_OPERATION_PARAMS,
    BLOCKING_TASK_UPDATE_PROGRESS,
    Notification,
    binding_key,
    read_blocking_task,
    read_notification,
    write_operation_params,
)
from .amqp import TransportError, _Workers

log = logging.getLogger(__name__)

_POLL = 0.05
#: The state of a blocking task that still waits for a decision [inferred: vCD's value].
ACTIVE = "active"
#: The core's messages for a decision that came without one (in ``[notifications] locale``).
_DECIDED = {
    "resume": N_("Resumed by the {service} service"),
    "abort": N_("Aborted by the {service} service"),
    "fail": N_("Failed by the {service} service"),
}
_UNDECIDED = N_("The {service} service could not decide on this task")
_EXTENDING = N_("Still deciding")


class NotificationConsumer:
    """Consumes the notification exchange for the handlers of ``registry`` until :meth:`stop`.

    :param vcd: returns a connected vCD client (one per worker thread); needed for blocking
        tasks only.
    :param observer: told of every handler run, blocking-task decision and lost connection
        (metrics); by default nobody is.
    """

    def __init__(
        self,
        registry: Registry,
        settings: NotificationSettings,
        *,
        url: str,
        heartbeat: int = 60,
        vcd: Callable[[], Any] | None = None,
        observer: Observer | None = None,
        localization: Localization | None = None,
    ) -> None:
        self.observer = observer or NO_OBSERVER
        self.url = settings.url or url
        self.heartbeat = heartbeat
        self.notifications: tuple[NotificationDeclaration, ...] = registry.notifications
        self.blocking = {b.operation: b for b in registry.blocking_tasks}
        self.configs = registry.configs
        self.workers = settings.workers
        self.exchange = Exchange(settings.exchange, type="topic", durable=True)
        keys = {binding_key(d.type, success=d.success) for d in self.notifications}
        keys |= {binding_key(BLOCKING_TASK_CREATE, task_name=op) for op in self.blocking}
        self.routing_keys = tuple(sorted(keys))
        self.queue = Queue(
            settings.queue,
            bindings=[binding(self.exchange, routing_key=k) for k in self.routing_keys],
            durable=True,
        )
        self.ready = threading.Event()
        # Messages are in [notifications] locale: neither a notification nor a blocked task
        # says which language its user reads (see vcdext.notifications).
        self.locale = settings.locale
        self.localization = localization or _localization(registry)
        self._vcd = vcd
        self._local = threading.local()
        # Every worker's vCD client, logged out when run() ends.
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._stopping = threading.Event()
        self._settled: queue.Queue[tuple[int, int, str]] = queue.Queue()
        self._inflight: dict[int, Message] = {}
        self._generation = 0
        self._fatal: TransportError | None = None
        # Set once run() ends: notifications still waiting for a thread are left to the broker.
        self._abandon = threading.Event()

    @property
    def wanted(self) -> bool:
        """Whether any plugin declared a notification or blocking-task handler."""
        return bool(self.routing_keys)

    def stop(self) -> None:
        """Stop taking notifications; those being handled are finished and acked first."""
        self._stopping.set()

    def run(self) -> None:
        """Consume until :meth:`stop`."""
        log.info(
            "notifications: consuming %s on %s (exchange %r, keys %s)",
            self.queue.name,
            mask_secret(self.url),
            self.exchange.name,
            ", ".join(self.routing_keys),
        )
        # Daemon threads: a handler stuck past the shutdown grace must not keep the process
        # alive at exit (its notification is redelivered by the broker).
        pool = _Workers(self.workers, ())
        try:
            self._with_reconnect(pool)
        finally:
            self._abandon.set()
            pool.shutdown()
            self.ready.clear()
            self._close_clients()
        if self._fatal is not None:
            raise self._fatal

    # -- consumer thread --------------------------------------------------------------------

    def _with_reconnect(self, pool: _Workers) -> None:
        backoff = Backoff(initial=1.0, cap=15.0, jitter=0.2, stop=self._stopping)
        while not self._stopping.is_set():
            conn = Connection(self.url, heartbeat=self.heartbeat or None)
            try:
                try:
                    conn.connect()
                except AccessRefused as exc:
                    raise TransportError(
                        f"the broker at {mask_secret(self.url)} refused the login: {exc}"
                    ) from None
                backoff.reset()
                self._consume(conn, pool)
                return
            except conn.connection_errors as exc:
                self._reconnect_later(backoff, "broker unreachable", exc)
            except conn.channel_errors as exc:
                if self.ready.is_set():
                    # The channel closed while consuming (a handler outlived the broker's
                    # consumer_timeout): reconnect as for a lost connection.
                    self._reconnect_later(backoff, "the broker closed the channel", exc)
                    continue
                # While declaring: a configuration error (other arguments), no retry helps.
                self._fatal = TransportError(
                    f"the broker refused the notification queue or exchange: {exc}"
                )
                return
            finally:
                conn.release()

    def _reconnect_later(self, backoff: Backoff, what: str, exc: Exception) -> None:
        """The channel is gone: the broker redelivers what it held, so its tags and its work
        not started yet die with it (a new generation); wait, then connect again."""
        self._inflight.clear()
        self._generation += 1
        self.ready.clear()
        self.observer.reconnected("notifications")
        delay = backoff.next_delay()
        log.warning("notifications: %s (%s); retrying", what, exc)
        if delay is not None:
            backoff.wait(delay)

    def _consume(self, conn: Connection, pool: _Workers) -> None:
        channel = conn.channel()
        self.exchange(channel).declare()
        self.queue(channel).declare()
        self._generation += 1
        generation = self._generation

        def on_message(message: Message) -> None:
            self._inflight[message.delivery_tag] = message
            tag = message.delivery_tag
            pool.submit("", lambda: self._work(generation, tag, message))

        consumer = Consumer(channel, [self.queue], on_message=on_message, auto_declare=False)
        consumer.qos(prefetch_count=2 * self.workers)
        consumer.consume()
        self.ready.set()
        while not self._stopping.is_set():
            self._drain(conn)
        consumer.cancel()
        grace = 30.0
        while self._inflight and grace > 0:
            self._drain(conn)
            grace -= _POLL

    def _drain(self, conn: Connection) -> None:
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=_POLL)
        conn.heartbeat_check()
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

    def _work(self, generation: int, tag: int, message: Message) -> None:
        if self._abandon.is_set() or generation != self._generation:
            # run() gave up on it, or its channel is gone: the broker redelivers it, so
            # running it here too would handle it twice.
            return
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        redelivered = bool(message.delivery_info.get("redelivered"))
        try:
            self.handle(body, redelivered=redelivered)
        except BadRequest as exc:
            log.error("notifications: dropped an unreadable notification: %s", exc)
            self.observer.notification_handled("", "", "failed", 0.0)
            action = "reject"
        except BaseException:  # even a SystemExit: the message is settled, never left open
            log.exception("notifications: a handler failed (%s)", _describe(body))
            action = "reject" if redelivered else "requeue"
        else:
            action = "ack"
        self._settled.put((generation, tag, action))

    def handle(self, body: bytes, *, redelivered: bool = False) -> Notification:
        """Run every handler ``body`` matches (and decide a blocked task); raises what a
        handler raised, after the others ran. ``redelivered``: the broker delivered it
        before (a handler that raises now drops it; counted ``failed``, not ``requeued``)."""
        note = read_notification(body)
        failure: BaseException | None = None
        entity = note.entity
        observer = self.observer
        failed = "failed" if redelivered else "requeued"
        if note.type == BLOCKING_TASK_CREATE and entity is not None:
            declared = self.blocking.get(entity.name)
            if declared is not None:
                started = time.monotonic()
                outcome = "ok"
                try:
                    self._decide(note, declared)
                except BaseException as exc:
                    failure = exc
                    outcome = failed
                elapsed = time.monotonic() - started
                observer.notification_handled(declared.plugin, note.type, outcome, elapsed)
        for declaration in self.notifications:
            if declaration.matches(note):
                started = time.monotonic()
                outcome = "ok"
                try:
                    with _translating(self._translator(declaration.plugin)):
                        declaration.handler(note)
                except BaseException as exc:  # a SystemExit too: the others still run
                    log.exception(
                        "notification handler %s of plugin %r failed",
                        declaration.name,
                        declaration.plugin,
                    )
                    failure = exc
                    outcome = failed
                elapsed = time.monotonic() - started
                observer.notification_handled(declaration.plugin, note.type, outcome, elapsed)
        if failure is not None:
            raise failure
        return note

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            if self._vcd is None:
                raise TransportError(
                    "a blocking task arrived but no [vcd] is configured to decide it with"
                )
            client = self._local.client = self._vcd()
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _close_clients(self) -> None:
        # vCD limits the sessions of a user: log out instead of leaving them to expire.
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            close = getattr(client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:
                    log.debug("notifications: logging out of vCD failed: %s", exc)

    def _translator(self, plugin: str | None) -> Translator:
        """``plugin``'s (``None``: the core's) catalog in ``[notifications] locale``."""
        return self.localization.translator(plugin, (self.locale,))

    def _decide(self, note: Notification, declared: BlockingDeclaration) -> None:
        assert note.entity is not None
        client = self._client()
        href = f"/api/admin/extension/blockingTask/{note.entity.uuid}"
        task = client.read(href, read_blocking_task)
        if task.status != ACTIVE:
            log.info("blocking task %s is %s already; nothing to decide", href, task.status)
            self.observer.blocking_decision(declared.plugin, "default")
            return
        core = self._translator(None)

        def extend(timeout_ms: int, message: str) -> None:
            target = task.action_href("updateProgress") or f"{href}/action/updateProgress"
            text = message or core.gettext(_EXTENDING)
            params = write_operation_params(text, timeout_ms=timeout_ms)
            client.post(target, params, BLOCKING_TASK_UPDATE_PROGRESS)
            self.observer.blocking_decision(declared.plugin, "extend")

        translator = self._translator(declared.plugin)
        request = BlockingRequest(
            operation=declared.operation,
            task=task,
            notification=note,
            vcd=client,
            config=self.configs.get(declared.plugin, {}),
            translator=translator,
            _extend=extend,
        )
        decision: Decision
        try:
            with _translating(translator):
                outcome = declared.handler(request)
        except Refused as exc:
            decision = fail(str(exc))
        except BaseException:  # even a SystemExit: the task is failed, never left undecided
            log.exception("blocking task handler %s of %r failed", declared.name, declared.plugin)
            decision = fail(core.gettext(_UNDECIDED, service=declared.plugin))
        else:
            decision = outcome if isinstance(outcome, Decision) else resume()
        message = decision.message or core.gettext(
            _DECIDED[decision.action], service=declared.plugin
        )
        target = task.action_href(decision.action) or f"{href}/action/{decision.action}"
        client.post(target, write_operation_params(message), BLOCKING_TASK_OPERATION_PARAMS)
        self.observer.blocking_decision(declared.plugin, decision.action)
        log.info("blocking task %s (%s): %s", href, task.name, decision.action)


def _localization(registry: Registry) -> Localization:
    """The core's catalogs and each handler's plugin's: the domain of the top-level package
    its handler comes from (as the runtime's are the plugin object's)."""
    domains: dict[str, Domain] = {}
    handlers: list[tuple[str, object]] = [(d.plugin, d.handler) for d in registry.notifications]
    handlers += [(d.plugin, d.handler) for d in registry.blocking_tasks]
    for plugin, handler in handlers:
        package = str(getattr(handler, "__module__", "") or "").split(".")[0]
        if plugin and package and plugin not in domains:
            try:
                domains[plugin] = package_domain(package)
            except (ImportError, ValueError):  # __main__ and the like: English only
                continue
    return Localization(domains)


def _describe(body: bytes) -> str:
    try:
        note = read_notification(body)
    except Exception:
        return "unreadable"
    return f"{note.type}, event {note.event_id}"


__all__ = ["NotificationConsumer"]


def start_notifications(
    registry: Registry,
    settings: Settings,
    *,
    amqp_url: str,
    observer: Observer | None = None,
    watch: Callable[[threading.Thread, threading.Event], None] | None = None,
) -> Callable[[], None]:
    """Start a :class:`NotificationConsumer` on its own thread when ``registry`` declares a
    handler (``[notifications]``; the broker of ``amqp_url`` unless ``notifications.url``);
    returns the function that stops it and waits for it. Nothing declared: nothing started.

    :param observer: the consumer's (metrics).
    :param watch: called with the consumer's thread and its ``ready`` event (set while it
        consumes) once the thread started, for the health probes.
    """
    consumer = NotificationConsumer(
        registry,
        settings.section(NotificationSettings),
        url=amqp_url,
        heartbeat=settings.amqp.heartbeat,
        vcd=_client_factory(settings) if settings.vcd.url else None,
        observer=observer,
    )
    if not consumer.wanted:
        return lambda: None

    def run() -> None:
        try:
            consumer.run()
        except Exception:
            log.exception("the notification consumer failed")

    thread = threading.Thread(target=run, name="vcdext-notifications", daemon=True)
    thread.start()
    if watch is not None:
        watch(thread, consumer.ready)
    consumer.ready.wait(10)

    def stop() -> None:
        consumer.stop()
        thread.join(timeout=40)

    return stop


def _client_factory(settings: Settings) -> Callable[[], Any]:
    def connect() -> Any:
        from ..vcd import VcdClient

        client = VcdClient.from_settings(settings)
        client.connect()
        return client

    return connect
