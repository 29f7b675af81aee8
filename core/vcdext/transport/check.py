"""``vcdext run --check``'s look at the broker: log in, look for the topology, change nothing.

AMQP: only passive declarations are made: an exchange or queue that does not exist yet is
reported (``vcdext run`` declares it), never created, and nothing is consumed or published.

MQTT: each extension logs in with its stored token, subscribes to its monitor topic and
unsubscribes at once, then disconnects. That takes nothing from a running instance: an MQTT
subscription is not a competing consumer (every subscriber gets its own copy of each message,
docs/running.md "One instance per extension"), the session is clean (the broker forgets the
subscription with the connection), and the client id is the check's own (a second connection
with a running instance's client id would make the broker drop that instance). A request that
arrives in that instant is acknowledged to the broker on the check's copy only and never run:
the running instance answers its own copy.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import VcdExtError
from ..registry import RegisteredService
from ..settings import AmqpSettings, MqttSettings, mask_secret
from ..vcloud import mqtt as envelope
from .amqp import TransportError
from .mqtt import Extension, broker_url, extension_of


def check_broker(
    settings: AmqpSettings, queues: Iterable[str], *, timeout: float = 10.0
) -> list[str]:
    """What the broker of ``settings`` holds of vcdext's topology, one line per part.

    :raises TransportError: the broker cannot be reached or refuses the login.
    """
    url = mask_secret(settings.url)
    conn = Connection(settings.url, connect_timeout=timeout)
    try:
        try:
            conn.connect()
        except AccessRefused as exc:
            raise TransportError(f"the broker at {url} refused the login: {exc}") from None
        except (*conn.connection_errors, OSError) as exc:
            raise TransportError(f"the broker at {url} cannot be reached: {exc}") from None
        lines = [f"broker {url}: logged in"]
        lines.append(_passive(conn, "exchange", settings.exchange))
        lines += [_passive(conn, "queue", name) for name in queues]
        return lines
    finally:
        conn.release()


def _passive(conn: Connection, kind: str, name: str) -> str:
    channel = conn.channel()
    try:
        if kind == "exchange":
            channel.exchange_declare(name, "direct", passive=True)
            return f"exchange {name!r}: exists"
        _, waiting, consumers = channel.queue_declare(name, passive=True)
        return f"queue {name!r}: exists, {waiting} waiting, {consumers} consumer(s)"
    except conn.channel_errors:  # 404: the broker closed this channel, the connection lives
        return f"{kind} {name!r}: does not exist yet (vcdext run declares it)"
    finally:
        with contextlib.suppress(Exception):  # already closed by the broker's refusal
            channel.close()


def check_mqtt(
    settings: MqttSettings,
    vcd_url: str,
    services: Iterable[RegisteredService],
    *,
    timeout: float = 10.0,
) -> Iterator[str]:
    """Log in to the MQTT broker as each service's extension (with the token ``vcdext run``
    would use, never shown) and see that it may subscribe to its monitor topic; one line per
    step, yielded as it is done.

    :raises TransportError: no broker URL, no token (``vcdext register`` stores it), the broker
        cannot be reached, refuses the login or the subscription, or does not answer.
    """
    url = broker_url(settings, vcd_url)
    shown = mask_secret(url)
    parts = urlsplit(url)
    exts = [extension_of(s, settings.extension_version) for s in services]
    if not exts:
        yield f"broker {shown}: not checked (no service, so no extension to log in as)"
        return
    tokens: dict[str, str] = {}
    if parts.username is None:
        from ..vcd.tokens import TokenFile

        try:
            tokens = TokenFile(settings.token_file).read()
        except VcdExtError as exc:
            raise TransportError(str(exc)) from None
    for ext in exts:
        if parts.username is not None:
            login = (unquote(parts.username), unquote(parts.password or ""))
            source = "the user in mqtt.url"
        else:
            token = tokens.get(ext.id)
            if not token:
                raise TransportError(
                    f"no extension token for {ext.id} in mqtt.token_file "
                    f"({settings.token_file}); run `vcdext register` first"
                )
            login = (ext.username, token)
            source = "its extension token from mqtt.token_file"
        yield from _ProbeMqtt(settings, url, ext, login, timeout).run(source)


class _ProbeMqtt:
    """One extension's look at the broker: log in, subscribe, unsubscribe, disconnect."""

    def __init__(
        self,
        settings: MqttSettings,
        url: str,
        ext: Extension,
        login: tuple[str, str],
        timeout: float,
    ) -> None:
        self.settings, self.url, self.ext, self.timeout = settings, url, ext, timeout
        self.shown = mask_secret(url)
        self.user = login[0]
        self.connack: Any = None
        self.suback: list[Any] | None = None
        self.unsubscribed = False
        self.closed: Any = None
        # Never a running instance's id (``<client_id>-<name>``): the broker would drop it.
        prefix = settings.client_id or "vcdext"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{prefix}-check-{uuid.uuid4().hex[:8]}-{ext.name}",
            clean_session=True,
            protocol=paho.MQTTv311,
            transport="websockets",
        )
        client.ws_set_options(path=urlsplit(url).path or envelope.BROKER_PATH)
        if urlsplit(url).scheme == "wss":
            client.tls_set(
                ca_certs=settings.ca_bundle or None,
                cert_reqs=ssl.CERT_REQUIRED if settings.verify_tls else ssl.CERT_NONE,
            )
            client.tls_insecure_set(not settings.verify_tls)
        client.username_pw_set(*login)
        client.connect_timeout = timeout
        client.on_connect = lambda c, u, flags, rc, props: setattr(self, "connack", rc)
        client.on_subscribe = lambda c, u, mid, codes, props: setattr(self, "suback", codes)
        client.on_unsubscribe = lambda c, u, mid, codes, props: setattr(self, "unsubscribed", True)
        client.on_disconnect = lambda c, u, flags, rc, props: setattr(self, "closed", rc)
        # No on_message: a request that arrives meanwhile is this connection's copy, dropped.
        self.client = client

    def run(self, source: str) -> Iterator[str]:
        parts = urlsplit(self.url)
        deadline = time.monotonic() + self.timeout
        try:
            try:
                self.client.connect(
                    parts.hostname or "localhost",
                    parts.port or (443 if parts.scheme == "wss" else 80),
                    keepalive=self.settings.keepalive,
                )
            except (OSError, ValueError) as exc:
                why = str(exc) or type(exc).__name__
                raise TransportError(
                    f"the broker at {self.shown} cannot be reached: {why}"
                ) from None
            self._wait(lambda: self.connack is not None, deadline, "to accept the login")
            if self.connack.is_failure:
                raise TransportError(
                    f"the broker at {self.shown} refused the login of {self.user}: {self.connack}"
                )
            yield f"broker {self.shown}: logged in as {self.user} ({source})"
            topic = self.ext.topics.monitor
            self.client.subscribe(topic, qos=self.settings.qos)
            self._wait(lambda: self.suback is not None, deadline, f"to subscribe to {topic}")
            assert self.suback is not None
            (granted,) = self.suback
            if granted.is_failure:
                raise TransportError(
                    f"the broker at {self.shown} refused {self.user} the subscription to "
                    f"{topic}: {granted}"
                )
            self.client.unsubscribe(topic)
            self._wait(lambda: self.unsubscribed, deadline, f"to unsubscribe from {topic}")
            lower = (
                f", lower than mqtt.qos = {self.settings.qos}"
                if granted.value < self.settings.qos
                else ""
            )
            yield (
                f"topic {topic!r}: may subscribe (QoS {granted.value} granted{lower}), "
                "unsubscribed at once"
            )
        finally:
            self._close()

    def _wait(self, done: Any, deadline: float, what: str) -> None:
        while not done():
            if self.closed is not None:
                if self.connack is None:  # RabbitMQ over WebSocket closes instead of refusing
                    raise TransportError(
                        f"the broker at {self.shown} closed the connection before accepting "
                        f"the login of {self.user} (a wrong or revoked extension token? "
                        "`vcdext register` issues one)"
                    )
                raise TransportError(
                    f"the broker at {self.shown} closed the connection of {self.user} "
                    f"waiting for it {what}"
                )
            if time.monotonic() > deadline:
                raise TransportError(
                    f"the broker at {self.shown} did not answer within {self.timeout:g} s "
                    f"(waiting for it {what})"
                )
            self.client.loop(timeout=0.1)

    def _close(self) -> None:
        if self.closed is None and self.client.is_connected():
            with contextlib.suppress(Exception):
                self.client.disconnect()
                end = time.monotonic() + 1
                while self.closed is None and time.monotonic() < end:
                    self.client.loop(timeout=0.05)
        with contextlib.suppress(Exception):  # the socket, whatever state paho is in
            sock = self.client.socket()
            if sock is not None:
                sock.close()
