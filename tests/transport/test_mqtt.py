"""The MQTT transport against a real broker (the session's RabbitMQ node, rabbitmq_web_mqtt):
what is particular to MQTT. hello's operations over both transports are in
test_both_transports.py."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

import vcdext_hello.plugin as hello
from tests.support.rabbitmq import EXTENSION_LOGIN
from vcdext.app import create_transport
from vcdext.errors import ConfigError
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.transport.amqp import TransportError
from vcdext.transport.mqtt import MqttServer
from vcdext.vcd.tokens import TokenFile
from vcdext.vcloud import mqtt as envelope
from vcdext.vcloud.message import encode_request

pytestmark = pytest.mark.integration


def _server(env: dict[str, str]) -> MqttServer:
    runtime = make_runtime(hello=hello, settings=load_settings(None, environ=env))
    server = create_transport(runtime)
    assert isinstance(server, MqttServer)
    return server


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port}"))


@pytest.fixture
def version() -> str:
    return f"0.{uuid.uuid4().int % 10**6}"


@pytest.fixture
def served(mqtt_broker: str, version: str) -> Iterator[MqttServer]:
    server = _server(
        {
            "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
            "VCDEXT_MQTT_URL": mqtt_broker,
            "VCDEXT_MQTT_EXTENSION_VERSION": version,
            "VCDEXT_MQTT_MAX_MESSAGE_BYTES": "4096",
        }
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(20)
    yield server
    server.stop()
    thread.join(20)
    assert not thread.is_alive()


class RawVcd:
    """vCD's side with the envelopes written by hand: publish to monitor, collect respond."""

    def __init__(self, url: str, version: str) -> None:
        parts = urlsplit(url)
        self.topics = envelope.topics_of("vcdext", "hello", version)
        self.replies: list[dict] = []
        self._got = threading.Condition()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, transport="websockets")
        self.client.ws_set_options(path=parts.path)
        self.client.username_pw_set(parts.username, parts.password)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self._on(m.payload)
        self.client.connect(parts.hostname, parts.port)
        self.client.loop_start()
        self.client.subscribe(self.topics.respond, qos=1)
        assert subscribed.wait(10)

    def _on(self, payload: bytes) -> None:
        with self._got:
            self.replies.append(json.loads(payload))
            self._got.notify_all()

    def publish(self, payload: bytes) -> None:
        self.client.publish(self.topics.monitor, payload, qos=1).wait_for_publish(10)

    def wait(self, count: int, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._got:
            while len(self.replies) < count and time.monotonic() < deadline:
                self._got.wait(0.1)
        return list(self.replies)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def vcd(mqtt_broker: str, version: str) -> Iterator[RawVcd]:
    side = RawVcd(mqtt_broker, version)
    yield side
    side.close()


def _status(reply: dict) -> int:
    return int(reply["httpResponse"]["statusCode"])


def test_a_repeated_request_id_is_answered_without_running_the_handler_again(
    served: MqttServer, vcd: RawVcd, caplog: pytest.LogCaptureFixture
) -> None:
    wrapped = envelope.wrap_request(encode_request("GET", "/api/hello", request_id="x"), "dup-1")
    with caplog.at_level(logging.INFO):
        vcd.publish(wrapped)
        assert len(vcd.wait(1)) == 1
        vcd.publish(wrapped)  # what QoS 1 may do after a lost PUBACK
        first, second = vcd.wait(2)
    assert first == second
    assert first["headers"] == {"requestId": "dup-1"}
    assert [r.getMessage() for r in caplog.records if "GET /api/hello" in r.getMessage()]
    ran = [r for r in caplog.records if r.name == "vcdext.dispatch"]
    assert len(ran) == 1, "the handler ran twice"


def test_an_unreadable_request_with_an_id_gets_400_and_serving_goes_on(
    served: MqttServer, vcd: RawVcd
) -> None:
    vcd.publish(b'{"headers": {"requestId": "bad-1"}, "httpRequest": "%%%"}')
    vcd.publish(b"no id at all: nobody to answer")
    wrapped = envelope.wrap_request(encode_request("GET", "/api/hello", request_id="g"), "good-1")
    vcd.publish(wrapped)
    replies = {r["headers"]["requestId"]: r for r in vcd.wait(2)}
    assert _status(replies["bad-1"]) == 400
    assert _status(replies["good-1"]) == 200


def test_an_oversize_request_gets_413_undecoded(served: MqttServer, vcd: RawVcd) -> None:
    big = encode_request("POST", "/api/hello/echo", request_id="b", body=b"x" * 8192)
    vcd.publish(envelope.wrap_request(big, "big-1"))
    (reply,) = vcd.wait(1)
    assert (reply["headers"]["requestId"], _status(reply)) == ("big-1", 413)


def test_without_a_token_the_transport_says_to_register(mqtt_broker: str, tmp_path) -> None:
    server = _server(
        {
            "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
            "VCDEXT_MQTT_URL": _without_login(mqtt_broker),
            "VCDEXT_MQTT_TOKEN_FILE": str(tmp_path / "none.json"),
        }
    )
    with pytest.raises(TransportError, match="no extension token for urn:vcloud:extension-api:"):
        server.run()


def _token_server(mqtt_broker: str, tmp_path, token: str) -> MqttServer:
    tokens = TokenFile(str(tmp_path / "tokens.json"))
    tokens.store(envelope.extension_id("vcdext", "hello", "1.0.0"), token)
    return _server(
        {
            "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
            "VCDEXT_MQTT_URL": _without_login(mqtt_broker),
            "VCDEXT_MQTT_TOKEN_FILE": str(tokens.path),
        }
    )


def test_the_extension_logs_in_as_vendor_name_version_with_its_token(
    mqtt_broker: str, tmp_path
) -> None:
    user, token = EXTENSION_LOGIN  # the test node knows this extension login
    assert user == "vcdext/hello/1.0.0"
    server = _token_server(mqtt_broker, tmp_path, token)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(20), "the token login was not accepted"
        side = RawVcd(mqtt_broker, "1.0.0")
        try:
            wrapped = envelope.wrap_request(
                encode_request("GET", "/api/hello", request_id="t"), "t"
            )
            side.publish(wrapped)
            (reply,) = side.wait(1)
            assert _status(reply) == 200
        finally:
            side.close()
    finally:
        server.stop()
        thread.join(20)


def test_a_wrong_token_is_retried_and_logged_without_the_token(
    mqtt_broker: str, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _token_server(mqtt_broker, tmp_path, "s3cret-but-wrong")
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        # Until the broker has refused the login once (a fixed wait could end before a loaded
        # machine got that far), and it never became ready meanwhile.
        deadline = time.monotonic() + 30
        while "before accepting its login" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            assert not server.ready.wait(0.05)
        assert not server.ready.wait(2)  # retried, still refused
        server.stop()
        thread.join(20)
    assert not thread.is_alive()
    text = caplog.text
    assert "before accepting its login" in text
    assert "vcdext/hello/1.0.0" in text
    assert "s3cret" not in text


def test_a_connack_refusing_the_login_ends_the_transport() -> None:
    server = _server(
        {"VCDEXT_RUNTIME_TRANSPORT": "mqtt", "VCDEXT_MQTT_URL": "ws://u:p@127.0.0.1:1/m"}
    )
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    server._on_connect(None, server.extensions[0], refused)  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="refused the login of vcdext/hello/1.0.0"):
        server.run()


def test_the_token_file_is_owner_only_and_keeps_other_tokens(tmp_path) -> None:
    tokens = TokenFile(str(tmp_path / "dir" / "tokens.json"))
    assert tokens.read() == {}
    tokens.store("urn:a", "1")
    tokens.store("urn:b", "2")
    assert tokens.read() == {"urn:a": "1", "urn:b": "2"}
    assert stat.S_IMODE(os.stat(tokens.path).st_mode) == 0o600
    assert "1" not in repr(tokens).replace(str(tokens.path), "")


@pytest.mark.parametrize("text", ["[]", "{", '{"urn:a": 5}'])
def test_a_bad_token_file_is_a_config_error(tmp_path, text: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"mqtt\.token_file"):
        TokenFile(str(path)).read()


def test_the_default_broker_is_vcds_own(tmp_path) -> None:
    server = _server(
        {"VCDEXT_RUNTIME_TRANSPORT": "mqtt", "VCDEXT_VCD_URL": "https://vcd.example.com/api"}
    )
    assert server.url == "wss://vcd.example.com/messaging/mqtt"


def test_a_non_websocket_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        load_settings(None, environ={"VCDEXT_MQTT_URL": "mqtt://broker:1883"})


def test_a_reply_the_broker_took_counts_for_the_last_reply_age(
    served: MqttServer, vcd: RawVcd
) -> None:
    # /healthz's last_reply_age_seconds and the metric of the same name: they stayed "none
    # yet" forever over MQTT.
    from vcdext.metrics import Metrics

    metrics = Metrics()
    served.dispatcher.observer = metrics
    assert metrics.last_reply_age() is None
    wrapped = envelope.wrap_request(encode_request("GET", "/api/hello", request_id="r"), "age-1")
    vcd.publish(wrapped)
    assert len(vcd.wait(1)) == 1
    deadline = time.monotonic() + 30
    while metrics.last_reply_age() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    age = metrics.last_reply_age()
    assert age is not None and age < 30


def test_the_workers_load_is_the_in_progress_and_waiting_gauges(
    served: MqttServer, vcd: RawVcd
) -> None:
    # They read 0 forever over MQTT before the transport had load().
    from tests.test_ops import value
    from vcdext.metrics import Metrics

    metrics = Metrics()
    metrics.watch(served.load)
    release = threading.Event()
    handle = served.dispatcher.handle_message

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(20)
        return handle(*args, **kwargs)

    served.dispatcher.handle_message = held  # type: ignore[method-assign]
    try:
        for i in range(served.workers + 2):
            request = encode_request("GET", "/api/hello", request_id=f"held-{i}")
            vcd.publish(envelope.wrap_request(request, f"held-{i}"))
        deadline = time.monotonic() + 15
        while served.load() != (served.workers, 2):
            assert time.monotonic() < deadline, served.load()
            time.sleep(0.05)
        assert value(metrics, "vcdext_requests_in_progress") == served.workers
        assert value(metrics, "vcdext_requests_waiting") == 2
    finally:
        release.set()
    assert len(vcd.wait(served.workers + 2)) == served.workers + 2
    deadline = time.monotonic() + 15
    while served.load() != (0, 0):
        assert time.monotonic() < deadline, served.load()
        time.sleep(0.05)


def test_a_repeated_request_and_a_lost_connection_are_counted(
    served: MqttServer, vcd: RawVcd
) -> None:
    from tests.test_ops import value
    from vcdext.metrics import Metrics

    metrics = Metrics()
    served.dispatcher.observer = metrics
    wrapped = envelope.wrap_request(encode_request("GET", "/api/hello", request_id="x"), "dup-2")
    vcd.publish(wrapped)
    assert len(vcd.wait(1)) == 1
    assert value(metrics, "vcdext_redeliveries_total", service="hello") is None
    vcd.publish(wrapped)  # what QoS 1 may do after a lost PUBACK
    assert len(vcd.wait(2)) == 2
    assert value(metrics, "vcdext_redeliveries_total", service="hello") == 1
    # The connection drops under the transport: paho reconnects, the loss is counted.
    (client,) = served._clients.values()
    sock = client.socket()
    assert sock is not None
    sock.close()
    deadline = time.monotonic() + 30
    while value(metrics, "vcdext_reconnects_total", connection="mqtt") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert served.ready.wait(30)  # subscribed again
