"""The MQTT request/reply loop (paho-mqtt): the same services over vCD 10.2+'s message bus.

One MQTT connection per service, since vCD gives each API extension (``vendor/name/version``)
its own login and topics: it subscribes to the extension's *monitor* topic and publishes
replies on its *respond* topic (:mod:`vcdext.vcloud.mqtt` names both and reads and writes the
envelopes). The dispatcher, the handler threads (shared fairly between the services) and the
cache of recent replies are the AMQP transport's; only the connection differs.

Threads::

    paho network threads  one per connection: read requests, hand them to the workers,
                          send replies; paho reconnects by itself and we subscribe again.
    worker threads        run the dispatcher (the AMQP transport's fair ``_Workers``).

What MQTT cannot give that AMQP does (docs/running.md, "AMQP or MQTT"): vCD's broker keeps no
session (clean sessions only), so a request that was delivered to a process that then died,
or that arrived while no connection was up, is not delivered again: vCD's client gets vCD's
timeout. There is no prefetch either: requests beyond what the workers can take wait in
memory, and those that waited longer than ``runtime.timeout`` are answered 503 unrun.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..dispatch import Dispatcher
from ..errors import ProtocolError, VcdExtError
from ..protocol import encode_reply
from ..registry import RegisteredService
from ..settings import MqttSettings, mask_secret
from ..vcloud import mqtt as envelope
from .amqp import _RECENT_REPLIES, _RECENT_REPLY_BYTES, TransportError, _RecentReplies, _Workers

log = logging.getLogger(__name__)

#: CONNACK reasons that no retry can fix (MQTT 3.1.1: 4 bad user name or password,
#: 5 not authorized).
_REFUSED = ("Bad user name or password", "Not authorized")


@dataclass(frozen=True)
class Extension:
    """What one service is on vCD's message bus."""

    service: RegisteredService
    vendor: str
    name: str
    version: str

    @property
    def id(self) -> str:
        return envelope.extension_id(self.vendor, self.name, self.version)

    @property
    def username(self) -> str:
        return envelope.broker_username(self.vendor, self.name, self.version)

    @property
    def topics(self) -> envelope.Topics:
        return envelope.topics_of(self.vendor, self.name, self.version)


def extension_of(service: RegisteredService, version: str) -> Extension:
    """The API extension that serves ``service`` (vendor: the service's, else its namespace)."""
    return Extension(service, service.vendor or service.namespace, service.name, version)


def broker_url(settings: MqttSettings, vcd_url: str) -> str:
    """``mqtt.url``, or vCD's own broker: ``wss://<vcd host>/messaging/mqtt``."""
    if settings.url:
        return settings.url
    if not vcd_url:
        raise TransportError("runtime.transport is mqtt but neither mqtt.url nor vcd.url is set")
    parts = urlsplit(vcd_url)
    return f"wss://{parts.netloc}{envelope.BROKER_PATH}"


class MqttServer:
    """Serves the services of ``dispatcher`` over MQTT until :meth:`stop` is called.

    :param tokens: reads extension id → extension token (the broker passwords), when
        :meth:`run` starts (registration may have just written them); not needed when the URL
        carries a user and password.
    :param vcd_url: where vCD is, for the default broker URL.
    :param workers: handler threads (``runtime.workers``).
    """

    #: vCD must know the extension (and have issued its token) before we can log in.
    registers_first = True

    def __init__(
        self,
        dispatcher: Dispatcher,
        settings: MqttSettings,
        *,
        workers: int,
        vcd_url: str = "",
        tokens: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self.url = broker_url(settings, vcd_url)
        self.workers = workers
        self.qos = settings.qos
        self.reply_ttl = dispatcher.timeout
        self.extensions = [
            extension_of(s, settings.extension_version)
            for s in dispatcher.registry.services.values()
        ]
        self.ready = threading.Event()
        self._read_tokens = tokens
        self._tokens: Mapping[str, str] = {}
        self._stopping = threading.Event()
        self._fatal: TransportError | None = None
        self._subscribed: set[str] = set()
        self._lock = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self._recent = _RecentReplies(_RECENT_REPLIES, _RECENT_REPLY_BYTES)
        self._clients: dict[str, paho.Client] = {}
        self._workers: _Workers | None = None

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
        """Connect every extension, serve until :meth:`stop`, then answer what was taken.

        :raises TransportError: the broker refused a login, or an extension has no token.
        """
        if self._read_tokens is not None and urlsplit(self.url).username is None:
            try:
                self._tokens = self._read_tokens()
            except VcdExtError as exc:
                raise TransportError(str(exc)) from None
        self._workers = _Workers(self.workers, (e.service.routing_key for e in self.extensions))
        try:
            for ext in self.extensions:
                self._clients[ext.id] = self._connect(ext)
            while not self._stopping.wait(0.1):
                pass
            for ext in self.extensions:  # take no new requests
                client = self._clients.get(ext.id)
                if client is not None and client.is_connected():
                    client.unsubscribe(ext.topics.monitor)
            grace = time.monotonic() + self.reply_ttl * 3 + 5
            with self._idle:
                while self._inflight and time.monotonic() < grace:
                    self._idle.wait(0.1)
                if self._inflight:
                    log.warning(
                        "%d request(s) not finished at shutdown; MQTT will not deliver them "
                        "again (vCD's client gets vCD's timeout)",
                        self._inflight,
                    )
            time.sleep(0.1)  # let paho send the last replies
        finally:
            self.ready.clear()
            for client in self._clients.values():
                client.disconnect()
                client.loop_stop()
            self._clients.clear()
            self._workers.shutdown()
        if self._fatal is not None:
            raise self._fatal

    # -- connections ------------------------------------------------------------------------

    def _connect(self, ext: Extension) -> paho.Client:
        parts = urlsplit(self.url)
        client_id = f"{self.settings.client_id or _default_client_id()}-{ext.name}"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,  # vCD's broker supports nothing else
            protocol=paho.MQTTv311,
            transport="websockets",
        )
        client.ws_set_options(path=parts.path or envelope.BROKER_PATH)
        if parts.scheme == "wss":
            client.tls_set(
                ca_certs=self.settings.ca_bundle or None,
                cert_reqs=ssl.CERT_REQUIRED if self.settings.verify_tls else ssl.CERT_NONE,
            )
            client.tls_insecure_set(not self.settings.verify_tls)
        if parts.username is not None:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        else:
            token = self._tokens.get(ext.id)
            if not token:
                raise TransportError(
                    f"no extension token for {ext.id} in mqtt.token_file; "
                    "run `vcdext register` (or set vcd.url) first"
                )
            client.username_pw_set(ext.username, token)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = lambda c, u, flags, rc, props: self._on_connect(c, ext, rc)
        client.on_connect_fail = lambda c, u: log.warning(
            "broker %s unreachable; retrying", mask_secret(self.url)
        )
        client.user_data_set({"accepted": False})
        client.on_disconnect = lambda c, u, flags, rc, props: self._on_disconnect(ext, rc, u)
        client.on_subscribe = lambda c, u, mid, codes, props: self._on_subscribe(ext, codes)
        client.on_message = lambda c, u, msg: self._on_message(c, ext, msg)
        # Only replies are published here: the broker took one (PUBACK at QoS 1).
        client.on_publish = lambda c, u, mid, rc, props: self.dispatcher.observer.replied()
        client.connect_async(
            parts.hostname or "localhost",
            parts.port or (443 if parts.scheme == "wss" else 80),
            keepalive=self.settings.keepalive,
        )
        client.loop_start()
        return client

    def _on_connect(self, client: paho.Client, ext: Extension, rc: Any) -> None:
        if not rc.is_failure and isinstance(client.user_data_get(), dict):
            client.user_data_get()["accepted"] = True
        if rc.is_failure:
            if str(rc) in _REFUSED:
                self._fatal = TransportError(
                    f"the broker at {mask_secret(self.url)} refused the login of {ext.username}: "
                    f"{rc}"
                )
                self.stop()
            else:
                log.warning("broker %s refused the connection: %s", mask_secret(self.url), rc)
            return
        if self._stopping.is_set():
            return
        client.subscribe(ext.topics.monitor, qos=self.qos)

    def _on_subscribe(self, ext: Extension, codes: list[Any]) -> None:
        if any(code.is_failure for code in codes):
            self._fatal = TransportError(
                f"the broker refused the subscription to {ext.topics.monitor}"
            )
            self.stop()
            return
        with self._lock:
            self._subscribed.add(ext.id)
            if len(self._subscribed) == len(self.extensions):
                self.ready.set()
                log.info("serving over MQTT (%s)", mask_secret(self.url))

    def _on_disconnect(self, ext: Extension, rc: Any, state: Any) -> None:
        with self._lock:
            self._subscribed.discard(ext.id)
            self.ready.clear()
        if self._stopping.is_set():
            return
        self.dispatcher.observer.reconnected("mqtt")
        if isinstance(state, dict) and not state.get("accepted"):
            # Some brokers (RabbitMQ over WebSocket) close instead of refusing with a CONNACK.
            log.warning(
                "the broker %s closed the connection of %s before accepting its login (%s); "
                "retrying (a wrong or revoked extension token? `vcdext register` issues one)",
                mask_secret(self.url),
                ext.username,
                rc,
            )
        else:
            log.warning(
                "lost the broker connection of %s (%s); reconnecting (requests published "
                "meanwhile are lost: MQTT sessions are clean)",
                ext.username,
                rc,
            )
        if isinstance(state, dict):
            state["accepted"] = False

    # -- requests ---------------------------------------------------------------------------

    def _on_message(self, client: paho.Client, ext: Extension, msg: paho.MQTTMessage) -> None:
        received = time.monotonic()
        payload = bytes(msg.payload)
        if self._stopping.is_set():
            return  # never taken: vCD's client gets vCD's timeout, as on AMQP after cancel
        if len(payload) > self.settings.max_message_bytes:
            request_id = envelope.request_id_in(payload, head_only=True)
            log.warning(
                "request %s is %d bytes, over mqtt.max_message_bytes (%d)",
                request_id or "(no id)",
                len(payload),
                self.settings.max_message_bytes,
            )
            outcome = Dispatcher.error_outcome(
                413,
                "REQUEST_ENTITY_TOO_LARGE",
                f"The request message is larger than {self.settings.max_message_bytes} bytes",
            )
            if request_id:
                self._publish(client, ext, request_id, encode_reply("", *outcome_parts(outcome)))
            return
        try:
            opened = envelope.open_request(payload)
        except ProtocolError as exc:
            request_id = envelope.request_id_in(payload)
            log.warning("unreadable MQTT request %s: %s", request_id or "(no id)", exc)
            if request_id:  # without a request id vCD cannot match any reply
                outcome = Dispatcher.error_outcome(
                    400, "BAD_REQUEST", f"Malformed request message: {exc}"
                )
                self._publish(client, ext, request_id, encode_reply("", *outcome_parts(outcome)))
            return
        with self._lock:
            self._inflight += 1
        assert self._workers is not None
        self._workers.submit(
            ext.service.routing_key, lambda: self._work(client, ext, opened, received)
        )

    def _work(
        self, client: paho.Client, ext: Extension, opened: envelope.Envelope, received: float
    ) -> None:
        try:
            key = hashlib.sha256(f"{ext.id}\0{opened.request_id}".encode()).digest()
            # QoS 1 may deliver a request twice: the second gets the first one's reply.
            earlier = self._recent.claim(key, redelivered=True)
            if earlier is not None:
                self.dispatcher.observer.redelivered(ext.service.plugin)
                earlier.done.wait(self.reply_ttl * 3 + 5)
                if earlier.reply is not None:
                    log.info("repeated request %s answered from recent replies", opened.request_id)
                    self._publish(client, ext, opened.request_id, earlier.reply)
                    return
                self._recent.claim(key, redelivered=False)
            try:
                reply = self.dispatcher.handle_message(
                    opened.message, routing_key=ext.service.routing_key, received=received
                )
            except BaseException:  # the dispatcher answers errors itself; this is a last resort
                log.exception("dispatch failed for request %s", opened.request_id)
                outcome = Dispatcher.error_outcome(500, "INTERNAL_SERVER_ERROR", "Internal error")
                reply = encode_reply(opened.request_id, *outcome_parts(outcome))
            self._recent.finish(key, reply)
            self._publish(client, ext, opened.request_id, reply)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _publish(self, client: paho.Client, ext: Extension, request_id: str, reply: bytes) -> None:
        """Publish the AMQP-format ``reply`` as the ``API_RESPONSE`` to ``request_id``; paho
        queues it while reconnecting."""
        try:
            body = envelope.response_from_amqp(request_id, reply)
        except ProtocolError:  # our own encoder wrote it: a bug
            log.exception("cannot convert the reply to request %s", request_id)
            return
        info = client.publish(ext.topics.respond, body, qos=self.qos, retain=False)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            log.error("could not publish the reply to request %s: %s", request_id, info.rc)


def outcome_parts(outcome: Any) -> tuple[int, Any, bytes]:
    """``(status, headers, body)`` of a dispatcher outcome."""
    return outcome.status, outcome.headers, outcome.body


def _default_client_id() -> str:
    return f"vcdext-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
