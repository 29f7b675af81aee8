"""The cell's MQTT side: vCD's message bus, played against a real MQTT broker (paho-mqtt).

vCD publishes a forwarded request on the API extension's *monitor* topic and waits for the
``API_RESPONSE`` with the same ``requestId`` on its *respond* topic. The cell does the same: one
connection, subscribed to an extension's respond topic before its first request is published
(by exact name: RabbitMQ's MQTT plugin does not match ``+`` against a level holding a dot, such
as the version ``1.0.0``), replies matched to their waiting request by ``requestId``. The
envelopes are written and read by :mod:`vcdext.vcloud.mqtt`.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import uuid
from concurrent.futures import Future, InvalidStateError
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from vcdext.errors import ProtocolError
from vcdext.settings import mask_secret
from vcdext.vcloud import mqtt as envelope
from vcdext.vcloud.message import Reply

from .forwarder import ForwardError, ForwardTimeout

log = logging.getLogger(__name__)

_SUBSCRIBE_TIMEOUT = 10.0


class MqttForwarder:
    """Publishes request envelopes to extensions and waits for their replies.

    :param url: ``ws://user:password@host:port/messaging/mqtt`` (or ``wss://``).
    """

    def __init__(self, url: str, *, qos: int = 1) -> None:
        self.url = url
        self.qos = qos
        self._waiting: dict[str, Future[Reply]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._client: paho.Client | None = None
        #: Respond topic → set once the broker granted the subscription.
        self._subscribed: dict[str, threading.Event] = {}
        self._pending: dict[int, threading.Event] = {}

    def start(self, timeout: float = 15.0) -> None:
        """Connect and subscribe; raises :class:`ForwardError` if that fails in ``timeout``."""
        parts = urlsplit(self.url)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"vcdext-cell-{uuid.uuid4().hex[:8]}",
            clean_session=True,
            protocol=paho.MQTTv311,
            transport="websockets",
        )
        client.ws_set_options(path=parts.path or envelope.BROKER_PATH)
        if parts.scheme == "wss":
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        if parts.username is not None:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        client.on_connect = lambda c, u, f, rc, p: self._on_connect(c, rc)
        client.on_subscribe = lambda c, u, mid, codes, p: self._on_subscribe(mid)
        client.on_message = lambda c, u, msg: self._on_reply(bytes(msg.payload))
        self._client = client
        try:
            client.connect(parts.hostname or "localhost", parts.port or 443)
        except OSError as exc:
            raise ForwardError(
                f"cannot connect the cell to {mask_secret(self.url)}: {exc}"
            ) from None
        client.loop_start()
        if not self._ready.wait(timeout):
            self.stop()
            raise ForwardError(f"cannot connect the cell to {mask_secret(self.url)} (timed out)")
        log.info("cell connected to MQTT broker %s", mask_secret(self.url))

    def stop(self) -> None:
        """Disconnect; requests still waiting fail at once."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for future in waiting:
            _settle(future, ForwardError("the cell is stopping"))

    def send(self, topic: str, message: bytes, request_id: str) -> Future[Reply]:
        """Publish the AMQP-format request ``message`` in its envelope on ``topic``; the future
        gets the reply.

        :raises ForwardError: not connected, or ``request_id`` is waiting already.
        """
        client = self._client
        if client is None or not self._ready.is_set():
            raise ForwardError("the cell is not connected to the MQTT broker")
        self._subscribe(client, _respond_topic(topic))
        future: Future[Reply] = Future()
        with self._lock:
            if request_id in self._waiting:
                raise ForwardError(f"request id {request_id!r} is in use")
            self._waiting[request_id] = future
        info = client.publish(topic, envelope.wrap_request(message, request_id), qos=self.qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.forget(request_id)
            raise ForwardError(f"cannot publish to {topic}: {paho.error_string(info.rc)}")
        return future

    def forward(self, topic: str, message: bytes, request_id: str, timeout: float) -> Reply:
        """Publish one request and wait for its reply.

        :raises ForwardTimeout: no reply within ``timeout`` seconds.
        :raises ForwardError: not connected.
        """
        future = self.send(topic, message, request_id)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            raise ForwardTimeout(f"no reply within {timeout} s") from None
        finally:
            self.forget(request_id)

    def forget(self, request_id: str) -> None:
        """Stop waiting for ``request_id``: its reply, if it comes, is dropped."""
        with self._lock:
            self._waiting.pop(request_id, None)

    def _on_connect(self, client: paho.Client, rc: object) -> None:
        if getattr(rc, "is_failure", True):
            log.warning("the MQTT broker refused the cell: %s", rc)
            return
        with self._lock:
            topics = list(self._subscribed)
        for topic in topics:  # again after a reconnection (clean sessions)
            client.subscribe(topic, qos=self.qos)
        self._ready.set()

    def _subscribe(self, client: paho.Client, topic: str) -> None:
        with self._lock:
            done = self._subscribed.get(topic)
            if done is None:
                done = self._subscribed[topic] = threading.Event()
                _, mid = client.subscribe(topic, qos=self.qos)
                if mid is not None:
                    self._pending[mid] = done
        if not done.wait(_SUBSCRIBE_TIMEOUT):
            raise ForwardError(f"the MQTT broker did not grant the subscription to {topic}")

    def _on_subscribe(self, mid: int) -> None:
        with self._lock:
            done = self._pending.pop(mid, None)
        if done is not None:
            done.set()

    def _on_reply(self, payload: bytes) -> None:
        try:
            reply = envelope.decode_response(payload)
        except ProtocolError as exc:
            log.warning("dropped an unreadable reply on the respond topic: %s", exc)
            return
        with self._lock:
            future = self._waiting.pop(reply.id, None)
        if future is None:
            log.debug("dropped a reply for request id %s (late or unknown)", reply.id)
            return
        _settle(future, reply)


def _respond_topic(monitor: str) -> str:
    """The respond topic of the extension whose monitor topic is ``monitor``."""
    base, _, _ = monitor.rpartition("/")
    return f"{base}/vcd"


def _settle(future: Future[Reply], outcome: Reply | Exception) -> None:
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
