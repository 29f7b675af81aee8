"""``vcdext run --check`` with ``runtime.transport = "mqtt"``, against the session's broker
(RabbitMQ's rabbitmq_web_mqtt, which knows hello's extension login: EXTENSION_LOGIN)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import vcdext_hello.plugin as hello
from tests.support.rabbitmq import EXTENSION_LOGIN
from vcdext import app
from vcdext.app import create_transport
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.transport.amqp import TransportError
from vcdext.transport.check import check_mqtt
from vcdext.transport.mqtt import MqttServer
from vcdext.vcd.tokens import TokenFile
from vcdext.vcloud import mqtt as envelope
from vcdext.vcloud.message import encode_request

from .test_mqtt import RawVcd

pytestmark = pytest.mark.integration

MONITOR = "topic/extension/vcdext/hello/1.0.0/ext"


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port}"))


def _settings(url: str, tmp_path, token: str | None, **env: str) -> Settings:
    path = tmp_path / "tokens.json"
    if token is not None:
        TokenFile(str(path)).store(envelope.extension_id("vcdext", "hello", "1.0.0"), token)
    environ = {
        "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "VCDEXT_MQTT_URL": url,
        "VCDEXT_MQTT_TOKEN_FILE": str(path),
        **env,
    }
    return load_settings(None, environ=environ)


def _check(settings: Settings) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = app.check(settings, out=lines.append)
    return code, "\n".join(lines).splitlines()


def test_a_stored_token_logs_in_and_may_subscribe(mqtt_broker: str, tmp_path) -> None:
    user, token = EXTENSION_LOGIN
    url = _without_login(mqtt_broker)
    code, lines = _check(_settings(url, tmp_path, token))
    assert code == 0, lines
    assert f"broker {url}: logged in as {user} (its extension token from mqtt.token_file)" in lines
    assert f"topic {MONITOR!r}: may subscribe (QoS 1 granted), unsubscribed at once" in lines
    assert lines[-1] == "check passed"
    assert not any(token in line for line in lines)


def test_the_qos_asked_is_the_one_reported(mqtt_broker: str, tmp_path) -> None:
    settings = _settings(
        _without_login(mqtt_broker), tmp_path, EXTENSION_LOGIN[1], VCDEXT_MQTT_QOS="0"
    )
    code, lines = _check(settings)
    assert code == 0, lines
    assert f"topic {MONITOR!r}: may subscribe (QoS 0 granted), unsubscribed at once" in lines


def test_a_login_in_the_url_replaces_the_token_and_its_password_is_not_shown(
    mqtt_broker: str, tmp_path
) -> None:
    code, lines = _check(_settings(mqtt_broker, tmp_path, None))  # ws://guest:guest@...
    assert code == 0, lines
    assert any("logged in as guest (the user in mqtt.url)" in line for line in lines)
    assert not any("guest@" in line or ":guest" in line for line in lines)
    assert lines[-1] == "check passed"


def test_a_wrong_token_is_refused_in_one_line_without_the_token(mqtt_broker: str, tmp_path) -> None:
    url = _without_login(mqtt_broker)
    code, lines = _check(_settings(url, tmp_path, "s3cret-but-wrong"))
    assert code == 1
    problems = [line for line in lines if line.startswith("problem: ")]
    assert problems == [
        f"problem: the broker at {url} closed the connection before accepting the login of "
        "vcdext/hello/1.0.0 (a wrong or revoked extension token? `vcdext register` issues one)"
    ]
    assert not any("logged in" in line for line in lines)
    assert not any("s3cret" in line for line in lines)
    assert lines[-1] == "check failed: 1 problem(s)"


def test_an_unreachable_broker_fails_the_check_at_once(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/messaging/mqtt"
    started = time.monotonic()
    code, lines = _check(_settings(url, tmp_path, EXTENSION_LOGIN[1]))
    assert time.monotonic() - started < 10
    assert code == 1
    (problem,) = [line for line in lines if line.startswith("problem: ")]
    assert problem.startswith(f"problem: the broker at {url} cannot be reached: ")
    assert lines[-1] == "check failed: 1 problem(s)"


def test_a_broker_that_never_answers_is_reported_after_the_timeout(tmp_path) -> None:
    # Accepts the TCP connection and says nothing: not even the WebSocket handshake.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = _settings(f"ws://127.0.0.1:{port}/messaging/mqtt", tmp_path, "t")
        runtime = make_runtime(hello=hello, settings=settings)
        started = time.monotonic()
        with pytest.raises(
            TransportError,
            match=r"^the broker at ws://127\.0\.0\.1:\d+/messaging/mqtt cannot be reached: "
            r"timed out$",
        ):
            list(check_mqtt(settings.mqtt, "", runtime.registry.services.values(), timeout=1))
        assert time.monotonic() - started < 5


def test_the_check_takes_no_request_from_a_running_instance(mqtt_broker: str, tmp_path) -> None:
    # The same settings as the instance, client id prefix included: the check connects with
    # its own client id (the broker would drop the instance on a duplicate one) and its
    # subscription is a copy, not a competing consumer: every request is answered once.
    version = f"0.{uuid.uuid4().int % 10**6}"
    env = {
        "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "VCDEXT_MQTT_URL": mqtt_broker,
        "VCDEXT_MQTT_EXTENSION_VERSION": version,
        "VCDEXT_MQTT_CLIENT_ID": "ops-fixed-id",
    }
    settings = load_settings(None, environ=env)
    server = create_transport(make_runtime(hello=hello, settings=settings))
    assert isinstance(server, MqttServer)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    side = None
    try:
        assert server.ready.wait(20)
        side = RawVcd(mqtt_broker, version)
        stop = threading.Event()
        sent: list[str] = []

        def publish() -> None:
            while not stop.is_set():
                request_id = f"r-{len(sent)}"
                request = encode_request("GET", "/api/hello", request_id=request_id)
                side.publish(envelope.wrap_request(request, request_id))
                sent.append(request_id)
                time.sleep(0.005)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            checks = 0
            while checks < 5 or len(sent) < 30:  # checks while requests are on their way
                code, lines = _check(settings)
                assert code == 0, lines
                assert server.ready.is_set(), "the check made the broker drop the instance"
                checks += 1
        finally:
            stop.set()
            publisher.join(20)
        replies = side.wait(len(sent), timeout=30)
        answered = sorted(r["headers"]["requestId"] for r in replies)
        assert answered == sorted(sent), "a request was lost or answered twice"
    finally:
        if side is not None:
            side.close()
        server.stop()
        thread.join(20)


class _FakeBroker:
    """MQTT over WebSocket that answers as told: ``connack`` (a return code, or None for no
    answer) and ``suback`` (the granted QoS byte, 0x80 for a refusal)."""

    def __init__(self, connack: int | None, suback: int = 1) -> None:
        self.connack, self.suback = connack, suback
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/messaging/mqtt"
        self.packets: list[int] = []  # the MQTT packet types the client sent
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = re.search(rb"Sec-WebSocket-Key: *(\S+)", request, re.I)
            assert key is not None
            accept = base64.b64encode(
                hashlib.sha1(key.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                while (packet := self._read(conn)) is not None:
                    kind = packet[0] >> 4
                    self.packets.append(kind)
                    if kind == 1 and self.connack is not None:  # CONNECT
                        self._send(conn, bytes([0x20, 2, 0, self.connack]))
                    elif kind == 8:  # SUBSCRIBE: answer its packet id
                        self._send(conn, bytes([0x90, 3, packet[2], packet[3], self.suback]))
                    elif kind == 10:  # UNSUBSCRIBE
                        self._send(conn, bytes([0xB0, 2, packet[2], packet[3]]))
                    elif kind == 14:  # DISCONNECT
                        return

    @staticmethod
    def _read(conn: socket.socket) -> bytes | None:
        """One masked client frame's payload (each of paho's packets is one frame)."""

        def exactly(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise OSError("closed")
                data += chunk
            return data

        head = exactly(2)
        if head[0] & 0x0F == 8:
            return None
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(exactly(8), "big")
        mask = exactly(4)
        return bytes(b ^ mask[i % 4] for i, b in enumerate(exactly(length)))

    @staticmethod
    def _send(conn: socket.socket, packet: bytes) -> None:
        conn.sendall(bytes([0x82, len(packet)]) + packet)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def _fake_check(broker: _FakeBroker, tmp_path, timeout: float = 10) -> Iterator[str]:
    """check_mqtt's lines, as it yields them, against ``broker``."""
    settings = _settings(_without_login(broker.url), tmp_path, "tok-3n")
    runtime = make_runtime(hello=hello, settings=settings)
    return check_mqtt(settings.mqtt, "", runtime.registry.services.values(), timeout=timeout)


def test_a_connack_refusing_the_login_fails_the_check(tmp_path) -> None:
    broker = _FakeBroker(connack=5)  # not authorized
    try:
        with pytest.raises(TransportError) as caught:
            list(_fake_check(broker, tmp_path))
    finally:
        broker.close()
    assert str(caught.value) == (
        f"the broker at {broker.url} refused the login of vcdext/hello/1.0.0: Not authorized"
    )
    assert 8 not in broker.packets  # no subscription tried


def test_a_refused_subscription_fails_the_check(tmp_path) -> None:
    broker = _FakeBroker(connack=0, suback=0x80)
    lines: list[str] = []
    try:
        with pytest.raises(TransportError) as caught:
            lines.extend(_fake_check(broker, tmp_path))  # the lines before the failure
    finally:
        broker.close()
    assert lines == [
        f"broker {broker.url}: logged in as vcdext/hello/1.0.0 "
        "(its extension token from mqtt.token_file)"
    ]
    assert str(caught.value).startswith(
        f"the broker at {broker.url} refused vcdext/hello/1.0.0 the subscription to {MONITOR}: "
    )
    assert broker.packets[-1] == 14, "the check did not disconnect"


def test_a_granted_qos_below_mqtt_qos_is_said(tmp_path) -> None:
    broker = _FakeBroker(connack=0, suback=0)
    try:
        lines = list(_fake_check(broker, tmp_path))
    finally:
        broker.close()
    assert lines[-1] == (
        f"topic {MONITOR!r}: may subscribe (QoS 0 granted, lower than mqtt.qos = 1), "
        "unsubscribed at once"
    )
    assert broker.packets == [1, 8, 10, 14]  # CONNECT, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT


def test_a_broker_that_accepts_no_login_in_time_fails_the_check(tmp_path) -> None:
    broker = _FakeBroker(connack=None)
    started = time.monotonic()
    try:
        with pytest.raises(TransportError) as caught:
            list(_fake_check(broker, tmp_path, timeout=1))
    finally:
        broker.close()
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"the broker at {broker.url} did not answer within 1 s (waiting for it to accept the login)"
    )
